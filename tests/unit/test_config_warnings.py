"""`check-config` warnings (`config_warnings`) and every error in one run (`config_checks`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrwbus import cli
from mrwbus.config.loading import parse_config
from mrwbus.operators.config_warnings import unhandled_actions

PG = """
servers: {db1: {}, db2: {}}
groups:
  pg: {servers: [db1, db2], resources: [vip, postgres]}
monitors:
  sps:
    category: SPS
    recovery: {action: restart, target: pg, max_restarts: 2, final_action: shutdown}
agent:
  handlers:
    restart: {run: 'systemctl restart postgresql'}
"""


def test_a_final_action_without_a_handler_is_a_warning_per_server() -> None:
    found = [str(issue) for issue in unhandled_actions(parse_config(PG))]
    assert found == [
        f"monitors.sps.recovery.final_action: final_action.shutdown on {server} would be refused: "
        "no agent handler final_action.shutdown in agent.handlers"
        for server in ("db1", "db2")
    ]


def test_a_group_handler_covers_a_restart_but_not_a_shutdown() -> None:
    text = PG.replace(
        "  handlers:\n    restart: {run: 'systemctl restart postgresql'}",
        "  groups:\n    pg: {restart: {run: x}, final_action.shutdown: {run: y}}",
    )
    found = [issue.problem for issue in unhandled_actions(parse_config(text))]
    assert all("final_action.shutdown" in problem for problem in found) and len(found) == 2


def test_check_config_prints_warnings_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pg.yaml"
    path.write_text(PG)
    assert cli.main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "OK"
    assert any(
        "warning: monitors.sps.recovery.final_action: final_action.shutdown on db1" in line
        for line in out
    )


def test_check_config_prints_type_and_reference_errors_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pg.yaml"
    path.write_text(
        PG.replace("max_restarts: 2", "max_restarts: two").replace("target: pg", "target: pgx")
    )
    assert cli.main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{path}:8:46: monitors.sps.recovery.max_restarts: Input should be a valid integer" in err
    )
    assert (
        f"{path}:8:33: monitors.sps.recovery.target: 'pgx' is not a group, a group resource or all_groups"
        in err
    )
