"""Deviating providers, for tests, the simulator and the experiment: each rewrites its own effects.

A deviation is a function ``(me, effects) -> effects`` applied to everything an
otherwise honest provider machine asks its shell to do, so a deviant can lie,
withhold or go silent at any step while its own bookkeeping stays honest.  A
coalition is the same deviation installed on several providers (they lie the
same way, which is the strongest joint lie).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from peer.auctioneer import messages as m
from peer.auctioneer.effects import Broadcast, Effect, Send
from peer.auctioneer.signing import result_bytes
from peer.net.identity import Identity

Tamper = Callable[[bytes, list[Effect]], list[Effect]]


def _map(effects: list[Effect], change: Callable[[m.Message], m.Message | None]) -> list[Effect]:
    out: list[Effect] = []
    for e in effects:
        if isinstance(e, (Send, Broadcast)):
            new = change(e.msg)
            if new is not None:
                out.append(Broadcast(new) if isinstance(e, Broadcast) else Send(e.to, new))
        else:
            out.append(e)
    return out


def other_vector() -> Tamper:
    """Reports the digest of another bid vector at input validation."""
    fake = hashlib.sha256(b"another vector").digest()
    return lambda me, effects: _map(
        effects, lambda msg: m.VectorDigest(msg.round, fake) if isinstance(msg, m.VectorDigest) else msg
    )


def withhold_reveal() -> Tamper:
    return lambda me, effects: _map(effects, lambda msg: None if isinstance(msg, m.CoinReveal) else msg)


def change_reveal() -> Tamper:
    """Reveals a share other than the one it committed to (e.g. to steer the coin)."""
    return lambda me, effects: _map(
        effects,
        lambda msg: m.CoinReveal(msg.round, bytes(b ^ 0xFF for b in msg.share), msg.nonce)
        if isinstance(msg, m.CoinReveal) else msg,
    )


def wrong_result(identity_of: Callable[[bytes], Identity]) -> Tamper:
    """Sends a wrong (but properly signed) task result, and signs a wrong outcome."""

    def change(me: bytes, msg: m.Message) -> m.Message:
        ident = identity_of(me)
        if isinstance(msg, m.TaskResult):
            payload = msg.payload[:-1] + bytes([msg.payload[-1] ^ 1]) if msg.payload else b"\x00" * 12
            return m.TaskResult(msg.round, msg.task, payload, ident.sign(result_bytes(msg.round, msg.task, payload)))
        if isinstance(msg, m.OutcomeSig):
            digest = hashlib.sha256(b"a better outcome for me" + msg.digest).digest()
            return m.OutcomeSig(msg.round, digest, ident.sign(digest))
        return msg

    return lambda me, effects: _map(effects, lambda msg: change(me, msg))


def silent() -> Tamper:
    return lambda me, effects: _map(effects, lambda msg: None)


DEVIATIONS = ("other-vector", "withhold-reveal", "change-reveal", "wrong-result", "silent")


def by_name(name: str, identity_of: Callable[[bytes], Identity]) -> Tamper:
    if name == "wrong-result":
        return wrong_result(identity_of)
    table = {"other-vector": other_vector, "withhold-reveal": withhold_reveal, "change-reveal": change_reveal, "silent": silent}
    if name not in table:
        raise ValueError(f"unknown deviation {name!r}; choose from {', '.join(DEVIATIONS)}")
    return table[name]()
