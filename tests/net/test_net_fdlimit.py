"""A connection flood past RLIMIT_NOFILE: the node sheds it, keeps its links and can
still open files (issue 15.3: 1,100 connections under a 1,024 limit killed a node).

A real process on 127.0.0.1 with a low limit; bounded in time and connections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 128
FLOOD = 3 * LIMIT


async def test_a_flood_past_the_fd_limit_is_shed_and_the_link_kept() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.net.fdlimit_child", str(LIMIT), "4"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    held: list[trio.SocketStream] = []
    try:
        assert proc.stdout is not None
        port = int(await trio.to_thread.run_sync(proc.stdout.readline))
        with trio.fail_after(20):
            for _ in range(FLOOD):
                try:
                    held.append(await trio.open_tcp_stream("127.0.0.1", port))
                except OSError:
                    await trio.sleep(0.01)  # the victim's accept queue is full: it is shedding
            await trio.sleep(1.0)
            for stream in held:
                await stream.aclose()
            held.clear()
            line = await trio.to_thread.run_sync(proc.stdout.readline)
        result = json.loads(line)
        assert proc.wait(timeout=10) == 0
    finally:
        for stream in held:
            await stream.aclose()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert result["open_failures"] == 0, result
    assert not result["link_dropped"], result
    assert result["max_fds"] < LIMIT, result
    assert result["evicted"] > 0, result
