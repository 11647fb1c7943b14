"""The Pacemaker backend's pure parts: crm_mon's XML read, a move's refusal explained, and each
command mapped to its Pacemaker operation. No Pacemaker runs here."""

from __future__ import annotations

import pytest

from mrwbus.agent.pacemaker.crm_mon import (
    Location,
    parse_constraints,
    parse_crm_mon,
    refusal_reason,
)
from mrwbus.agent.pacemaker.operations import (
    FenceHow,
    Kind,
    NotPacemakers,
    move_constraint_xml,
    operation_for,
)
from mrwbus.config.loading import parse_config
from mrwbus.config.pacemaker import PacemakerConfig
from mrwbus.errors import ConfigError, ContractError
from mrwbus.messages import Action, FenceAction, FinalAction, RecoveryCommand, utc_now
from mrwbus.messages.commands import CommandStep


def crm_mon(
    *,
    d1: str = "node1",
    d2: str = "node1",
    node2: str = 'online="true" standby="false"',
    extra: str = "",
) -> str:
    def resource(rid: str, where: str) -> str:
        if not where:
            return (
                f'<resource id="{rid}" role="Stopped" target_role="Stopped" active="false"'
                ' managed="true" failed="false"/>'
            )
        return (
            f'<resource id="{rid}" role="Started" active="true" managed="true" failed="false">'
            f'<node name="{where}" id="1" cached="true"/></resource>'
        )

    return f"""<pacemaker-result api-version="2.25" request="crm_mon -1 --output-as=xml">
  <summary><current_dc present="true" name="node1" id="1"/></summary>
  <nodes>
    <node name="node1" id="1" online="true" standby="false" maintenance="false" unclean="false" shutdown="false"/>
    <node name="node2" id="2" {node2} maintenance="false" unclean="false" shutdown="false"/>
  </nodes>
  <resources>
    <group id="grp1" number_resources="2">{resource("d1", d1)}{resource("d2", d2)}</group>
    <resource id="fence-node1" role="Started" active="true" managed="true" failed="false"><node name="node2"/></resource>
  </resources>
  {extra}
  <status code="0" message="OK"/>
</pacemaker-result>"""


FAILED_MONITOR = """<failures>
  <failure op_key="d1_monitor_10000" node="node1" exitstatus="not running" exitreason="" exitcode="7"
   call="27" status="complete" last-rc-change="2026-12-06 01:07:27Z" interval="10000" task="monitor"/>
</failures>"""


def test_where_each_group_runs_and_the_nodes() -> None:
    status = parse_crm_mon(crm_mon())
    assert status.dc == "node1"
    group = status.unit("grp1")
    assert group is not None and group.nodes == {"node1"} and group.runs_wholly_on("node1")
    assert not group.runs_wholly_on("node2")
    assert status.unit("d2") is not None and status.unit("fence-node1").nodes == {"node2"}  # type: ignore[union-attr]
    assert status.nodes["node2"].eligible and status.unit("nothing") is None


def test_a_group_half_moved_is_not_moved() -> None:
    group = parse_crm_mon(crm_mon(d1="node2", d2="node1")).unit("grp1")
    assert group is not None and group.nodes == {"node1", "node2"}
    assert not group.runs_wholly_on("node2")


def test_a_stopped_group_runs_nowhere_and_says_why() -> None:
    status = parse_crm_mon(crm_mon(d1="", d2=""))
    group = status.unit("grp1")
    assert group is not None and group.stopped()
    assert refusal_reason(status, group, "node2") == "grp1 has target-role Stopped"


def test_failed_actions_are_read_as_pacemakers_recoveries() -> None:
    status = parse_crm_mon(crm_mon(extra=FAILED_MONITOR))
    [failure] = status.failures
    assert failure.resource == "d1" and failure.node == "node1" and failure.task == "monitor"
    assert failure.describe() == "d1 monitor on node1 failed (not running) at 2026-12-06 01:07:27Z"
    assert status.failures_of(status.unit("grp1")) == [failure]  # type: ignore[arg-type]


def test_what_is_no_crm_mon_output_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="no XML"):
        parse_crm_mon("Connection to cluster failed")
    with pytest.raises(ContractError, match="not <pacemaker-result>"):
        parse_crm_mon("<cib/>")


@pytest.mark.parametrize(
    ("node2", "reason"),
    [
        ('online="false" standby="false"', "node node2 is offline"),
        ('online="true" standby="true"', "node node2 is in standby"),
    ],
)
def test_a_move_to_a_node_that_cannot_take_it_is_refused(node2: str, reason: str) -> None:
    status = parse_crm_mon(crm_mon(node2=node2))
    assert refusal_reason(status, status.unit("grp1"), "node2") == reason


def test_a_ban_is_named_and_our_own_constraint_is_not() -> None:
    constraints = parse_constraints(
        """<constraints>
          <rsc_location id="mrwbus-move-grp1" rsc="grp1" node="node2" score="INFINITY"/>
          <rsc_location id="keep-off" rsc="grp1" score="-INFINITY" node="node2"/>
        </constraints>"""
    )
    status = parse_crm_mon(crm_mon())
    unit = status.unit("grp1")
    assert refusal_reason(status, unit, "node2", constraints, "mrwbus-move-grp1") == (
        "location constraint keep-off bans grp1 from node2 (score -INFINITY)"
    )
    assert refusal_reason(status, unit, "node2", constraints[:1], "mrwbus-move-grp1") is None
    member_ban = (Location("cli-ban-d2-on-node2", "d2", "node2", "-INFINITY"),)
    assert "bans d2 from node2" in (refusal_reason(status, unit, "node2", member_ban) or "")
    assert (
        refusal_reason(status, unit, "node3") == "Pacemaker has no node node3 (known: node1, node2)"
    )


def test_the_move_constraint_is_ours_alone() -> None:
    assert move_constraint_xml("grp1", "node2") == (
        '<rsc_location id="mrwbus-move-grp1" rsc="grp1" node="node2" score="INFINITY"/>'
    )


def command(action: Action, **fields: object) -> RecoveryCommand:
    return RecoveryCommand(
        id="c1",
        fault_id="f1",
        monitor="m",
        server="db1",
        action=action,
        issued_at=utc_now(),
        **fields,
    )


SETTINGS = PacemakerConfig(resources={"app": "grp-app"}, nodes={"db1": "n1", "db2": "n2"})


@pytest.mark.parametrize(
    ("given", "kind", "resource", "node", "fence"),
    [
        (command(Action.FAILOVER, group="app", step=CommandStep.STOP, to_server="db2"), Kind.MOVE, "grp-app", "n2", None),
        (command(Action.FAILOVER, group="app", step=CommandStep.START, from_server="db2"), Kind.ARRIVE, "grp-app", "n1", None),
        (command(Action.FAILOVER, group="pg", step=CommandStep.STOP, to_server="db9"), Kind.MOVE, "pg", "db9", None),
        (command(Action.RESTART, group="app"), Kind.RESTART, "grp-app", "n1", None),
        (command(Action.RESTART, group="app", resource="vip"), Kind.RESTART, "vip", "n1", None),
        (command(Action.FINAL_ACTION, group="app", final_action=FinalAction.STOP_GROUP), Kind.STOP, "grp-app", "n1", None),
        (command(Action.FINAL_ACTION, final_action=FinalAction.STOP_GROUP), Kind.STOP, None, "n1", None),
        (command(Action.FINAL_ACTION, final_action=FinalAction.STOP_CLUSTER_SERVICE), Kind.STANDBY, None, "n1", None),
        (command(Action.FINAL_ACTION, final_action=FinalAction.BMC_POWER_OFF), Kind.FENCE, None, "n1", FenceHow.OFF),
        (command(Action.FINAL_ACTION, final_action=FinalAction.BMC_POWER_CYCLE), Kind.FENCE, None, "n1", FenceHow.REBOOT),
        (command(Action.FENCE, target="db2", fence_action=FenceAction.OFF), Kind.FENCE, None, "n2", FenceHow.OFF),
    ],
)  # fmt: skip
def test_each_command_maps_to_one_pacemaker_operation(
    given: RecoveryCommand, kind: Kind, resource: str | None, node: str, fence: FenceHow | None
) -> None:
    operation = operation_for(given, SETTINGS, "db1")
    assert (operation.kind, operation.resource, operation.node, operation.fence) == (
        kind,
        resource,
        node,
        fence,
    )


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (command(Action.FAILOVER, group="app", step=CommandStep.STOP), "without a destination"),
        (command(Action.FINAL_ACTION, final_action=FinalAction.BMC_NMI), "no NMI"),
        (command(Action.FENCE, target="db2", fence_action=FenceAction.DIAG), "not diag"),
        (
            command(Action.FINAL_ACTION, final_action=FinalAction.SHUTDOWN),
            "not carried out by Pacemaker",
        ),
    ],
)
def test_what_pacemaker_cannot_do_is_refused_with_why(given: RecoveryCommand, why: str) -> None:
    with pytest.raises(NotPacemakers, match=why):
        operation_for(given, SETTINGS, "db1")


BASE = """
servers: {db1: {}, db2: {}}
groups: {app: {servers: [db1, db2]}}
agent:
  backend: pacemaker
"""


def test_the_configuration_refuses_handlers_pacemaker_replaces_and_unknown_names() -> None:
    text = (
        BASE
        + """  handlers: {failover.stop: {run: "true"}, final_action.shutdown: {run: "true"}}
  pacemaker: {resources: {nope: grp}, nodes: {db3: n3}}
"""
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, "c.yaml")
    message = str(error.value)
    assert "agent.handlers.failover.stop: is carried out by Pacemaker" in message
    assert "final_action.shutdown" not in message  # a local handler, as before
    assert "agent.pacemaker.resources.nope: unknown group or resource" in message
    assert "agent.pacemaker.nodes.db3: unknown server" in message


def test_a_valid_pacemaker_configuration_reads() -> None:
    config = parse_config(
        BASE + "  pacemaker: {resources: {app: grp-app}, settle_timeout: 2m}\n", "c.yaml"
    )
    assert config.agent.backend == "pacemaker"
    assert config.agent.pacemaker.resource_id("app") == "grp-app"
    assert config.agent.pacemaker.node_name("db1") == "db1"
    assert config.agent.pacemaker.settle_timeout.total_seconds() == 120
