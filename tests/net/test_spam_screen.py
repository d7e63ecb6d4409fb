"""#16.1: the gossip machine's ``screen`` hook, which the node's ledger uses to bound how many new
auctions one neighbour may introduce.  A screened envelope is neither delivered nor relayed, is
counted, and is not marked seen (another neighbour may still bring it); the signature is checked
first, so a forged envelope is still the sender's fault, not screened."""

from __future__ import annotations

import hashlib

import pytest

from peer.net.gossip import Deliver, Forward, Gossip, GossipError, sign_envelope
from peer.net.identity import Identity
from peer.net.seqstore import MemorySeqCounter

NOW = 1_700_000_000.0


def ident(tag: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(tag.encode()).digest())


def test_a_screened_envelope_is_neither_delivered_nor_relayed_nor_marked_seen() -> None:
    me, flooder, honest, downstream = ident("me"), ident("flooder"), ident("honest"), ident("downstream")
    asked: list[tuple[str, int]] = []

    def screen(via: str, env: object, now: float) -> bool:
        asked.append((via, env.seq))  # type: ignore[attr-defined]
        return via != flooder.public_hex

    g = Gossip(me, MemorySeqCounter(), frozenset({flooder.public_hex, honest.public_hex, downstream.public_hex}),
               screen=screen)
    env = sign_envelope(ident("origin"), 1, int((NOW + 30) * 1000), "ledger", b"payload")
    assert g.receive(flooder.public_hex, env, NOW) == []
    assert g.stats.screened == 1 and g.stats.delivered == 0
    effects = g.receive(honest.public_hex, env, NOW)  # not marked seen: the honest copy goes through
    assert [type(e) for e in effects] == [Deliver, Forward]
    assert effects[1].to == frozenset({flooder.public_hex, downstream.public_hex})
    assert asked == [(flooder.public_hex, 1), (honest.public_hex, 1)]


def test_a_forged_envelope_is_the_senders_fault_before_any_screen() -> None:
    me, sender = ident("me"), ident("sender")
    g = Gossip(me, MemorySeqCounter(), frozenset({sender.public_hex}), screen=lambda via, env, now: False)
    env = sign_envelope(ident("origin"), 1, int((NOW + 30) * 1000), "ledger", b"payload")
    forged = type(env)(origin=env.origin, seq=env.seq, expires_ms=env.expires_ms, topic=env.topic,
                       payload=b"altered", sig=env.sig)
    with pytest.raises(GossipError):
        g.receive(sender.public_hex, forged, NOW)
    assert g.stats.screened == 0 and g.stats.invalid == 1
