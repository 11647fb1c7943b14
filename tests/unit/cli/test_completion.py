"""`mrwbus completion bash|zsh`: generated from the parser, and bash really completes with it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mrwbus import cli
from mrwbus.cli.completion import completion_script


def _complete(*words: str) -> list[str]:
    script = completion_script(cli.build_parser(), "bash")
    quoted = " ".join(f"'{word}'" for word in words)
    probe = f'{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _mrwbus; printf "%s\\n" "${{COMPREPLY[@]}}"'
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


@needs_bash
def test_bash_completes_verbs_options_and_choices() -> None:
    assert _complete("mrwbus", "wat") == ["watch"]
    assert _complete("mrwbus", "watch", "--kind", "f") == ["fault", "fence"]
    assert _complete("mrwbus", "run", "--log-level", "W") == ["WARNING"]
    assert "--reset-counts" in _complete("mrwbus", "clear", "--")
    assert _complete("mrwbus", "completion", "") == ["bash", "zsh"]


def test_the_verb_prints_both_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", "bash"]) == 0
    assert capsys.readouterr().out.endswith("complete -o default -F _mrwbus mrwbus\n")
    assert cli.main(["completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#compdef mrwbus\n") and "bashcompinit" in out


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_loads_the_script() -> None:
    script = completion_script(cli.build_parser(), "zsh")
    subprocess.run(["zsh", "-f", "-c", script], check=True, capture_output=True)
