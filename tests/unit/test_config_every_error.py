"""Every error of a file in one run, in file order with line and key path (issue 27, item 3),
and a refusal for every setting another setting makes inert (item 4)."""

from __future__ import annotations

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.errors import ConfigError

THREE = """\
servers: {server1: {}, server2: {}}
groups: {failover1: {servers: [server1, server2]}}
monitors:
  mrw1:
    category: NIC
    keyword: eth0
    recovery: {action: restart, target: failover1, max_restarts: two, clear_on_recovery: maybe}
  mrw2:
    category: FC
    timing: active
    recovery: {action: restart, target: failover1}
  mrw3:
    category: SPS
    recovery: {action: restart, target: nowhere}
  mrw4:
    keyword: sda
    recovery: {action: restart, target: nowhere2}
"""


def lines(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    return str(caught.value).splitlines()


def test_errors_in_several_monitors_are_all_reported_at_once_in_file_order() -> None:
    assert lines(THREE) == [
        "c.yaml:7:52: monitors.mrw1.recovery.max_restarts: Input should be a valid integer,"
        " unable to parse string as an integer",
        "c.yaml:7:71: monitors.mrw1.recovery.clear_on_recovery: Input should be a valid"
        " boolean, unable to interpret input",
        "c.yaml:10:5: monitors.mrw2.timing: must be always, or {active: GROUP-OR-RESOURCE}",
        "c.yaml:14:33: monitors.mrw3.recovery.target: 'nowhere' is not a group,"
        " a group resource or all_groups",
        "c.yaml:15:3: monitors.mrw4.category: is required",
        "c.yaml:17:33: monitors.mrw4.recovery.target: 'nowhere2' is not a group,"
        " a group resource or all_groups",
    ]


def test_an_alias_shared_by_two_monitors_is_checked_in_each() -> None:
    text = THREE.replace(
        "recovery: {action: restart, target: failover1}",
        "recovery: &r {action: restart, target: failover1, colour: red}",
    ).replace("recovery: {action: restart, target: nowhere}", "recovery: *r")
    found = lines(text)
    assert any("monitors.mrw2.recovery.colour: is not a known key" in line for line in found)
    assert any("monitors.mrw3.recovery.colour: is not a known key" in line for line in found)


BASE = """\
servers: {s1: {server_group: a}, s2: {server_group: a}, s3: {server_group: b}}
groups: {g1: {servers: [s1, s2, s3]}}
monitors:
  m:
    category: NIC
    recovery: {RECOVERY}
"""


@pytest.mark.parametrize(
    ("recovery", "path", "problem"),
    [
        (
            "action: failover, target: g1, final_action: stop_group,"
            " move_groups_after_final_action: false",
            "move_groups_after_final_action",
            "is never read: final_action stop_group does not take the server down",
        ),
        (
            "action: final_action, target: g1, before_script: /x",
            "before_script",
            "is never read: no command is ever sent",
        ),
        (
            "action: restart, target: g1, max_restarts: 0, before_script: /x",
            "before_script",
            "is never read: no command is ever sent",
        ),
        (
            "action: final_action, target: g1, rearm_after: 30s",
            "rearm_after",
            "is never read: no command is ever sent",
        ),
        (
            "action: restart, target: g1, final_action: shutdown, rearm_after: 30m,"
            " reset_counts_after: 10m",
            "rearm_after",
            "must be shorter than reset_counts_after (10m)",
        ),
        (
            "action: failover, target: g1, max_failovers: 0, outside_server_group: true",
            "outside_server_group",
            "is never read: max_failovers is 0",
        ),
        (
            "action: restart, target: g1, outside_server_group: false",
            "outside_server_group",
            "is only used when action is failover",
        ),
        (
            "action: failover, target: g1, fence_first: false",
            "fence_first",
            "needs a final_action that takes the server down",
        ),
    ],
)
def test_a_setting_made_inert_by_another_is_refused(recovery: str, path: str, problem: str) -> None:
    [line] = lines(BASE.replace("RECOVERY", recovery))
    assert f"monitors.m.recovery.{path}: {problem}" in line


def test_outside_server_group_where_every_server_is_a_site_of_its_own_is_refused() -> None:
    text = BASE.replace("server_group: a}, s2: {server_group: a}", "server_group: a}, s2: {}")
    [line] = lines(
        text.replace("RECOVERY", "action: failover, target: g1, outside_server_group: true")
    )
    assert "changes nothing: no two servers of g1 share a server_group" in line


def test_a_rearm_shorter_than_the_reset_is_accepted() -> None:
    recovery = "action: restart, target: g1, final_action: shutdown, rearm_after: 30s, reset_counts_after: 10m"
    parse_config(BASE.replace("RECOVERY", recovery))
