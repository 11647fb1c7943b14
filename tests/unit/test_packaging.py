"""The deployment files: the image, docker-compose.yml and the systemd units.

Checked offline: the compose file with `docker-compose config` (where docker-compose exists) and
by reading it; the units with `systemd-analyze verify` and `systemd-analyze security` (where
systemd exists). Nothing here builds an image or starts a container.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CLUSTER_COMPOSE = ROOT / "docker-compose.cluster.yml"
DOCKERFILE = ROOT / "Dockerfile"
UNITS = ROOT / "packaging" / "systemd"
UNIT_NAMES = ("mrwbus.service", "mrwbus-agent@.service", "mrwbus-relay@.service")


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _mrwbus_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _compose()["services"].items() if name != "rabbitmq"}


# --- docker-compose.yml ---------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (.ci/run installs Debian's)",
)
@pytest.mark.parametrize("compose", [COMPOSE, CLUSTER_COMPOSE], ids=lambda path: path.name)
def test_docker_compose_config_passes(compose: Path) -> None:
    done = subprocess.run(
        ["docker-compose", "-f", str(compose), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    # docker-compose warns about keys it ignores (e.g. `configs` outside swarm): none allowed.
    assert done.stderr.strip() == ""


def test_nothing_is_installed_when_a_container_starts() -> None:
    for name, service in _compose()["services"].items():
        for key in ("command", "entrypoint"):
            text = (
                " ".join(service.get(key) or [])
                if isinstance(service.get(key), list)
                else str(service.get(key) or "")
            )
            assert "pip" not in text, f"{name}.{key} installs something at start: {text}"


def test_no_obsolete_version_and_no_bind_mount_of_the_source() -> None:
    compose = _compose()
    assert "version" not in compose
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            assert source in compose.get("volumes", {}), (
                f"{name} mounts {source!r}, not a named volume"
            )


def test_ports_are_published_on_the_loopback_only() -> None:
    published = [
        (name, port) for name, s in _compose()["services"].items() for port in s.get("ports", [])
    ]
    assert published
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert ("mrwbus", "127.0.0.1:8080:8080") in published


def test_the_image_is_built_once_and_shared() -> None:
    services = _mrwbus_services()
    built = [name for name, s in services.items() if "build" in s]
    assert built == ["mrwbus"]
    assert len({s["image"] for s in services.values()}) == 1


def test_the_service_listens_on_every_interface_inside_its_container() -> None:
    command = _compose()["services"]["mrwbus"]["command"]
    assert command[command.index("--http") + 1] == "0.0.0.0:8080"


def test_state_is_in_named_volumes() -> None:
    compose = _compose()
    assert "rabbitmq-data:/var/lib/rabbitmq" in compose["services"]["rabbitmq"]["volumes"]
    config = yaml.safe_load((ROOT / "config" / "cluster.yaml").read_text(encoding="utf-8"))
    for server in config["servers"]:
        agent = compose["services"][f"agent-{server}"]
        assert agent["command"][:3] == ["agent", "--server", server]
        state_dir = agent["command"][agent["command"].index("--state-dir") + 1]
        state = [v for v in agent["volumes"] if state_dir.startswith(v.split(":")[1])]
        assert len(state) == 1, f"agent-{server}: no one volume holds {state_dir}"
        name = state[0].split(":")[0]
        assert name in compose["volumes"] and not name.endswith("secrets")


def test_every_client_logs_in_as_its_provisioned_user_with_a_password_file() -> None:
    services = _mrwbus_services()
    provision = services.pop("provision")
    assert provision["command"][0] == "provision"
    secrets = provision["command"][provision["command"].index("--secrets") + 1]
    users = {"mrwbus": "mrwbus-service"} | {
        name: name for name in services if name.startswith("agent-")
    }
    assert set(users) == set(services)
    for name, user in users.items():
        environment = services[name]["environment"]
        assert environment["MRWBUS_AMQP_URL"] == f"amqp://{user}@rabbitmq:5672/", name
        assert environment["MRWBUS_AMQP_PASSWORD_FILE"] == f"{secrets}/{user}", name
        assert f"mrwbus-secrets:{secrets}:ro" in services[name]["volumes"], name
        assert services[name]["depends_on"]["provision"]["condition"] == (
            "service_completed_successfully"
        )


def test_broker_and_service_have_healthchecks() -> None:
    services = _compose()["services"]
    assert "rabbitmq-diagnostics" in services["rabbitmq"]["healthcheck"]["test"]
    assert any("/healthz" in part for part in services["mrwbus"]["healthcheck"]["test"])
    for name, service in _mrwbus_services().items():
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name


# --- Dockerfile -----------------------------------------------------------------------------


def test_the_image_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s", text, re.MULTILINE)
    assert len(stages) == 2
    final = text[text.rindex("\nFROM ") :]
    assert re.search(r"^USER mrwbus", final, re.MULTILINE)
    assert "--no-index" in final, "the final stage installs the built wheels, offline"
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", final, re.MULTILINE)
    assert '"--http", "0.0.0.0:8080"' in final


# --- systemd units --------------------------------------------------------------------------

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)


@pytest.fixture
def installed_units(tmp_path: Path) -> Path:
    """The units as installed with mrwbus where this Python has it.

    systemd looks `mrwbus` up in /usr/local/bin and /usr/bin, and `verify` fails when it is not
    there; the tests' mrwbus is in a virtualenv, so only that path is replaced. Template units
    are verified as an instance (`@server1`).
    """
    executable = Path(sys.executable).parent / "mrwbus"
    assert executable.exists(), f"{executable} is missing: pip install -e . first"
    for name in UNIT_NAMES:
        text = (UNITS / name).read_text(encoding="utf-8")
        assert "\nExecStart=mrwbus " in text
        text = text.replace("\nExecStart=mrwbus ", f"\nExecStart={executable} ")
        (tmp_path / name.replace("@.", "@server1.")).write_text(text, encoding="utf-8")
    return tmp_path


@needs_systemd
def test_systemd_analyze_verify_passes(installed_units: Path) -> None:
    units = sorted(str(path) for path in installed_units.iterdir())
    done = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, cwd=installed_units
    )
    assert done.returncode == 0, done.stderr
    # Unknown keys and bad values are only warnings: none allowed either.
    assert done.stderr.strip() == "", done.stderr


@needs_systemd
@pytest.mark.parametrize("unit", ["mrwbus.service", "mrwbus-relay@server1.service"])
def test_service_and_relay_are_hardened(installed_units: Path, unit: str) -> None:
    """The agent is left out: it runs its handlers as root on purpose (see its unit)."""
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", unit],
        capture_output=True,
        text=True,
        cwd=installed_units,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_every_unit_is_a_notify_daemon_with_credentials(name: str) -> None:
    text = (UNITS / name).read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "LoadCredential=amqp-url:",
        "Environment=MRWBUS_AMQP_URL_FILE=%d/amqp-url",
    ):
        assert f"\n{line}" in text, f"{name} lacks {line}"
    if name != "mrwbus-agent@.service":
        assert "\nProtectSystem=strict" in text
    if "@" in name:
        assert "--server %i" in text


# --- docker-compose.cluster.yml ---------------------------------------------------------------


def _cluster_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(CLUSTER_COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_cluster_layout_has_three_nodes_two_replicas_and_an_agent_per_server() -> None:
    services = _cluster_compose()["services"]
    nodes = [name for name in services if name.startswith("rabbitmq")]
    replicas = [name for name, s in services.items() if s.get("command", [""])[0] == "run"]
    config = yaml.safe_load((ROOT / "config" / "cluster.yaml").read_text(encoding="utf-8"))
    assert len(nodes) == 3 and len(replicas) == 2
    assert sorted(n for n in services if n.startswith("agent-")) == sorted(
        f"agent-{server}" for server in config["servers"]
    )
    for name, service in services.items():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in _cluster_compose()["volumes"], (name, volume)
    for port in (p for s in services.values() for p in s.get("ports", [])):
        assert str(port).startswith("127.0.0.1:"), port


def test_every_cluster_client_logs_in_as_its_provisioned_user_on_every_node() -> None:
    services = _cluster_compose()["services"]
    nodes = sorted(name for name in services if name.startswith("rabbitmq"))
    provision = services.pop("provision")
    command = provision["command"]
    secrets = command[command.index("--secrets") + 1]
    given = command[command.index("--amqp-url") + 1].split(",")
    assert given == [f"amqp://{node}:5672/" for node in nodes]
    clients = {name: s for name, s in services.items() if name not in nodes}
    users = {name: "mrwbus-service" if name.startswith("mrwbus-") else name for name in clients}
    for name, user in users.items():
        environment = clients[name]["environment"]
        urls = environment["MRWBUS_AMQP_URL"].split(",")
        assert urls == [f"amqp://{user}@{node}:5672/" for node in nodes], name
        assert environment["MRWBUS_AMQP_PASSWORD_FILE"] == f"{secrets}/{user}", name
        assert environment["MRWBUS_HEARTBEAT"] and environment["MRWBUS_REPLICAS"], name
        assert f"mrwbus-secrets:{secrets}:ro" in clients[name]["volumes"], name
        assert clients[name]["depends_on"]["provision"]["condition"] == (
            "service_completed_successfully"
        )
