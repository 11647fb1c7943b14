"""The whole way: the kernel drops a link, the relay reports it, the service fails the group
over with the real agents. Service, agents and relay run as separate processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.broker import BusProbe
from tests.integration.processes import Processes
from tests.integration.relay.bus import FaultCollector
from tests.integration.relay.kernel import VethPair
from tests.integration.test_closed_loop import actions, wait_status

pytestmark = pytest.mark.broker

SERVERS = {"server1", "server2"}


def cluster_yaml(interface: str, tmp_path: Path) -> str:
    return f"""
servers: {{server1: {{server_group: a}}, server2: {{server_group: b}}}}
groups:
  failover1: {{servers: [server1, server2], resources: [app1]}}
service: {{stop_timeout: 5s, start_timeout: 10s, heartbeat_timeout: 3s}}
security: {{verify_senders: false}}
monitors:
  public-lan:
    category: NIC
    keyword: {interface}
    recovery: {{action: failover, target: failover1}}
agent:
  heartbeat_interval: 1s
  state_dir: state
  handlers:
    failover.stop: {{run: 'echo "$MRWBUS_SERVER stop $MRWBUS_GROUP" >> actions.log'}}
    failover.start: {{run: 'echo "$MRWBUS_SERVER start $MRWBUS_GROUP" >> actions.log'}}
relay:
  debounce: 0.5
  spool_dir: {tmp_path / "spool"}
  nic: {{interfaces: [{interface}]}}
"""


async def test_the_relays_nic_fault_fails_the_group_over(
    amqp_url: str, probe: BusProbe, faults: FaultCollector, veth: VethPair, tmp_path: Path
) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(cluster_yaml(veth.host, tmp_path))
    processes = Processes(config, tmp_path, amqp_url)
    try:
        await processes.service()
        for server in sorted(SERVERS):
            await processes.agent(server)
        await probe.wait_reports(SERVERS)
        await wait_status(amqp_url, lambda status: all(s.alive for s in status.servers))
        relay = await processes.relay("server1")

        veth.peer_down()
        fault = await faults.next(timeout=15)
        assert (fault.server, fault.device, fault.state) == ("server1", veth.host, "error")
        done = await probe.wait_event("MRW-320", timeout=20)
        assert done.detail["to_server"] == "server2"
        assert actions(tmp_path) == ["server1 stop failover1", "server2 start failover1"]
        status = await wait_status(amqp_url, lambda s: any(r.status == "Error" for r in s.monitors))
        [row] = [r for r in status.monitors if r.server == "server1"]
        assert (row.monitor, row.status, row.last_device) == ("public-lan", "Error", veth.host)
        assert "relay of server1: nic: interfaces" in relay.output()
    except BaseException:
        print(processes.logs())
        raise
    finally:
        await processes.stop_all()
