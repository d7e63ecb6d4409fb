"""What the restricted-dissemination mode costs per hop, against the current ledger entry.

Per hop: Ed25519 signs and verifies (counted by wrapping ``peer.ledger.keys``,
the only path either module signs or verifies through), CPU time (median over
the hops, one core; both cores are shared, so compare rows of one run), and
bytes (MessagePack, the ledger codec's conventions, for the replicated form
and for what is sent privately to the parties).

Run: ``.venv/bin/python bench/privacy_mode_bench.py [--hops 200]``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec

import peer.ledger.entries as entries
import peer.ledger.keys as keys
from nacl.signing import SigningKey
from peer.ledger.codec import encode_record
from peer.ledger.entries import Announcement, Chain, SignedHop, sign_hop, verify_hop
from peer.ledger.pseudonymous import (
    hop_salt,
    make_binding,
    open_binding,
    open_hop,
    seal,
    verify_sealed_hop,
)
from peer.ledger.pseudonymous_wire import encode_sealed

COUNT = {"sign": 0, "verify": 0}


def _counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        COUNT[name] += 1
        return fn(*args, **kwargs)
    return wrapped


# entries.py imported sign/verify by name; pseudonymous calls them through the module.
keys.sign = entries.sign = _counting("sign", keys.sign)  # type: ignore[assignment]
keys.verify = entries.verify = _counting("verify", keys.verify)  # type: ignore[assignment]


def measure(label: str, calls: list[Callable[[], Any]]) -> tuple[str, float, float, float]:
    """Median µs per call and signs/verifies per call, over ``calls``."""
    before = dict(COUNT)
    times = []
    for call in calls:
        t = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - t)
    n = len(calls)
    return (label, statistics.median(times) / 1000, (COUNT["sign"] - before["sign"]) / n,
            (COUNT["verify"] - before["verify"]) / n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=200)
    args = parser.parse_args()
    ids = [SigningKey(hashlib.sha256(b"privacy-bench-%d" % i).digest()) for i in range(args.hops + 1)]
    pk = [k.verify_key.encode().hex() for k in ids]
    auction = "bench-auction-0001"
    ann = Announcement.create(ids[0], auction=auction, item="lamp", created_at_ms=1_700_000_000_000)
    chain = Chain(ann)
    bodies = []
    for i in range(1, args.hops + 1):
        body = chain.next_body(pk[i], 100 * i)
        bodies.append(body)
        chain = chain.appended(SignedHop(body=body, seller_sig=sign_hop(ids[i - 1], body),
                                         buyer_sig=sign_hop(ids[i], body)))
    hops = chain.hops

    # What one sealed hop needs from its parties, as they would build it (no cache of derived keys:
    # a node could keep its one-time key for the auction, and that saves one sign per hop it sells).
    sealed, salts, bindings = [], [], []

    def build_sealed(i: int) -> None:
        prev = sealed[-1].hash if sealed else ann.hash
        salt, binding = hop_salt(ids[i], hops[i]), make_binding(ids[i + 1], auction)
        sealed.append(seal(hops[i], salt, prev=prev, seller=ids[i], buyer=ids[i + 1],
                           buyer_binding=binding.commitment))
        salts.append(salt)
        bindings.append(binding)

    rows = [
        measure("current entry: build (both parties sign)",
                [lambda b=b, i=i: (sign_hop(ids[i], b), sign_hop(ids[i + 1], b)) for i, b in enumerate(bodies)]),
        measure("sealed form: build, on top of the entry",
                [lambda i=i: build_sealed(i) for i in range(len(hops))]),
        measure("current entry: verify (every node)",
                [lambda i=i: verify_hop(chain.at(i), hops[i]) for i in range(len(hops))]),
        measure("sealed form: verify (every node)",
                [lambda i=i: verify_sealed_hop(ann, sealed[i - 1] if i else None, sealed[i])
                 for i in range(len(hops))]),
        measure("sealed form: open (counterparty: entry + binding)",
                [lambda i=i: (open_hop(sealed[i], hops[i], salts[i]),
                              open_binding(sealed[i].buyer_binding, sealed[i].buyer_key, auction, bindings[i]))
                 for i in range(len(hops))]),
    ]

    print(f"{len(hops)} hops, auction id {len(auction)} bytes")
    print(f"{'':<52} {'µs/hop (median)':>16} {'signs/hop':>10} {'verifies/hop':>13}")
    for label, us, s, v in rows:
        print(f"{label:<52} {us:>16.1f} {s:>10.2f} {v:>13.2f}")

    entry_bytes = statistics.mean(len(encode_record(h)) for h in hops)
    sealed_bytes = statistics.mean(len(encode_sealed(s)) for s in sealed)
    binding_bytes = statistics.mean(len(msgspec.msgpack.encode(
        [b.auction, bytes.fromhex(b.identity), bytes.fromhex(b.one_time), b.salt, b.link_sig])) for b in bindings)
    print(f"bytes per hop replicated to every node: current entry {entry_bytes:.0f}, sealed form {sealed_bytes:.0f}")
    print(f"bytes per hop sent privately: the entry + r_k to the parties and next participants "
          f"{entry_bytes + 32:.0f} (entry {entry_bytes:.0f} + salt 32), the binding opening to the seller "
          f"{binding_bytes:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
