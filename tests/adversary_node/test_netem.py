"""Real nodes, each in its own network namespace, with netem delay and loss on every link.

Needs root, ``ip`` and ``tc`` and the kernel's ``sch_netem``; otherwise the
test is skipped with the reason (a probe in a throwaway namespace tries
``tc qdisc add ... netem`` first).  Nothing touches the host's own network:
every interface is created inside a namespace made here (a bridge namespace
and one per node, joined by veth pairs), addresses are 10.231.0.x on that
private bridge only, and every namespace is deleted in ``finally``.  The whole
test is bounded at 60 s; every process is killed if it has not exited by then.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peer.ledger import LedgerStore
from peer.net.identity import Identity
from peer.node.eventlog import read_all

EDGES = [("s", "a"), ("s", "b"), ("a", "c"), ("b", "c")]  # a ring: every node has two paths
VALUES = {"s": "0", "a": "3", "b": "5", "c": "7"}
NETEM = ["delay", "20ms", "5ms", "loss", "1%"]
SUBNET = "10.231.0"  # private, on a bridge that exists only inside our namespaces
PORT = 7000
LIMIT = 60.0


def _sh(*argv: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)


def netem_unavailable() -> str | None:
    """Why this test cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "needs root (network namespaces and tc)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = f"peerprobe{os.getpid()}"
    made = _sh("ip", "netns", "add", probe)
    if made.returncode:
        return f"ip netns add failed: {made.stderr.strip()}"
    try:
        _sh("ip", "-n", probe, "link", "set", "lo", "up")
        tried = _sh("ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
        if tried.returncode:
            return f"tc netem is not available here: {tried.stderr.strip() or tried.returncode}"
    finally:
        _sh("ip", "netns", "del", probe)
    return None


def run_in_namespaces(tmp_path: Path, netem: list[str] | None) -> dict[str, list[dict[str, object]]]:
    """One ``peer run`` per node, each in its own namespace; returns every node's log.

    ``netem=None`` builds the same network without netem (to check this code where
    the kernel lacks sch_netem).
    """
    tag = f"{os.getpid() % 100000}"
    bridge = f"peerbr{tag}"
    names = sorted(VALUES)
    spaces = {n: f"peer{tag}{n}" for n in names}
    addr = {n: f"{SUBNET}.{i + 1}" for i, n in enumerate(names)}
    ids = {n: Identity.from_seed(hashlib.sha256(f"netem/{n}".encode()).digest()) for n in names}
    created: list[str] = []
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def must(*argv: str) -> None:
        done = _sh(*argv)
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")

    try:
        must("ip", "netns", "add", bridge)
        created.append(bridge)
        must("ip", "-n", bridge, "link", "add", "br0", "type", "bridge")
        must("ip", "-n", bridge, "link", "set", "br0", "up")
        for i, n in enumerate(names):
            ns = spaces[n]
            must("ip", "netns", "add", ns)
            created.append(ns)
            must("ip", "-n", ns, "link", "set", "lo", "up")
            # Both ends are born inside namespaces: the host's interfaces are never touched.
            must("ip", "-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", f"p{i}", "netns", bridge)
            must("ip", "-n", bridge, "link", "set", f"p{i}", "master", "br0")
            must("ip", "-n", bridge, "link", "set", f"p{i}", "up")
            must("ip", "-n", ns, "addr", "add", f"{addr[n]}/24", "dev", "veth0")
            must("ip", "-n", ns, "link", "set", "veth0", "up")
            if netem:
                must("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "veth0", "root", "netem", *netem)
        neighbours = {n: [b if a == n else a for a, b in EDGES if n in (a, b)] for n in names}
        for n in names:
            key = tmp_path / f"{n}.key"
            ids[n].save(key)
            argv = [
                "ip", "netns", "exec", spaces[n], sys.executable, "-m", "peer", "run",
                "--host", addr[n], "--port", str(PORT), "--key", str(key), "--name", n, "--value", VALUES[n],
                "--neighbours", ",".join(f"{m}=ws://{addr[m]}:{PORT}#{ids[m].public_hex}" for m in neighbours[n]),
                "--seed", "1", "--data-dir", str(tmp_path / n), "--log-json", str(tmp_path / f"{n}.ndjson"),
                "--gather-window", "0.3", "--reply-timeout", "8", "--context-timeout", "5",
                "--exit-when-done", "--no-tui",
            ]
            if n == "s":
                argv += ["--sell", "item", "--auction-id", "netem/1", "--start-timeout", "20"]
            out = open(tmp_path / f"{n}.out", "wb")  # noqa: SIM115 - closed with the process below
            procs[n] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
            out.close()
        deadline = time.monotonic() + LIMIT
        for n, proc in procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{n} did not finish within {LIMIT:.0f} s (see {tmp_path / (n + '.out')})")
        return {n: read_all(tmp_path / f"{n}.ndjson") for n in names}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        for ns in reversed(created):
            _sh("ip", "netns", "del", ns)


def check_outcome(tmp_path: Path, logs: dict[str, list[dict[str, object]]]) -> None:
    finals = {n: next((e for e in ev if e.get("kind") == "final"), None) for n, ev in logs.items()}
    assert all(finals.values()), {n: [e.get("kind") for e in ev][-5:] for n, ev in logs.items()}
    assert len({str(f["winner"]) for f in finals.values() if f}) == 1
    copies = {}
    for n in logs:
        with LedgerStore.open_data_dir(tmp_path / n, read_only=True) as store:
            assert store.verify_all().ok
            chain = store.chain("netem/1")
            assert chain is not None
            copies[n] = tuple(h.hash for h in chain.hops)
    assert len(set(copies.values())) == 1, copies


def test_nodes_in_namespaces_with_netem_delay_and_loss(tmp_path: Path) -> None:
    reason = netem_unavailable()
    if reason is not None:
        pytest.skip(reason)
    logs = run_in_namespaces(tmp_path, NETEM)
    check_outcome(tmp_path, logs)
