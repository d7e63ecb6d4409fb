"""Child process of test_net_fdlimit: two linked LinkManagers under a low RLIMIT_NOFILE.

Prints the victim's port, then for ``seconds`` opens a file every 20 ms (as the
ledger does) and watches the neighbour link; finally prints one JSON line:
file opens that failed, whether the link stayed up throughout, the most fds seen.
"""

from __future__ import annotations

import json
import os
import random
import resource
import sys

import trio

from peer.net.identity import Identity
from peer.net.link import LinkConfig
from peer.net.websocket import LinkManager, Neighbour, TcpTransport


async def main(limit: int, seconds: float) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    a, b = (Identity.from_seed(bytes([i]) * 32) for i in (1, 2))
    cfg = LinkConfig(handshake_timeout=3.0, heartbeat_interval=0.5, idle_timeout=3.0, defer_dial=0.0)
    ma = LinkManager(a, [Neighbour(b.public_key)], TcpTransport(), config=cfg, rng=random.Random(1))
    mb = LinkManager(b, [Neighbour(a.public_key)], TcpTransport(), config=cfg, rng=random.Random(2))
    result = {"open_failures": 0, "link_dropped": False, "max_fds": 0, "evicted": 0}
    with trio.fail_after(seconds + 20):
        async with trio.open_nursery() as nursery:
            addr_a = await nursery.start(ma.run)
            addr_b = await nursery.start(mb.run)
            ma.set_address(b.public_key, addr_b)
            mb.set_address(a.public_key, addr_a)
            while not (ma.is_up(b.public_key) and mb.is_up(a.public_key)):
                await trio.sleep(0.02)
            print(addr_a[1], flush=True)
            end = trio.current_time() + seconds
            while trio.current_time() < end:
                try:
                    with open(os.devnull, "rb"):
                        pass
                except OSError:
                    result["open_failures"] += 1
                result["max_fds"] = max(result["max_fds"], len(os.listdir("/proc/self/fd")) if _can_list() else 0)
                if not ma.is_up(b.public_key):
                    result["link_dropped"] = True
                await trio.sleep(0.02)
            result["evicted"] = ma.admission.evicted
            nursery.cancel_scope.cancel()
    print(json.dumps(result), flush=True)


def _can_list() -> bool:
    try:
        os.listdir("/proc/self/fd")
        return True
    except OSError:
        return False


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), float(sys.argv[2]))
