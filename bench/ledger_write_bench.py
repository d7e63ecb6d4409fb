"""Benchmark: what one node spends to store one replicated ledger entry, by how it is written.

Every node stores a copy of every auction's chain, so each entry of an auction
is written ~100 times across a 100-node network.  This measures, in one trio
loop like a node's, the CPU (user + system of the whole process, worker threads
included) and wall time per entry of:

* ``durable, thread``: what a node did before: ``trio.to_thread.run_sync`` of a
  merge that fsyncs the record and the head file (the old rule for every entry);
* ``replica, thread``: the same hop to a worker, without the fsyncs;
* ``replica, inline``: what a node does now with others' entries: the merge in
  the loop, a page-cache write (``LedgerStore.merge``, durability by whose entry
  it is, docs/ledger.md).

    python bench/ledger_write_bench.py [--chains 200] [--hops 4]

Signature checks are included in every row (the store verifies what it merges).
Every figure printed is measured in that run; the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import trio
from nacl.signing import SigningKey

from peer.ledger.entries import Announcement, Chain, Entry, SignedHop, sign_hop
from peer.ledger.store import LedgerStore

KEYS = [SigningKey(hashlib.sha256(b"ledger-write-bench-%d" % i).digest()) for i in range(16)]
PK = {k.verify_key.encode().hex(): k for k in KEYS}


def make_chain(auction: str, hops: int) -> Chain:
    keys = list(PK)
    chain = Chain(Announcement.create(KEYS[0], auction=auction, item="lamp", created_at_ms=1_700_000_000_000))
    for i in range(1, hops + 1):
        body = chain.next_body(keys[i], 100 * i)
        chain = chain.appended(SignedHop(body=body, seller_sig=sign_hop(PK[body.seller], body),
                                         buyer_sig=sign_hop(PK[body.buyer], body)))
    return chain


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(entries: list[Entry], mode: str, path: Path) -> tuple[float, float]:
    with LedgerStore(path) as store:
        write: Callable[[Entry], object]
        if mode == "durable, thread":
            store.set_owner(KEYS[0].verify_key.encode().hex())  # owns every announcement ...
            write = store.append  # ... and append is durable whoever signed
        else:
            write = partial(store.merge)
        started_cpu, started = cpu(), time.perf_counter()
        for entry in entries:
            if mode == "replica, inline":
                write([entry])
            elif mode == "replica, thread":
                await trio.to_thread.run_sync(write, [entry])
            else:
                await trio.to_thread.run_sync(write, entry)
        return cpu() - started_cpu, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--hops", type=int, default=4)
    args = parser.parse_args()
    chains = [make_chain(f"auction-{i}", args.hops) for i in range(args.chains)]
    # Interleaved as in a stream: entry k of every chain, then entry k+1.
    entries = [c.entries[k] for k in range(args.hops + 1) for c in chains]
    print(f"{len(entries)} entries ({args.chains} chains of {args.hops + 1}), one trio loop, this machine "
          f"({os.cpu_count()} cores)")
    print("mode               CPU µs/entry  wall µs/entry  load")
    for mode in ("durable, thread", "replica, thread", "replica, inline"):
        with tempfile.TemporaryDirectory(prefix="ledger-write-bench-") as tmp:
            spent, wall = trio.run(run, entries, mode, Path(tmp) / "ledger")
        print(f"{mode:<17}  {1e6 * spent / len(entries):>12.0f}  {1e6 * wall / len(entries):>13.0f}  "
              f"{os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
