"""The `resources:` section: shapes, names, and which groups are run by OCF agents."""

from __future__ import annotations

import textwrap

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.errors import ConfigError
from mrwbus.operators.config_warnings import unhandled_actions

BASE = """
servers: {db1: {}, db2: {}, db3: {}}
groups:
  pg: {servers: [db1, db2], resources: [vip, data, postgres]}
  web: {servers: [db3], resources: [nginx]}
"""


def parse(resources: str, extra: str = "") -> object:
    return parse_config(BASE + textwrap.dedent(resources) + extra, "c.yaml")


def problems(resources: str, extra: str = "") -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse(resources, extra)
    return {issue.path: issue.problem for issue in caught.value.issues}


GOOD = """
resources:
  vip:
    ocf: ocf:heartbeat:IPaddr2
    params: {ip: 192.0.2.50, cidr_netmask: 24}
    servers: {db2: {params: {nic: eth1}}}
    timeouts: {start: 30s, monitor: 10}
  data: {ocf: heartbeat:Dummy}
  postgres: {ocf: pacemaker:Dummy, params: {fake: yes}}
"""


def test_a_valid_section() -> None:
    config = parse(GOOD)
    vip = config.resources["vip"]  # type: ignore[attr-defined]
    assert vip.ocf == "heartbeat:IPaddr2"
    assert vip.params_on("db1") == {"ip": "192.0.2.50", "cidr_netmask": 24}
    assert vip.params_on("db2") == {"ip": "192.0.2.50", "cidr_netmask": 24, "nic": "eth1"}
    assert vip.timeouts.start.total_seconds() == 30
    assert vip.timeouts.stop is None
    assert config.ocf_groups() == {"pg": ["vip", "data", "postgres"]}


def test_ocf_groups_need_no_handlers_shell_groups_still_do() -> None:
    monitors = """
monitors:
  nic: {category: NIC, recovery: {action: failover, target: pg}}
  am: {category: HA/AM, recovery: {action: restart, target: nginx}}
"""
    warnings = [str(w) for w in unhandled_actions(parse(GOOD, monitors))]  # type: ignore[arg-type]
    assert warnings == [
        "monitors.am.recovery.action: restart of web on db3 would be refused: no agent handler "
        "restart in agent.handlers or agent.groups.web"
    ]


def test_shapes_are_refused_with_key_paths() -> None:
    found = problems(
        """
resources:
  vip: {ocf: IPaddr2, params: {ip: [1, 2], "bad-name": x}, timeouts: {start: 0, restart: 5s}}
  data: {ocf: heartbeat:Dummy, colour: red}
  postgres: {params: {}}
"""
    )
    assert found == {
        "resources.vip.ocf": "'IPaddr2' is not an OCF agent name such as heartbeat:IPaddr2",
        "resources.vip.params.ip": "must be a string, a number or a boolean",
        "resources.vip.params.bad-name": "'bad-name' is not a parameter name (letters, digits "
        "and _, as in OCF_RESKEY_<name>)",
        "resources.vip.timeouts.start": "must be longer than zero",
        "resources.vip.timeouts.restart": "is not a known key",
        "resources.data.colour": "is not a known key",
        "resources.postgres.ocf": "is required",
    }


def test_names_are_checked() -> None:
    found = problems(
        """
resources:
  vip: {ocf: heartbeat:IPaddr2, servers: {db3: {}, db9: {}}}
  data: {ocf: heartbeat:Dummy}
  spare: {ocf: heartbeat:Dummy}
"""
    )
    assert found == {
        "groups.pg.resources.2": "'postgres' has no entry under resources: every resource of "
        "a group with OCF resources needs one",
        "resources.vip.servers.db3": "'db3' is not a server of group 'pg'",
        "resources.vip.servers.db9": "'db9' is not a server of group 'pg'",
        "resources.spare": "is in no group's resources, so nothing would ever run it",
    }
