"""End to end: the fork server (peer.launch.zygote) and the exec spawn path.

Real processes, bounded: 3 nodes each, every wait under a deadline.  The
forked nodes must behave as the launcher's watch loop expects of any child:
pids, exit codes as multiprocessing gives them (-9 for SIGKILL), a restart
with the same argv, an orderly stop, and none left behind when the launcher
goes away without a word.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peer.launch.plan import plan_nodes
from peer.launch.processes import Children
from peer.node.eventlog import read_all
from peer.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server forks")


def plans_for(tmp_path: Path) -> list:
    scenario = load_scenario(ROOT / "scenarios" / "small-tree.toml")
    return plan_nodes(scenario, tmp_path / "run", seed=1, gather_window=0.2, reply_timeout=60, context_timeout=30)


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def started(plan) -> int:
    return sum(1 for e in read_all(plan.log_path) if e.get("kind") == "started")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (reaped later by its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_forked_nodes_die_restart_and_stop_like_any_child(tmp_path: Path) -> None:
    plans = plans_for(tmp_path)
    children = Children("fork")
    try:
        children.start(plans)
        pids = dict(children.procs)
        assert len(set(pids.values())) == 3 and os.getpid() not in pids.values()
        server = children._server
        assert server is not None
        for pid in pids.values():  # separate processes, children of the fork server, not of us
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            assert ppid == server.proc.pid
            # The fork server's command line names the work directory: pgrep -f WORKDIR finds the nodes.
            assert str(tmp_path / "run") in Path(f"/proc/{pid}/cmdline").read_text()
        wait_for(lambda: all(started(p) == 1 for p in plans), 30, "every node to start")
        a = next(p for p in plans if p.name == "a")
        children.kill("a")
        wait_for(lambda: "a" in children.dead(), 10, "the kill to be reported")
        assert children.dead() == {"a": -signal.SIGKILL}
        children.restart(a)
        assert children.procs["a"] != pids["a"] and "a" not in children.dead()
        wait_for(lambda: started(a) == 2, 30, "the restarted node to start again")
        assert not any(e.get("kind") == "error" for e in read_all(a.log_path))
    finally:
        children.stop()
    # SIGTERM: every node stopped itself in order (128 + 15), and the fork server is gone.
    assert children.dead() == {p.name: 128 + signal.SIGTERM for p in plans}
    assert children._server is not None and children._server.proc.poll() == 0
    assert all("Traceback" not in p.out_path.read_text() for p in plans)


def test_nodes_stop_when_the_launcher_vanishes(tmp_path: Path) -> None:
    # The launcher killed outright (SIGKILL, no stop): the fork server sees its pipe close and stops the nodes.
    plans = plans_for(tmp_path)
    children = Children("fork")
    children.start(plans)
    pids = list(children.procs.values())
    server = children._server
    assert server is not None and server.proc.stdin is not None
    server.proc.stdin.close()
    try:
        server.proc.wait(15)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        assert server.proc.stdout is not None
        server.proc.stdout.close()
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, "the nodes to stop")


def test_nodes_die_with_a_killed_fork_server(tmp_path: Path) -> None:
    # The fork server SIGKILLed: it cannot stop anyone, the kernel does (PR_SET_PDEATHSIG).
    plans = plans_for(tmp_path)
    children = Children("fork")
    children.start(plans)
    pids = list(children.procs.values())
    server = children._server
    assert server is not None
    wait_for(lambda: all(started(p) == 1 for p in plans), 30, "every node to start")
    server.proc.kill()
    server.proc.wait(10)
    assert server.proc.stdin is not None and server.proc.stdout is not None
    server.proc.stdin.close()
    server.proc.stdout.close()
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, "the nodes to stop")


def test_a_bad_argv_is_the_nodes_own_one_line_error(tmp_path: Path) -> None:
    plans = plans_for(tmp_path)[:1]
    plans[0].argv.extend(["--port", "not-a-port"])
    children = Children("fork")
    try:
        children.start(plans)
        wait_for(lambda: plans[0].name in children.dead(), 30, "the node to exit")
        assert children.dead() == {plans[0].name: 2}
    finally:
        children.stop()
    out = plans[0].out_path.read_text()
    assert "Invalid value for '--port'" in out and "Traceback" not in out


def test_exec_spawn_runs_the_same_auction(tmp_path: Path) -> None:
    env = {**os.environ, "PEER_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(ROOT / "tools" / "launch"), str(ROOT / "scenarios" / "small-tree.toml"), "--headless", "--json",
         "--workdir", str(tmp_path / "run"), "--spawn", "exec"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(proc.stdout)
    assert run["hops"] == [{"hop": 1, "seller": "s", "buyer": "a", "price": 5}]
    assert run["check"]["ok"] and run["check"]["ledger_verified"] == 3


def test_one_page_pipes_do_not_deadlock_a_big_batch(tmp_path: Path) -> None:
    # Linux gives new pipes a single page once a user's pipes hold pipe-user-pages-soft (a machine
    # running thousands of processes): a batch of requests and reports then overflows both pipes.
    # 150 children that print their help and exit.
    import fcntl

    from peer.launch.zygote import ForkServer

    server = ForkServer(tag=str(tmp_path))
    try:
        assert server.proc.stdin is not None and server.proc.stdout is not None
        for pipe in (server.proc.stdin, server.proc.stdout):
            fcntl.fcntl(pipe.fileno(), 1031, 4096)  # F_SETPIPE_SZ
        requests = [(f"n{i}", ["run", "--help"], str(tmp_path / f"n{i}.out")) for i in range(150)]
        pids = server.fork(requests, timeout=60)
        assert len(set(pids.values())) == 150
        deadline = time.monotonic() + 60
        while len([n for n, _, _ in requests if server.exit_code(n) is not None]) < 150:
            assert time.monotonic() < deadline, "not every child exited"
            server.poll(0.1)
        assert {server.exit_code(n) for n, _, _ in requests} == {0}
        assert "peer run" in (tmp_path / "n7.out").read_text()
    finally:
        server.close()


LAUNCHER = """
import sys, time
from pathlib import Path
from peer.launch.processes import Children
from tests.e2e.test_launch_zygote import plans_for
children = Children("exec")
children.start(plans_for(Path(sys.argv[1])))
print(" ".join(str(p.pid) for p in children.procs.values()), flush=True)
time.sleep(60)
"""


def test_exec_spawned_nodes_die_with_a_killed_launcher(tmp_path: Path) -> None:
    # The launcher SIGKILLed in exec mode (no fork server, no stop): the kernel stops its nodes.
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                                text=True)
    try:
        assert launcher.stdout is not None
        pids = [int(p) for p in launcher.stdout.readline().split()]
        assert pids
        wait_for(lambda: all(started(p) == 1 for p in plans_for(tmp_path)), 30, "every node to start")
        launcher.kill()
        launcher.wait(10)
        wait_for(lambda: not any(alive(pid) for pid in pids), 10, "the nodes to stop")
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)
        if launcher.stdout is not None:
            launcher.stdout.close()
