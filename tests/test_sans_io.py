"""The SRA core and the in-memory simulator are sans-I/O: no async framework, no UI, no sockets.

Each check runs in a fresh interpreter so that modules imported by other tests
(or by pytest plugins such as pytest-trio) cannot hide an unwanted import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("trio", "trio_websocket", "rich", "typer", "wsproto", "websockets", "asyncio")

CORE = (
    "peer.sra.machine",
    "peer.sra.messages",
    "peer.sra.effects",
    "peer.sra.local_auction",
    "peer.sra.ledger_entry",
)

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def imported_after(*modules: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


def top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.fixture(scope="module")
def core_modules() -> set[str]:
    return imported_after(*CORE)


@pytest.fixture(scope="module")
def sim_modules() -> set[str]:
    return imported_after(*CORE, "peer.sim")


def test_the_probe_sees_what_it_imports(core_modules: set[str], sim_modules: set[str]) -> None:
    assert set(CORE) <= core_modules
    assert "peer.sim.network" in sim_modules and "peer.sim.run" in sim_modules


@pytest.mark.parametrize("forbidden", FORBIDDEN)
def test_core_and_sim_import_no_io_framework_or_ui(sim_modules: set[str], forbidden: str) -> None:
    assert forbidden not in top_level(sim_modules)


def test_core_state_machine_imports_no_socket_at_all(core_modules: set[str]) -> None:
    assert not {"socket", "_socket", "ssl", "selectors"} & core_modules


def test_core_imports_only_the_stdlib_and_its_own_package(core_modules: set[str]) -> None:
    third_party = {
        name
        for name in top_level(core_modules)
        if name not in sys.stdlib_module_names and name != "peer" and not name.startswith("_")
    }
    assert third_party == set()


def test_sim_imports_no_io_part_of_peer(sim_modules: set[str]) -> None:
    # The stdlib ``socket`` module itself does get imported with peer.sim: networkx (through
    # the scenario model) imports importlib.metadata -> email.utils -> socket.  That is a
    # side effect of a third-party import, not I/O; what must never load here are peer's
    # own network, node, ledger-signing and UI layers.
    # Only the pure layers: machine, simulator, scenario model, references, results.
    allowed = ("peer.sra", "peer.sim", "peer.scenario", "peer.result", "peer.money", "peer.errors")
    ours = {name for name in sim_modules if name.startswith("peer.")}
    assert {name for name in ours if not name.startswith(allowed)} == set()


# ---- regression: packaging ----------------------------------------------------------------
# src/peer/sra/ once had no __init__.py, so peer.sra was a namespace package.  pyproject uses
# [tool.setuptools.packages.find] (find_packages, not find_namespace_packages), which skips
# those: a wheel or a non-editable install shipped peer.sim and the CLI but not the SRA core.
# The editable install used here hid the problem.
def test_regression_peer_sra_is_a_regular_package() -> None:
    import importlib.util

    spec = importlib.util.find_spec("peer.sra")
    assert spec is not None
    assert spec.origin is not None, "peer.sra is a namespace package: add src/peer/sra/__init__.py"
