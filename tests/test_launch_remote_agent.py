"""A host agent that dies: the launcher points at the agent's own stderr, where its error is."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from peer.launch.hosts import HostSpec
from peer.launch.remote import RemoteChildren


def test_a_dead_agent_marks_its_nodes_dead_and_names_its_stderr(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    # The "remote command" fails before the agent runs (as ssh does on a host it cannot reach).
    host = HostSpec("h1", "127.0.0.1", command=["sh", "-c", "echo 'agent: no route to host' >&2; exit 7", "sh"],
                    python=sys.executable)
    children = RemoteChildren([host], {"n1": "h1", "n2": "h1"}, tmp_path)
    children.start([])
    deadline = time.monotonic() + 20
    while len(children.dead()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    children.stop()
    assert children.dead() == {"n1": 7, "n2": 7}
    err = tmp_path / "logs" / "agent-h1.err"
    assert str(err) in children.log_hint("n1") and "exited with code 7" in children.log_hint("n1")
    assert "no route to host" in err.read_text()
    assert any("h1" in e and str(err) in e for e in children.errors)
    assert children.log_hint("elsewhere") == "see its .out log"
