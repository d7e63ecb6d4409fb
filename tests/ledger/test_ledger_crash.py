"""A real process appends in a loop and is SIGKILLed at a seeded random moment; the store recovers."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peer.ledger.store import LedgerStore

# The writer prints "ack <auction> <position>" only after append() returned,
# i.e. after fsync: everything acknowledged must be found after the crash.
# With "merge" it stores replicas (merge, no owner: no fsync); a killed process
# leaves them in the page cache, so they must be found too (docs/ledger.md,
# "Durability by whose entry it is": only an OS crash may lose them).
WRITER = r"""
import hashlib, sys
from nacl.signing import SigningKey
from peer.ledger.entries import Announcement, Chain, SignedHop, sign_hop
from peer.ledger.store import LedgerStore

keys = [SigningKey(hashlib.sha256(b"crash-%d" % i).digest()) for i in range(12)]
pks = [k.verify_key.encode().hex() for k in keys]
store = LedgerStore(sys.argv[1])
write = store.append if sys.argv[2] == "append" else (lambda entry: store.merge([entry]).accepted)
print("ready", flush=True)
for n in range(10**6):
    auction = f"auction-{n}"
    ann = Announcement.create(keys[0], auction=auction, item="x" * (n % 50), created_at_ms=n)
    assert write(ann)
    print("ack", auction, 0, flush=True)
    chain = Chain(ann)
    for hop in range(1, 11):
        body = chain.next_body(pks[hop], 1000 * hop + n)
        signed = SignedHop(body=body, seller_sig=sign_hop(keys[hop - 1], body), buyer_sig=sign_hop(keys[hop], body))
        assert write(signed)
        chain = chain.appended(signed)
        print("ack", auction, hop, flush=True)
"""

DEADLINE_S = 5.0


def _run_and_kill(tmp: Path, seed: int, mode: str = "append") -> list[tuple[str, int]]:
    rng = random.Random(seed)
    kill_after_acks = rng.randint(1, 60)
    extra_delay = rng.uniform(0, 0.004)  # so the kill can land in the middle of an append
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, bufsize=0, env=env)
    acked: list[tuple[str, int]] = []
    buffer = b""
    deadline = time.monotonic() + DEADLINE_S
    try:
        assert proc.stdout is not None
        while len(acked) < kill_after_acks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"writer too slow: {len(acked)} acks in {DEADLINE_S}s")
            ready, _, _ = select.select([proc.stdout], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                pytest.fail(f"writer exited early with {proc.wait()}")
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.startswith(b"ack "):
                    _, auction, position = line.decode().split()
                    acked.append((auction, int(position)))
        time.sleep(extra_delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=DEADLINE_S)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return acked


@pytest.mark.parametrize("mode", ["append", "merge"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_mid_append_recovers_a_verifying_store(tmp_path: Path, seed: int, mode: str) -> None:
    acked = _run_and_kill(tmp_path, seed, mode)
    with LedgerStore(tmp_path) as store:
        report = store.verify_all()
        assert report.ok, report.lines()
        for auction, position in acked:
            chain = store.chain(auction)
            assert chain is not None and chain.length > position, (auction, position)
        # The recovered store takes appends again.
        last = store.chains()[-1]
        assert store.append(last.announcement) is False
    with LedgerStore(tmp_path, read_only=True) as again:
        assert again.verify_all().ok and not again.issues
