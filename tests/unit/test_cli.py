"""`mrwbus check-config` on the shipped configuration and on a broken copy: no broker needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrwbus import cli

SHIPPED = Path(__file__).parents[2] / "config" / "cluster.yaml"


def test_the_shipped_configuration_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", str(SHIPPED)]) == 0
    assert capsys.readouterr().out == "OK\n"


def test_a_broken_copy_prints_every_error_with_its_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    text = SHIPPED.read_text()
    text = text.replace("category: NIC", "category: USB", 1).replace(
        "keyword: eth0", "keyword: " + "e" * 1100, 1
    )
    text = text.replace("      action: failover", "      action: failover\n      colour: red", 1)
    broken.write_text(text)
    assert cli.main(["check-config", str(broken)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert (
        f"{broken}:144:5: monitors.mrw1.category: 'USB' is not one of: 'NIC', 'FC', 'HA/SS', 'HA/AM', 'HA/RS' or 'SPS'"
        in err
    )
    assert f"{broken}:145:5: monitors.mrw1.keyword: is 1100 bytes, at most 1023 allowed" in err
    assert f"{broken}:151:7: monitors.mrw1.recovery.colour: is not a known key" in err


def test_a_missing_file_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", str(tmp_path / "nope.yaml")]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"{tmp_path / 'nope.yaml'}: cannot be read: No such file or directory"
    )


def test_run_refuses_an_invalid_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "servers: {s1: {}}\nmonitors:\n  m1: {category: NIC, recovery: {action: restart, target: g9}}\n"
    )
    assert cli.main(["run", "--config", str(broken), "--http", "off"]) == 1
    assert "monitors.m1.recovery.target: 'g9' is not a group" in capsys.readouterr().err
