"""Where groups run, what a target stands for, and the choice of a failover destination."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.core.placement import (
    ClusterView,
    Destination,
    choose_failover_destination,
    target_groups,
)

ALL = {"server1", "server2", "server3"}


def choose(
    config: ClusterConfig,
    group: str,
    leaving: str,
    *,
    in_error: Collection[str] = (),
    alive: Collection[str] = ALL,
    outside: bool = False,
    excluded: Collection[str] = (),
) -> Destination:
    return choose_failover_destination(
        config,
        group,
        leaving,
        servers_in_error=in_error,
        alive=alive,
        outside_server_group=outside,
        excluded=excluded,
    )


# --- the view --------------------------------------------------------------------------------


def test_each_group_starts_on_the_first_server_of_its_list(config: ClusterConfig) -> None:
    view = ClusterView.initial(config)
    assert view.placement == {"web": "server1", "db": "server2"}
    assert view.alive == ALL


def test_view_queries(config: ClusterConfig) -> None:
    view = ClusterView.initial(config)
    view.placement["db"] = "server1"
    assert view.groups_on("server1") == ["db", "web"]
    assert view.groups_on("server2") == []
    assert view.is_active("web", "server1")
    assert not view.is_active("web", "server2")
    assert not view.is_active("mail", "server1")
    view.placement["web"] = None
    assert not view.is_active("web", "server1")


def test_initial_views_are_independent(config: ClusterConfig) -> None:
    first = ClusterView.initial(config)
    first.placement["web"] = "server3"
    first.alive.discard("server1")
    second = ClusterView.initial(config)
    assert second.placement["web"] == "server1"
    assert "server1" in second.alive


@pytest.mark.parametrize(
    ("target", "groups"),
    [
        ("all_groups", ["web", "db"]),
        ("web", ["web"]),
        ("web-app", ["web"]),
        ("db-disk", ["db"]),
        ("mail", []),
    ],
)
def test_target_groups(config: ClusterConfig, target: str, groups: list[str]) -> None:
    assert target_groups(config, target) == groups


# --- the failover destination ----------------------------------------------------------------


def test_destination_is_the_highest_priority_other_server(config: ClusterConfig) -> None:
    assert choose(config, "web", "server1") == Destination("server2")
    assert choose(config, "db", "server2").server == "server3"
    assert choose(config, "db", "server3").server == "server2"
    # leaving a server other than the first: the first of the list is preferred
    assert choose(config, "web", "server2").server == "server1"


def test_destination_skips_servers_not_alive(config: ClusterConfig) -> None:
    chosen = choose(config, "web", "server1", alive={"server1", "server3"})
    assert chosen.server == "server3"
    assert chosen.skipped == {"server2": "not alive"}


def test_destination_skips_servers_with_a_monitor_in_error(config: ClusterConfig) -> None:
    chosen = choose(config, "web", "server1", in_error={"server1", "server2"})
    assert chosen.server == "server3"
    assert chosen.skipped == {
        "server2": "a monitor is in Error there (exclude_destinations: any_error)"
    }


def test_destination_skips_servers_already_tried(config: ClusterConfig) -> None:
    assert choose(config, "web", "server1", excluded={"server2"}).server == "server3"


def test_outside_server_group_only_goes_to_another_server_group(config: ClusterConfig) -> None:
    chosen = choose(config, "web", "server1", outside=True)
    assert chosen.server == "server3"
    assert chosen.skipped == {"server2": "in the same server group (site-a)"}
    # from site-b, both servers of site-a qualify: priority decides
    assert choose(config, "web", "server3", outside=True).server == "server1"


def test_no_destination_gives_the_reason_for_every_server(config: ClusterConfig) -> None:
    chosen = choose(config, "web", "server1", outside=True, alive={"server1", "server2"})
    assert chosen.server is None
    assert chosen.skipped == {
        "server2": "in the same server group (site-a)",
        "server3": "not alive",
    }
    assert chosen.reason == (
        "no eligible server for group web "
        "(server2: in the same server group (site-a); server3: not alive)"
    )


def test_no_destination_when_the_group_has_a_single_server() -> None:
    config = ClusterConfig.model_validate(
        {"servers": {"s1": None, "s2": None}, "groups": {"solo": {"servers": ["s1"]}}}
    )
    chosen = choose_failover_destination(
        config, "solo", "s1", servers_in_error=(), alive={"s1", "s2"}
    )
    assert chosen == Destination(None, "group solo has no server other than s1")


def test_destination_is_never_the_server_left(config: ClusterConfig) -> None:
    for group, servers in (("web", ALL), ("db", ALL)):
        for leaving in servers:
            assert choose(config, group, leaving).server not in (None, leaving)


def test_servers_without_a_server_group_are_each_a_group_of_their_own() -> None:
    ungrouped = parse_config(
        "servers: {a: {}, b: {}}\ngroups: {g: {servers: [a, b]}}\n", "ungrouped.yaml"
    )
    assert choose(ungrouped, "g", "a", outside=True, alive={"a", "b"}).server == "b"
