"""The launcher's agent on one host: ``python -m peer.launch.host_agent``.

The launcher starts one agent per host through the host's command (``ssh
HOST``, ``ip netns exec NAME``, ...) and talks to it over its stdin and
stdout, one JSON object per line, so nothing but that command is needed
between the machines: no shared file system, no extra port.

First line in: the plan ``{"root": LAUNCHER_ROOT, "nodes": [{"name", "argv",
"key", "out"}]}``; the agent makes its own work directory, rewrites the
launcher's root in every argv to it, writes the keys (mode 0600) and forks the
nodes exactly as the local launcher does (:mod:`peer.launch.processes`).

Then, in: ``{"op": "signal", "node", "signum"}`` and ``{"op": "stop"}``.
Out: ``{"ev": "log", "node", "line"}`` for every line of a node's event log,
``{"ev": "exit", "node", "code"}``, ``{"ev": "memory", "kib": {...}}``, and on
stop ``{"ev": "ledger", "node", "tar"}`` (the node's data directory, a base64
gzip tar) for each node, then ``{"ev": "stopped"}``.  If the launcher goes
away (stdin closes), the agent stops its nodes and exits: it never leaves
orphans behind.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AgentNode:
    name: str
    argv: list[str]
    out_path: Path
    log_path: Path
    data_dir: Path
    wave: int = 0  # a host's share starts at once: no staged start across hosts (Children.start reads it)


def _rewrite(argv: list[str], old_root: str, new_root: str) -> list[str]:
    return [new_root + a[len(old_root):] if a.startswith(old_root) else a for a in argv]


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def prepare(plan: dict[str, Any], root: Path) -> list[AgentNode]:
    nodes = []
    for spec in plan["nodes"]:
        argv = _rewrite(list(spec["argv"]), plan["root"], str(root))
        key_path = Path(_option(argv, "--key"))
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(spec["key"])
        log_path = Path(_option(argv, "--log-json"))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out_path = log_path.with_suffix(".out")
        nodes.append(AgentNode(spec["name"], argv, out_path, log_path, Path(_option(argv, "--data-dir"))))
    return nodes


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _tar(directory: Path) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if directory.exists():
            tar.add(directory, arcname=".")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def main() -> int:
    first = sys.stdin.readline()
    if not first:
        return 2
    plan = json.loads(first)
    root = Path(tempfile.mkdtemp(prefix="peer-host-"))
    try:
        return _serve(plan, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve(plan: dict[str, Any], root: Path) -> int:
    from peer.launch.processes import Children  # imports peer before forking, as the launcher does
    from peer.node.eventlog import Tail

    nodes = prepare(plan, root)
    children = Children()
    children.start(nodes)  # fork before any thread exists
    commands: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read_commands() -> None:
        for line in sys.stdin:
            try:
                commands.put(json.loads(line))
            except ValueError:
                continue
        commands.put(None)  # the launcher is gone

    threading.Thread(target=read_commands, daemon=True).start()
    tails = {n.name: Tail(n.log_path) for n in nodes}
    reported: set[str] = set()

    def relay_logs() -> None:
        for name, tail in tails.items():
            for event in tail.read_new():
                _emit({"ev": "log", "node": name, "line": json.dumps(event)})

    while True:
        relay_logs()
        for name, code in children.dead().items():
            if name not in reported:
                reported.add(name)
                _emit({"ev": "exit", "node": name, "code": code})
        try:
            command = commands.get(timeout=0.05)
        except queue.Empty:
            continue
        if command is None or command.get("op") == "stop":
            break
        if command.get("op") == "signal" and command.get("node") in children.procs:
            children.signal(command["node"], int(command["signum"]))
        elif command.get("op") == "memory":
            _emit({"ev": "memory", "kib": children.memory_kib()})
    children.stop()
    time.sleep(0.05)
    relay_logs()
    for node in nodes:
        _emit({"ev": "ledger", "node": node.name, "tar": _tar(node.data_dir)})
    _emit({"ev": "stopped"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
