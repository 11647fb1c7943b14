"""Shell completion scripts, generated from the parser itself so they never drift from it.

Verbs, each verb's options, the values of options and arguments with fixed choices, and file
names where a PATH or DIR is expected. zsh uses the bash function through `bashcompinit`.
"""

from __future__ import annotations

import argparse
import shlex

_FILE_METAVARS = {"PATH", "DIR"}


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _words(values: list[str]) -> str:
    return shlex.quote(" ".join(values))


def _bash_function(parser: argparse.ArgumentParser) -> str:
    verbs = _verbs(parser)
    option_cases, value_cases, positional_cases = [], [], []
    for name, sub in verbs.items():
        options: list[str] = []
        for action in sub._actions:
            options += action.option_strings
            if action.option_strings and action.nargs != 0:
                # An option that takes a value: complete the value, not another option.
                for option in action.option_strings:
                    if action.choices:
                        words = _words([str(choice) for choice in action.choices])
                        value_cases.append(
                            f'        {name}:{option}) COMPREPLY=($(compgen -W {words} -- "$cur")); return ;;'
                        )
                    elif action.metavar in _FILE_METAVARS:
                        value_cases.append(
                            f'        {name}:{option}) COMPREPLY=($(compgen -f -- "$cur")); return ;;'
                        )
                    else:
                        value_cases.append(f"        {name}:{option}) return ;;")
            elif not action.option_strings and action.choices:
                words = _words([str(choice) for choice in action.choices])
                positional_cases.append(f"        {name}) positional={words} ;;")
        option_cases.append(f"        {name}) options={_words(options)} ;;")
    top = _words([*verbs, "--help", "--version"])
    return f"""\
_mrwbus() {{
    local cur prev verb="" options="" positional="" word i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if [[ $word != -* ]]; then verb=$word; break; fi
    done
    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W {top} -- "$cur"))
        return
    fi
    case "$verb:$prev" in
{chr(10).join(value_cases)}
    esac
    case "$verb" in
{chr(10).join(option_cases)}
    esac
    case "$verb" in
{chr(10).join(positional_cases)}
    esac
    if [[ $cur == -* || -z $positional ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$positional" -- "$cur"))
    fi
}}
"""


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    function = _bash_function(parser)
    if shell == "bash":
        # -o default: file names where nothing else applies (check-config PATH, ...).
        return function + "complete -o default -F _mrwbus mrwbus\n"
    return (
        "#compdef mrwbus\n"
        "# zsh runs the bash completion function through bashcompinit, which needs compinit\n"
        "# (a shell started without it, `zsh -f` or a bare .zshrc, has no compdef).\n"
        "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u; }\n"
        "autoload -U +X bashcompinit && bashcompinit\n"
        + function
        + "complete -o default -F _mrwbus mrwbus\n"
    )
