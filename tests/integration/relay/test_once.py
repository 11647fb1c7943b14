"""`mrwbus relay --once`: what the sources see now, printed; no broker needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.relay.conftest import relay_yaml
from tests.integration.relay.test_files import fc_host


def test_once_prints_what_every_source_sees(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    fc_host(sysfs, "host3", "Online")
    fc_host(sysfs, "host5", "Linkdown")
    log = tmp_path / "kern.log"
    log.write_text("")
    config = tmp_path / "cluster.yaml"
    config.write_text(
        relay_yaml(
            f"""
            nic: {{interfaces: [lo, mrwbus-absent]}}
            fc: {{sysfs: {sysfs}}}
            logs:
              kern:
                path: {log}
                patterns: [{{name: any, category: SPS, regex: '(?P<device>sd[a-z]+) failed'}}]
            """,
            tmp_path,
        )
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrwbus",
            "relay",
            "--server",
            "server1",
            "--config",
            str(config),
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "MRWBUS_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "relay of server1, debounce 2s"
    assert any(line.startswith("nic lo: up (carrier 1") for line in lines), lines
    assert "nic mrwbus-absent: DOWN (no such interface)" in lines
    assert "fc host3: port_state Online" in lines
    assert "fc host5: port_state Linkdown" in lines
    assert f"logs.kern: {log} readable; patterns: 1" in lines
    assert lines[-1].endswith("server1.spool: 0 fault(s) waiting for the broker")
