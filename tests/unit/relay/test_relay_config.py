"""The `relay:` section: per-server resolution, and refusals with file, key path and reason."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from mrwbus.errors import ConfigError
from mrwbus.relay.registry import for_server, parse_config

BASE = """
servers: {server1: {}, server2: {}}
"""


def refusal(relay_yaml: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + textwrap.dedent(relay_yaml), "cluster.yaml")
    assert all(line.startswith("cluster.yaml:") for line in str(caught.value).splitlines())
    return [str(issue) for issue in caught.value.issues]


def test_per_server_keys_replace_the_common_ones() -> None:
    config = parse_config(
        BASE
        + textwrap.dedent(
            """
            relay:
              debounce: 0.5
              nic: {interfaces: [eth0, bond0.100]}
              fc: {sysfs: /tmp/sys}
              servers:
                server2: {nic: {interfaces: [eth1]}, debounce: 3s}
            """
        ),
        "cluster.yaml",
    )
    one, two = for_server(config.relay, "server1"), for_server(config.relay, "server2")
    assert one.nic is not None and one.nic.interfaces == ["eth0", "bond0.100"]
    assert two.nic is not None and two.nic.interfaces == ["eth1"]
    assert (one.debounce, two.debounce) == (timedelta(seconds=0.5), timedelta(seconds=3))
    assert one.fc == two.fc and one.fc is not None and one.fc.sysfs == "/tmp/sys"


def test_no_relay_section_is_fine_and_debounces_two_seconds() -> None:
    settings = for_server(parse_config(BASE).relay, "server1")
    assert settings.debounce == timedelta(seconds=2)
    assert (settings.nic, settings.fc, settings.logs, settings.exec) == (None, None, {}, {})


def test_every_problem_is_named_with_its_key_path() -> None:
    issues = refusal(
        """
        relay:
          debounce: soon
          nic: {interfaces: [a-name-longer-than-fifteen]}
          logs:
            kernel:
              patterns:
                - {name: bad, category: SPS, regex: 'path (unclosed'}
                - {name: nogroup, category: NIC, regex: 'eth[0-9] reset'}
                - {name: cat, category: DISK, regex: '(?P<device>x)'}
          exec:
            tool: {run: watch, restart_min: 2m, restart_max: 1m}
          servers:
            server9: {}
        """
    )
    text = "\n".join(issues)
    assert "relay.debounce: 'soon' is not a duration" in text
    assert "relay.nic.interfaces.0: " in text
    assert "relay.logs.kernel.patterns.0.regex: is not a valid regular expression" in text
    assert "relay.logs.kernel.patterns.2.category: 'DISK' is not one of" in text


def test_cross_checks_name_servers_groups_and_backoff() -> None:
    issues = refusal(
        """
        relay:
          logs:
            kernel:
              patterns:
                - {name: nogroup, category: NIC, regex: 'eth[0-9] reset'}
          exec:
            tool: {run: watch, restart_min: 2m, restart_max: 1m}
          servers:
            server9: {}
        """
    )
    assert "relay.servers.server9: unknown server 'server9'" in issues
    assert any(
        i.startswith("relay.logs.kernel.patterns.0.regex: has no named group 'device'")
        for i in issues
    )
    assert "relay.exec.tool.restart_min: must not be longer than restart_max" in issues


def test_unknown_keys_are_refused() -> None:
    assert refusal("relay: {nic: {interface: [eth0]}}") == [
        "relay.nic.interface: is not a known key"
    ]


def test_the_sources_keys_are_checked_by_their_own_models_everywhere_with_the_rest() -> None:
    # The configuration keeps the sources' keys as written (it sits below the relay); the
    # relay's registry checks them, in the same run as every other problem of the file.
    issues = refusal(
        """
        monitors: {m1: {category: NOPE, recovery: {restart: 1}}}
        relay:
          nics: {interfaces: [eth0]}
          servers:
            server1: {exec: {t: {run: x, restart_min: 2m, restart_max: 1m}}, fc: {poll: never}}
        """
    )
    assert "relay.nics: is not a known key" in issues
    assert "relay.servers.server1.exec.t.restart_min: must not be longer than restart_max" in issues
    assert any(i.startswith("relay.servers.server1.fc.poll: ") for i in issues)
    assert any(i.startswith("monitors.m1.") for i in issues)


def test_a_kind_is_one_module_and_one_registration() -> None:
    from mrwbus.relay import fc, logfile, nic, program
    from mrwbus.relay.registry import KINDS

    assert [kind.key for kind in KINDS] == ["nic", "fc", "logs", "exec"]
    assert [kind for kind in KINDS] == [nic.KIND, fc.KIND, logfile.KIND, program.KIND]
