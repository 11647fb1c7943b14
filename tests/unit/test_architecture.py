"""The house's shape, checked: the layer contracts of `pyproject.toml` (import-linter), the
pure core's imports, and the size of the rooms (docs/architecture.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mrwbus"
MAX_MODULE_LINES = 400
MAX_LOOSE_MODULES = 8


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the package under `root`, with `root`'s own pyproject.toml."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "lint-imports is missing: pip install -e '.[test]'"
    return subprocess.run(
        [lint, "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layer_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("core/cluster.py", "import aio_pika", "need no broker client"),
        ("bus/topology.py", "import mrwbus.service.actor", "The layers"),
        ("core/progress.py", "import mrwbus.core.failover", "No import cycles"),
    ],
)
def test_a_planted_import_breaks_its_contract(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "mrwbus", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "mrwbus" / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")

    result = lint_imports(copy)

    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout


def test_the_core_imports_no_broker_client() -> None:
    check = (
        "import sys, mrwbus.core.cluster, mrwbus.core.recovery, mrwbus.config.loading; "
        "assert not {'aio_pika', 'aiormq', 'aiohttp'} & set(sys.modules), sorted(sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_no_module_is_two_concepts() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_the_top_of_the_package_holds_rooms_not_loose_modules() -> None:
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, loose


def test_no_module_name_is_used_for_two_jobs() -> None:
    """`dead_letters` in two packages once meant two different things; a name is one job."""
    seen: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name not in {"__init__.py", "__main__.py"}:
            seen.setdefault(path.stem, []).append(str(path.relative_to(PACKAGE)))
    twice = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not twice, twice
