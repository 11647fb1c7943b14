"""The configuration: what is accepted, and every way a file is refused with a key path."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mrwbus.config.durations import parse_duration
from mrwbus.config.loading import load_config, parse_config
from mrwbus.config.model import ActiveTiming, ClusterConfig
from mrwbus.errors import ConfigError
from mrwbus.messages import Action, Category, FinalAction

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example_data(cluster_yaml: str) -> dict[str, Any]:
    return yaml.safe_load(cluster_yaml)  # type: ignore[no-any-return]


@pytest.fixture
def data(example_data: dict[str, Any]) -> dict[str, Any]:
    """The example cluster as plain data, to be broken one way per test."""
    return copy.deepcopy(example_data)


def refuse(data_or_text: dict[str, Any] | str, source: str = "cluster.yaml") -> ConfigError:
    text = (
        data_or_text
        if isinstance(data_or_text, str)
        else yaml.safe_dump(data_or_text, sort_keys=False)
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source)
    return caught.value


def issues(data_or_text: dict[str, Any] | str) -> dict[str, str]:
    """Path -> problem of every issue the file has."""
    return {issue.path: issue.problem for issue in refuse(data_or_text).issues}


def accept(data: dict[str, Any]) -> ClusterConfig:
    return parse_config(yaml.safe_dump(data, sort_keys=False), "cluster.yaml")


# --- what is accepted ------------------------------------------------------------------------


def test_example_cluster_is_read_with_its_derived_lookups(config: ClusterConfig) -> None:
    assert list(config.servers) == ["server1", "server2", "server3"]
    assert config.server_group("server1") == "site-a"
    assert config.server_group("server3") == "site-b"
    assert config.server_group("nowhere") is None
    assert config.groups["db"].servers == ["server2", "server3", "server1"]
    assert config.group_of_resource("web-app") == "web"
    assert config.group_of_resource("db-disk") == "db"
    assert config.group_of_resource("web") is None


def test_monitor_settings_and_defaults(config: ClusterConfig) -> None:
    mrw1 = config.monitors["mrw1"]
    assert mrw1.category is Category.NIC
    assert mrw1.recovery.action is Action.RESTART
    assert mrw1.recovery.max_restarts == 2
    assert mrw1.recovery.final_action is FinalAction.SHUTDOWN
    assert mrw1.recovery.reset_counts_after == timedelta(minutes=10)
    assert mrw1.timing == "always"
    mrw2 = config.monitors["mrw2"]
    assert mrw2.category is Category.FC
    assert mrw2.keyword == ""
    assert mrw2.recovery.max_restarts == 1  # default
    assert mrw2.recovery.outside_server_group is True
    assert mrw2.recovery.clear_on_recovery is True
    assert mrw2.recovery.reset_counts_after is None
    assert config.monitors["mrw3"].category is Category.HA_SS
    assert config.monitors["mrw5"].timing == ActiveTiming(active="web-ip")


def test_monitored_servers_are_the_listed_ones_or_all(config: ClusterConfig) -> None:
    assert config.monitored_servers("mrw1") == ["server1", "server2"]
    assert config.monitored_servers("mrw2") == ["server1", "server2", "server3"]


def test_keyword_per_server_overrides_the_common_one(config: ClusterConfig) -> None:
    assert config.keyword_for("mrw1", "server1") == "eth0"  # `{}`: common settings
    assert config.keyword_for("mrw1", "server2") == "eth1"
    assert config.keyword_for("mrw2", "server3") == ""


def test_server_without_settings_and_monitor_server_without_settings(
    data: dict[str, Any],
) -> None:
    data["servers"]["server4"] = None
    data["monitors"]["mrw1"]["servers"]["server4"] = None
    config = accept(data)
    assert config.server_group("server4") is None
    assert config.keyword_for("mrw1", "server4") == "eth0"
    assert "server4" in config.monitored_servers("mrw1")


def test_the_documented_example_file_is_valid() -> None:
    config = load_config(REPO / "config" / "cluster.yaml")
    assert set(config.servers) == {"server1", "server2", "server3"}
    assert {monitor.category for monitor in config.monitors.values()} == set(Category)


@pytest.mark.parametrize(
    ("target"), ["web", "web-ip", "all_groups"], ids=["group", "resource", "all"]
)
def test_recovery_target_may_be_a_group_a_resource_or_all_groups(
    data: dict[str, Any], target: str
) -> None:
    data["monitors"]["mrw1"]["recovery"]["target"] = target
    assert accept(data).monitors["mrw1"].recovery.target == target


# --- unknown keys, categories and values -----------------------------------------------------


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ((), "colour"),
        (("servers", "server1"), "servers.server1.colour"),
        (("groups", "web"), "groups.web.colour"),
        (("monitors", "mrw1"), "monitors.mrw1.colour"),
        (("monitors", "mrw1", "recovery"), "monitors.mrw1.recovery.colour"),
        (("monitors", "mrw1", "servers", "server2"), "monitors.mrw1.servers.server2.colour"),
    ],
)
def test_unknown_key_is_refused_with_its_path(
    data: dict[str, Any], where: tuple[str, ...], path: str
) -> None:
    node = data
    for key in where:
        node = node[key]
    node["colour"] = "blue"
    assert issues(data) == {path: "is not a known key"}


def test_misspelt_recovery_key_is_refused(data: dict[str, Any]) -> None:
    recovery = data["monitors"]["mrw1"]["recovery"]
    recovery["max_restart"] = recovery.pop("max_restarts")
    assert issues(data) == {"monitors.mrw1.recovery.max_restart": "is not a known key"}


@pytest.mark.parametrize("category", ["ETH", "nic", "HA-SS", "HA/XX", ""])
def test_unknown_category_is_refused(data: dict[str, Any], category: str) -> None:
    data["monitors"]["mrw2"]["category"] = category
    found = issues(data)
    assert list(found) == ["monitors.mrw2.category"]
    assert found["monitors.mrw2.category"].startswith(f"{category!r} is not one of")
    assert "'HA/SS'" in found["monitors.mrw2.category"]


def test_unknown_final_action_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["recovery"]["final_action"] = "explode"
    found = issues(data)
    assert list(found) == ["monitors.mrw1.recovery.final_action"]
    assert "'explode' is not one of" in found["monitors.mrw1.recovery.final_action"]


def test_unknown_action_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["recovery"]["action"] = "reboot"
    assert list(issues(data)) == ["monitors.mrw1.recovery.action"]


def test_missing_recovery_is_required(data: dict[str, Any]) -> None:
    del data["monitors"]["mrw3"]["recovery"]
    assert issues(data) == {"monitors.mrw3.recovery": "is required"}


def test_missing_servers_is_required(data: dict[str, Any]) -> None:
    del data["servers"]
    assert "servers" in issues(data)


@pytest.mark.parametrize("bad", ["server 1", "server.1", "srv/1", "x" * 65])
def test_names_that_cannot_be_routing_key_words_are_refused(data: dict[str, Any], bad: str) -> None:
    data["servers"][bad] = None
    found = issues(data)
    assert list(found) == [f"servers.{bad}"]
    assert "is not a valid name" in found[f"servers.{bad}"]


@pytest.mark.parametrize("value", [-1, 1001])
def test_max_restarts_out_of_range_is_refused(data: dict[str, Any], value: int) -> None:
    data["monitors"]["mrw1"]["recovery"]["max_restarts"] = value
    assert list(issues(data)) == ["monitors.mrw1.recovery.max_restarts"]


def test_timing_with_unknown_key_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw5"]["timing"] = {"active": "web-ip", "when": "now"}
    assert issues(data)["monitors.mrw5.timing.when"] == "is not a known key"


def test_timing_other_than_always_or_active_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw5"]["timing"] = "sometimes"
    assert "monitors.mrw5.timing" in issues(data)


# --- references ------------------------------------------------------------------------------


def test_group_on_unknown_server_is_refused(data: dict[str, Any]) -> None:
    data["groups"]["web"]["servers"] = ["server1", "server9"]
    assert issues(data) == {"groups.web.servers.1": "unknown server 'server9'"}


def test_monitor_on_unknown_server_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["servers"]["server9"] = {"keyword": "eth3"}
    assert issues(data) == {"monitors.mrw1.servers.server9": "unknown server 'server9'"}


def test_unknown_recovery_target_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["recovery"]["target"] = "mail"
    found = issues(data)
    assert list(found) == ["monitors.mrw1.recovery.target"]
    assert found["monitors.mrw1.recovery.target"].startswith("'mail' is not a group")


def test_unknown_active_timing_resource_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw5"]["timing"] = {"active": "mail-ip"}
    assert issues(data) == {
        "monitors.mrw5.timing.active": "'mail-ip' is not a group or a group resource"
    }


def test_group_may_not_be_called_all_groups(data: dict[str, Any]) -> None:
    data["groups"]["all_groups"] = {"servers": ["server1"]}
    assert "groups.all_groups" in issues(data)


def test_group_listing_a_server_twice_is_refused(data: dict[str, Any]) -> None:
    data["groups"]["web"]["servers"] = ["server1", "server2", "server1"]
    assert issues(data) == {"groups.web.servers": "lists a server twice"}


def test_resource_in_two_groups_is_refused(data: dict[str, Any]) -> None:
    data["groups"]["db"]["resources"].append("web-ip")
    assert issues(data) == {"groups.db.resources.1": "resource 'web-ip' is already in group 'web'"}


def test_resource_with_the_name_of_a_group_is_refused(data: dict[str, Any]) -> None:
    data["groups"]["web"]["resources"].append("db")
    assert list(issues(data)) == ["groups.web.resources.2"]


def test_script_is_required_for_action_script(data: dict[str, Any]) -> None:
    del data["monitors"]["mrw4"]["recovery"]["script"]
    assert issues(data) == {"monitors.mrw4.recovery.script": "is required when action is script"}


def test_empty_script_counts_as_missing(data: dict[str, Any]) -> None:
    data["monitors"]["mrw4"]["recovery"]["script"] = ""
    assert list(issues(data)) == ["monitors.mrw4.recovery.script"]


def test_script_is_refused_for_other_actions(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["recovery"]["script"] = "/opt/x.sh"
    assert issues(data) == {"monitors.mrw1.recovery.script": "is only used when action is script"}


def test_outside_server_group_is_refused_for_other_actions(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["recovery"]["outside_server_group"] = True
    assert list(issues(data)) == ["monitors.mrw1.recovery.outside_server_group"]


# --- keywords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keyword",
    ["a" * 1023, "€" * 341, ""],  # 341 three-byte characters: 1023 bytes
    ids=["1023-ascii", "1023-bytes-multibyte", "empty"],
)
def test_keyword_of_at_most_1023_bytes_is_accepted(data: dict[str, Any], keyword: str) -> None:
    data["monitors"]["mrw1"]["keyword"] = keyword
    assert accept(data).keyword_for("mrw1", "server1") == keyword


@pytest.mark.parametrize(
    ("keyword", "size"),
    [("a" * 1024, 1024), ("é" * 512, 1024), ("€" * 342, 1026), ("𝄞" * 256, 1024)],
    ids=["1024-ascii", "512-two-byte-chars", "342-three-byte-chars", "256-four-byte-chars"],
)
def test_keyword_over_1023_bytes_is_refused(data: dict[str, Any], keyword: str, size: int) -> None:
    assert len(keyword) <= 1024
    data["monitors"]["mrw1"]["keyword"] = keyword
    assert issues(data) == {"monitors.mrw1.keyword": f"is {size} bytes, at most 1023 allowed"}


def test_per_server_keyword_over_1023_bytes_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["servers"]["server2"]["keyword"] = "é" * 600
    assert issues(data) == {
        "monitors.mrw1.servers.server2.keyword": "is 1200 bytes, at most 1023 allowed"
    }


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, timedelta(seconds=90)),
        ("90", timedelta(seconds=90)),
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1.5h", timedelta(minutes=90)),
        (" 30 m ", timedelta(minutes=30)),
        (2.5, timedelta(seconds=2.5)),
    ],
)
def test_duration_is_accepted(data: dict[str, Any], value: object, expected: timedelta) -> None:
    data["monitors"]["mrw1"]["recovery"]["reset_counts_after"] = value
    assert accept(data).monitors["mrw1"].recovery.reset_counts_after == expected
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "yaml_value",
    [
        *("0", "0s", "-5", "'-5m'", "ten", "10x", "10 mins", "m", "''", "true", "[10]"),
        *(".inf", ".nan", "99999999999999d", "1.0e+300"),
    ],
)
def test_bad_duration_is_refused_with_its_path(cluster_yaml: str, yaml_value: str) -> None:
    text = cluster_yaml.replace("reset_counts_after: 10m", f"reset_counts_after: {yaml_value}")
    assert text != cluster_yaml
    assert list(issues(text)) == ["monitors.mrw1.recovery.reset_counts_after"]


def test_parse_duration_refuses_booleans_and_zero() -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(True)
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration("0m")
    assert parse_duration(timedelta(seconds=5)) == timedelta(seconds=5)


# --- duplicate keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "doubled", "path"),
    [
        ("monitors:\n", "monitors:\n", "monitors"),
        ("  db:  ", "  web:  ", "groups.web"),
        (
            "      target: web\n",
            "      target: web\n      target: db\n",
            "monitors.mrw1.recovery.target",
        ),
        (
            "      server1: {}\n",
            "      server1: {}\n      server1: {keyword: eth2}\n",
            "monitors.mrw1.servers.server1",
        ),
        ("    keyword: sdb\n", "    keyword: sdb\n    keyword: sdb\n", "monitors.mrw3.keyword"),
    ],
    ids=["top", "group", "recovery", "monitor-server", "same-value"],
)
def test_duplicate_key_is_refused_at_any_depth(
    cluster_yaml: str, original: str, doubled: str, path: str
) -> None:
    if original == doubled:  # the top-level key: add a second section
        text = cluster_yaml + "monitors: {}\n"
    else:
        assert original in cluster_yaml
        text = cluster_yaml.replace(original, doubled, 1)
    found = issues(text)
    assert path in found
    assert found[path].startswith("is defined twice (again on line ")


def test_duplicate_key_reports_the_line_of_the_second_definition() -> None:
    text = "servers:\n  server1: {}\n  server1: {}\n"
    assert issues(text) == {"servers.server1": "is defined twice (again on line 3)"}


def test_merge_keys_and_anchors_read_as_plain_yaml_reads_them() -> None:
    text = (
        "servers: {server1: {}, server2: {}}\n"
        "groups: {failover1: {servers: [server1, server2]}}\n"
        "monitors:\n"
        "  mrw1:\n"
        "    category: NIC\n"
        "    keyword: eth0\n"
        "    servers: {server1: {}}\n"
        "    recovery: &restart {action: restart, target: failover1, max_restarts: 2}\n"
        "  mrw2: {category: FC, keyword: hba0, servers: {server1: {}}, recovery: *restart}\n"
        "  mrw3:\n"
        "    category: FC\n"
        "    keyword: hba1\n"
        "    servers: {server1: {}}\n"
        "    recovery: {<<: *restart, max_restarts: 1}\n"
    )
    config = parse_config(text)
    assert config.monitors["mrw2"].recovery.max_restarts == 2
    assert config.monitors["mrw3"].recovery.max_restarts == 1
    assert config.monitors["mrw3"].recovery.target == "failover1"


# --- several problems, the file name, unreadable files ---------------------------------------


def test_every_shape_problem_of_a_file_is_reported(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["keyword"] = "x" * 2000
    data["monitors"]["mrw2"]["category"] = "ETH"
    data["monitors"]["mrw3"]["recovery"]["reset_counts_after"] = "soon"
    data["groups"]["db"]["colour"] = "red"
    assert set(issues(data)) == {
        "monitors.mrw1.keyword",
        "monitors.mrw2.category",
        "monitors.mrw3.recovery.reset_counts_after",
        "groups.db.colour",
    }


def test_every_reference_problem_of_a_file_is_reported(data: dict[str, Any]) -> None:
    data["groups"]["web"]["servers"].append("server7")
    data["monitors"]["mrw1"]["recovery"]["target"] = "mail"
    data["monitors"]["mrw5"]["timing"]["active"] = "mail-ip"
    del data["monitors"]["mrw4"]["recovery"]["script"]
    assert set(issues(data)) == {
        "groups.web.servers.3",
        "monitors.mrw1.recovery.target",
        "monitors.mrw5.timing.active",
        "monitors.mrw4.recovery.script",
    }


def test_duplicate_keys_are_reported_with_reference_problems(cluster_yaml: str) -> None:
    text = cluster_yaml.replace(
        "      target: web\n", "      target: mail\n      target: mail\n", 1
    )
    problems = [(issue.path, issue.problem) for issue in refuse(text).issues]
    assert len(problems) == 2
    assert problems[0][0] == "monitors.mrw1.recovery.target"
    assert problems[0][1].startswith("is defined twice")
    assert problems[1] == (
        "monitors.mrw1.recovery.target",
        "'mail' is not a group, a group resource or all_groups",
    )


def test_duplicate_keys_are_reported_with_other_problems(cluster_yaml: str) -> None:
    text = cluster_yaml.replace(
        "      target: web\n", "      target: web\n      target: web\n      colour: red\n", 1
    )
    assert set(issues(text)) == {
        "monitors.mrw1.recovery.target",
        "monitors.mrw1.recovery.colour",
    }


def test_error_message_names_the_file_on_every_line(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["keyword"] = "x" * 1100
    data["monitors"]["mrw1"]["recovery"]["colour"] = "red"
    error = refuse(data, source="/etc/mrwbus/cluster.yaml")
    assert error.source == "/etc/mrwbus/cluster.yaml"
    lines = str(error).splitlines()
    assert len(lines) == 2
    assert (
        "/etc/mrwbus/cluster.yaml:27:5: monitors.mrw1.keyword: is 1100 bytes, at most 1023 allowed"
        in lines
    )
    assert (
        "/etc/mrwbus/cluster.yaml:38:7: monitors.mrw1.recovery.colour: is not a known key" in lines
    )


def test_load_config_names_the_file(tmp_path: Path, data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["recovery"]["target"] = "mail"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"{path}:34:7: monitors.mrw1.recovery.target: ")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read") as caught:
        load_config(tmp_path / "absent.yaml")
    assert caught.value.source == str(tmp_path / "absent.yaml")


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("servers:\n  s\xe9rver1: {}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "- server1\n- server2\n", "just text\n"])
def test_file_that_is_not_a_mapping_is_refused(text: str) -> None:
    assert issues(text) == {"": "must be a mapping with servers, groups, monitors"}


def test_invalid_yaml_is_refused() -> None:
    found = issues("servers: [server1\n")
    assert list(found) == [""]
    assert found[""].startswith("is not valid YAML")


def test_empty_servers_is_refused() -> None:
    assert list(issues("servers: {}\n")) == ["servers"]


# --- fencing, the service and the agent ------------------------------------------------------


def test_fence_first_needs_a_failover(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["recovery"]["fence_first"] = True  # a restart, final shutdown
    assert issues(data) == {
        "monitors.mrw1.recovery.fence_first": "is only used when action is failover"
    }


def test_fence_first_needs_a_final_action_that_takes_the_server_down(
    data: dict[str, Any],
) -> None:
    data["monitors"]["mrw2"]["recovery"]["fence_first"] = True  # final action stop_group
    assert issues(data) == {
        "monitors.mrw2.recovery.fence_first": (
            "needs a final_action that takes the server down to fence with"
        )
    }
    data["monitors"]["mrw2"]["recovery"]["final_action"] = "bmc_power_off"
    assert accept(data).monitors["mrw2"].recovery.fence_first is True


def test_service_settings_have_defaults_and_take_durations(data: dict[str, Any]) -> None:
    defaults = accept(data).service
    assert defaults.stop_timeout == timedelta(seconds=30)
    assert defaults.protect_last_healthy_server is True
    data["service"] = {"stop_timeout": "2m", "heartbeat_timeout": 20}
    service = accept(data).service
    assert service.stop_timeout == timedelta(minutes=2)
    assert service.heartbeat_timeout == timedelta(seconds=20)


def test_bad_service_settings_are_refused_with_their_path(data: dict[str, Any]) -> None:
    data["service"] = {"stop_timeout": "soon", "colour": "red"}
    assert set(issues(data)) == {"service.stop_timeout", "service.colour"}


def test_agent_handlers_must_be_known(data: dict[str, Any]) -> None:
    data["agent"] = {
        "handlers": {"restart": {"run": "systemctl restart x"}, "reboot": {"run": "reboot"}},
        "groups": {"mail": {}, "web": {"explode": {"run": "true"}}},
    }
    found = issues(data)
    assert set(found) == {"agent.handlers.reboot", "agent.groups.mail", "agent.groups.web.explode"}
    assert found["agent.groups.mail"] == "unknown group 'mail'"


def test_agent_handler_for_a_final_action_is_accepted(data: dict[str, Any]) -> None:
    data["agent"] = {"groups": {"db": {"final_action.reboot": {"run": "reboot", "timeout": "2m"}}}}
    handler = accept(data).agent.groups["db"]["final_action.reboot"]
    assert (handler.run, handler.timeout) == ("reboot", timedelta(minutes=2))


def test_an_agent_heartbeat_slower_than_half_the_timeout_is_refused(cluster_yaml: str) -> None:
    text = cluster_yaml + "\nservice: {heartbeat_timeout: 10s}\nagent: {heartbeat_interval: 6s}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "cluster.yaml")
    assert [issue.path for issue in caught.value.issues] == ["agent.heartbeat_interval"]
    assert "half of service.heartbeat_timeout" in str(caught.value)
