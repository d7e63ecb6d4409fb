"""The validly signed spam of ``flood_bench.py --attacks spam`` (#16.1), and the disk sampler.

As the pinned neighbour ``m`` the attacker opens authenticated links to the
victim and sends, as fast as the link takes them, gossip envelopes of ledger
``Entries``: chains of throwaway keys and throwaway auction ids, each an
announcement and ``HOPS`` hops, every signature valid.  Half go on the flooded
ledger topic under a fresh throwaway origin each (what every node relays); half
go on the anti-entropy topic under ``m``'s own key, as if they were its answers
(what a neighbour may vouch for).  Nothing here is forged: every envelope and
every entry verifies.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from pathlib import Path
from typing import Any

HOPS = 2  # hops per spam chain: "started" chains, countersigned by throwaway buyers
CHAINS_PER_ENVELOPE = 48  # ~31 KB of entries: inside one 60 KiB gossip payload


def spam_payload(batch: int, tag: str) -> bytes:
    """``CHAINS_PER_ENVELOPE`` fresh throwaway chains as one encoded ``Entries`` payload."""
    from nacl.signing import SigningKey

    from peer.ledger import Announcement, Chain, Entries, SignedHop, encode_payload, sign_hop

    entries = []
    for i in range(CHAINS_PER_ENVELOPE):
        seed = hashlib.sha256(f"flood-spam/{tag}/{batch}/{i}".encode()).digest()
        seller = SigningKey(seed)
        chain = Chain(Announcement.create(seller, auction=f"spam-{tag}-{batch}-{i}", item="junk",
                                          created_at_ms=int(time.time() * 1000)))
        for hop in range(1, HOPS + 1):
            buyer = SigningKey(hashlib.sha256(seed + bytes([hop])).digest())
            body = chain.next_body(buyer.verify_key.encode().hex(), hop)
            chain = chain.appended(SignedHop(body=body, seller_sig=sign_hop(seller, body),
                                             buyer_sig=sign_hop(buyer, body)))
            seller = buyer
        entries.extend(chain.entries)
    return encode_payload(Entries(tuple(entries)))


async def spam_link(port: int, me: Any, victim: bytes, end: float, counts: dict[str, Any], tag: str) -> None:
    """One authenticated link from ``m``; returns when the flood ends, raises when the victim closes it."""
    import trio
    from trio_websocket import wrap_client_stream

    from peer.net.frames import FrameSealer
    from peer.net.gossip import sign_envelope
    from peer.net.handshake import DialerHandshake
    from peer.net.identity import Identity
    from peer.net.link import run_handshake

    async with trio.open_nursery() as nursery:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            ws = await wrap_client_stream(nursery, stream, "peer", "/peer/v1", max_message_size=1 << 20)
            session = await run_handshake(ws, DialerHandshake(me, victim))
            counts["spam_links"] += 1
            sealer = FrameSealer(session, me, max_frame=64 * 1024)
            for batch in itertools.count():
                if trio.current_time() >= end:
                    return
                payload = spam_payload(batch, f"{tag}-{counts['spam_links']}")
                now_ms = int(time.time() * 1000)
                if batch % 2:  # flooded topic, a throwaway origin per envelope
                    origin = Identity.from_seed(hashlib.sha256(payload[:64] + os.urandom(8)).digest())
                    env = sign_envelope(origin, 1, now_ms + 30_000, "ledger", payload)
                    counts["spam_flooded"] += 1
                else:  # anti-entropy topic, m's own key: "here is what you lack"
                    counts["m_seq"] += 1
                    env = sign_envelope(me, counts["m_seq"], now_ms + 30_000, "ledger-sum", payload)
                    counts["spam_vouched"] += 1
                counts["spam_chains"] += CHAINS_PER_ENVELOPE
                await ws.send_message(sealer.seal(env))
                await trio.sleep(0)
        finally:
            nursery.cancel_scope.cancel()


def disk(data_dir: Path) -> tuple[int, int]:
    """(bytes in all files under ``data_dir``, chain files in its ledger)."""
    total = chains = 0
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
            chains += name.endswith(".chain")
    return total, chains
