"""End to end: the launcher as an operator meets it: refusals before any process starts, a closed
pipe, and private keys that never outlive a launch in a temp dir.  ``peer launch`` is the same command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the launcher forks its nodes")


def env_with_tmp(tmp_path: Path) -> dict[str, str]:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return {**os.environ, "PEER_PYTHON": sys.executable, "TMPDIR": str(temp)}


def launch(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "tools" / "launch"), *args], capture_output=True, text=True,
                          timeout=timeout, env=env_with_tmp(tmp_path), check=False)


def launch_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("peer-launch-*"))


def test_disconnected_graph_is_refused_at_once(tmp_path: Path) -> None:
    # Defect 6: the launcher started every node and waited for the unreachable ones until its timeout.
    split = tmp_path / "split.toml"
    split.write_text('name = "split"\nseller = "s"\nseed = 1\n[values]\ns = 0\na = 3\nb = 5\nc = 4\n'
                     '[graph]\nedges = [["s", "a"], ["b", "c"]]\n')
    proc = launch(tmp_path, str(split), "--headless", "--timeout", "20", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "not connected" in proc.stderr and "(b, c)" in proc.stderr and "Traceback" not in proc.stderr
    assert launch_dirs(tmp_path) == []  # nothing was created, no process started


def test_timeouts_too_short_for_the_graph_are_refused(tmp_path: Path) -> None:
    # Defect 5: these values made honest runs differ from the replay (4 of 6 runs failed).
    proc = launch(tmp_path, str(ROOT / "scenarios" / "ws-20.toml"), "--headless", "--context-timeout", "2",
                  timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "--context-timeout 2 is too short" in proc.stderr and "at least 6.5" in proc.stderr
    proc = launch(tmp_path, str(ROOT / "scenarios" / "ws-20.toml"), "--headless", "--reply-timeout", "3",
                  timeout=30)
    assert proc.returncode == 2 and "at least 7.7" in proc.stderr, proc.stderr
    assert launch_dirs(tmp_path) == []


def test_closed_pipe_exits_with_the_runs_code_and_removes_the_keys(tmp_path: Path) -> None:
    # Defect 7: `tools/launch ... | head -1` exited 1 silently and left a temp dir holding private keys.
    # Also `peer launch`: the same command, installed with the package.
    proc = subprocess.Popen([sys.executable, "-m", "peer", "launch", str(ROOT / "scenarios" / "small-tree.toml"),
                             "--headless"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_with_tmp(tmp_path))
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # like `head -1`
    try:
        code = proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    err = proc.stderr.read()
    proc.stderr.close()
    assert first.strip(), err
    assert code == 0, err
    assert "Traceback" not in err
    assert launch_dirs(tmp_path) == []


def test_a_failed_launch_keeps_its_logs_but_never_its_keys(tmp_path: Path) -> None:
    proc = launch(tmp_path, str(ROOT / "scenarios" / "small-tree.toml"), "--headless", "--link-timeout", "0.01")
    assert proc.returncode == 1, proc.stderr
    (kept,) = launch_dirs(tmp_path)
    assert f"logs kept in {kept} (keys removed)" in proc.stderr
    assert (kept / "logs").is_dir() and not (kept / "keys").exists()


def test_unwritable_workdir_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = launch(tmp_path, str(ROOT / "scenarios" / "small-tree.toml"), "--headless", "--workdir",
                  str(blocker / "run"), timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_terminated_or_hung_up_launch_stops_its_nodes_and_removes_the_keys(tmp_path: Path, signum: int) -> None:
    # A closed terminal (SIGHUP) used to kill the launcher outright: children and keys stayed behind.
    proc = subprocess.Popen([str(ROOT / "tools" / "launch"), str(ROOT / "scenarios" / "ws-20.toml"), "--headless"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env_with_tmp(tmp_path))
    deadline = time.monotonic() + 60
    while not any((d / "keys").is_dir() and any((d / "logs").glob("*.ndjson")) for d in launch_dirs(tmp_path)):
        assert time.monotonic() < deadline and proc.poll() is None, "the launch never started its nodes"
        time.sleep(0.1)
    proc.send_signal(signum)
    try:
        # communicate, not wait: a launcher that writes more than a pipe holds must not look hung.
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    code = proc.returncode
    assert code == 130, err
    assert "Traceback" not in err
    assert all(not (d / "keys").exists() for d in launch_dirs(tmp_path))
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "tmp")], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == ""
