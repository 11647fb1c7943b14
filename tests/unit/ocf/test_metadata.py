"""An agent's meta-data XML read, and parameters checked against it. No process runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mrwbus.errors import ConfigIssue, MetadataError, ResourceAgentError
from mrwbus.ocf.metadata import (
    Parameter,
    check_params,
    describe_agent,
    parse_metadata,
    type_problem,
)

XML = """<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="IPaddr2" version="1.0">
<version>1.0</version>
<shortdesc lang="en">Manages virtual
   IPv4 and IPv6 addresses</shortdesc>
<parameters>
<parameter name="ip" unique="1" required="1">
<shortdesc lang="en">IPv4 or IPv6 address</shortdesc>
<content type="string" default="" />
</parameter>
<parameter name="cidr_netmask">
<content type="string" default=""/>
</parameter>
<parameter name="lvs_support">
<content type="boolean" default="false"/>
</parameter>
<parameter name="arp_count">
<content type="integer" default="5"/>
</parameter>
<parameter name="mode">
<content type="select" default="a"><option value="a"/><option value="b"/></content>
</parameter>
<parameter name="bare"/>
</parameters>
<actions>
<action name="start" timeout="20s" />
<action name="stop" timeout="2m" />
<action name="monitor" timeout="20000ms" interval="10s" />
<action name="monitor" role="Promoted" timeout="30s" interval="9s" />
<action name="meta-data" timeout="5" />
<action name="validate-all" />
</actions>
</resource-agent>
"""


def test_parameters_actions_and_timeouts_are_read() -> None:
    meta = parse_metadata(XML)
    assert meta.name == "IPaddr2"
    assert meta.shortdesc == "Manages virtual IPv4 and IPv6 addresses"
    assert list(meta.parameters) == [
        "ip",
        "cidr_netmask",
        "lvs_support",
        "arp_count",
        "mode",
        "bare",
    ]
    assert meta.parameters["ip"] == Parameter(
        "ip", "string", required=True, default="", shortdesc="IPv4 or IPv6 address", unique=True
    )
    assert meta.parameters["arp_count"].type == "integer"
    assert meta.parameters["mode"].options == ("a", "b")
    assert meta.parameters["bare"] == Parameter("bare")
    assert meta.required == ["ip"]
    assert meta.timeouts == {
        "start": timedelta(seconds=20),
        "stop": timedelta(minutes=2),
        "monitor": timedelta(seconds=20),  # the first monitor listed
        "meta-data": timedelta(seconds=5),
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not xml <", "is not XML"),
        ("<other/>", "is <other>, not <resource-agent>"),
    ],
)
def test_what_is_no_resource_agent_xml_is_refused(text: str, problem: str) -> None:
    with pytest.raises(MetadataError, match=problem) as caught:
        parse_metadata(text)
    assert isinstance(caught.value, ResourceAgentError)


def issues(params: dict[str, str | int | float | bool]) -> list[ConfigIssue]:
    return list(
        check_params(parse_metadata(XML), "heartbeat:IPaddr2", params, "resources.vip.params")
    )


def test_good_parameters_pass() -> None:
    assert (
        issues({"ip": "192.0.2.50", "cidr_netmask": 24, "lvs_support": "yes", "arp_count": 3}) == []
    )
    assert issues({"ip": "192.0.2.50", "lvs_support": False, "arp_count": "-1", "mode": "b"}) == []


def test_each_problem_has_its_key_path() -> None:
    found = issues({"colour": "red", "lvs_support": "maybe", "arp_count": "five", "mode": "c"})
    assert [str(issue) for issue in found] == [
        "resources.vip.params.colour: is not a parameter of heartbeat:IPaddr2 (known: ip, "
        "cidr_netmask, lvs_support, arp_count, mode, bare)",
        "resources.vip.params.lvs_support: 'maybe' is not a boolean (true or false), as "
        "lvs_support must be",
        "resources.vip.params.arp_count: 'five' is not an integer, as arp_count must be",
        "resources.vip.params.mode: 'c' is not one of: a, b",
        "resources.vip.params.ip: is required by heartbeat:IPaddr2",
    ]


@pytest.mark.parametrize(
    ("kind", "value", "fits"),
    [
        ("integer", 3, True),
        ("integer", "+3", True),
        ("integer", 3.5, False),
        ("integer", True, False),
        ("boolean", "TRUE", True),
        ("boolean", "off", True),
        ("boolean", 1, True),
        ("boolean", 2, False),
        ("string", 24, True),
        ("string", True, True),
        ("unknown-type", "x", True),
    ],
)
def test_types(kind: str, value: str | int | float | bool, fits: bool) -> None:
    assert (type_problem(Parameter("p", kind), value) is None) is fits


def test_describe_lists_required_parameters_first() -> None:
    text = describe_agent("heartbeat:IPaddr2", parse_metadata(XML))
    lines = text.splitlines()
    assert lines[0] == "heartbeat:IPaddr2: Manages virtual IPv4 and IPv6 addresses"
    assert lines[3] == "  ip: required, string, unique"
    assert "  arp_count: optional, integer, default 5" in lines
    assert "  mode: optional, select (a, b), default a" in lines
    assert "  stop: 120s" in lines
