"""A neighbour that spews bad frames: each is refused and counted, and the auction still completes.

One node ("b") runs a link writer that, around its first real frames, also
sends a replay of the frame it just sent, a forged copy (signature bit
flipped), a frame that skips ahead (reordered), garbage bytes, and, on its
first three links before anything else, a frame over the size limit (which closes that link; the
dialer reconnects).  Every honest receiver refuses them, counts them by kind,
and the auction settles with the outcome the replay reference predicts and
identical ledger copies everywhere.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from peer.net import link as link_module
from peer.net.frames import SEQ_BYTES
from peer.net.link import Link
from peer.scenario.model import explicit_scenario
from tests.node import harness
from tests.node.harness import build, outcome, run_until_done

M = 10**6


def attacking_writer(attacker: bytes, state: dict[str, Any]):  # type: ignore[no-untyped-def]
    honest_writer = Link._writer

    async def writer(self: Link) -> None:
        if self._sealer._identity.public_key != attacker:
            await honest_writer(self)
            return
        ws = self._ws
        # The first links may be the duplicates the one-link rule closes before the peer
        # reads them, so open up to three links with an oversized frame.
        if state["oversized_sent"] < 3:
            state["oversized_sent"] += 1
            await ws.send_message(b"\x00" * (self.config.max_frame + 1))
        real = 0
        async for body in self._outbox_recv:
            frame = self._sealer.seal_body(body)
            await ws.send_message(frame)
            self.stats.frames_out += 1
            real += 1
            if real <= 2:
                seq = int.from_bytes(frame[:SEQ_BYTES], "big")
                forged = bytearray(frame)
                forged[:SEQ_BYTES] = (seq + 1).to_bytes(SEQ_BYTES, "big")
                forged[SEQ_BYTES] ^= 0x01
                ahead = bytearray(frame)
                ahead[:SEQ_BYTES] = (seq + 3).to_bytes(SEQ_BYTES, "big")
                for bad in (frame, bytes(forged), bytes(ahead), b"\x07garbage"):
                    await ws.send_message(bad)
                state["bad_sent"] += 4

    return writer


@pytest.mark.parametrize("seed", [1, 2])
async def test_bad_frames_are_refused_and_the_auction_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    edges = [("s", "a"), ("s", "b"), ("a", "c"), ("b", "c"), ("c", "d"), ("b", "d")]
    values = {"s": 0, "a": 3 * M, "b": 4 * M, "c": 2 * M, "d": 6 * M}
    scenario = explicit_scenario(edges, values, seller="s", seed=seed, name="attack")
    monkeypatch.setattr(harness, "FAST_LINKS", replace(harness.FAST_LINKS, abuse_threshold=64))
    cluster = build(scenario, tmp_path)
    state = {"oversized_sent": 0, "bad_sent": 0}
    attacker = cluster.nodes["b"].identity.public_key
    monkeypatch.setattr(link_module.Link, "_writer", attacking_writer(attacker, state))
    await run_until_done(cluster)
    _, check = outcome(cluster)
    assert state["oversized_sent"] >= 1 and state["bad_sent"] > 0
    assert check.replay_matches and check.ledger_identical and check.ledger_verified == len(values)
    refused: dict[str, int] = {}
    for name in ("s", "c", "d"):  # b's neighbours
        b_key = cluster.keys["b"]
        stats = cluster.nodes[name].manager.snapshot()[b_key]
        for kind, count in stats.bad_by_kind.items():
            refused[kind] = refused.get(kind, 0) + count
    for kind in ("replayed", "forged", "reordered", "garbage", "oversized"):
        assert refused.get(kind, 0) > 0, (kind, refused)
