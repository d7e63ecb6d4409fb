"""Issue 9.4: a wrong pinned key is reported once per interval, naming the neighbour
dialled, the key expected and the key presented, on both sides."""

from __future__ import annotations

import pytest
import trio

from peer.net.abuse import ReportLimiter
from peer.net.failures import describe_failure, key_named_in
from peer.net.handshake import HandshakeError
from peer.net.identity import Identity
from peer.net.linkstate import HandshakeFailed, LinkUp
from tests.net.net_harness import identities, open_harness


@pytest.mark.parametrize("kind", ["memory"])
async def test_a_wrong_pinned_key_names_neighbour_and_keys_and_is_rate_limited(kind: str, clock: object) -> None:
    async with open_harness(kind, limit=60) as net:
        a, b, wrong = identities(3)
        nb = await net.start(b, [a], report_interval=2.0)
        na = await net.start(a, [wrong], report_interval=2.0)  # a pinned `wrong` for b's address
        na.manager.set_address(wrong.public_key, nb.address)
        await trio.sleep(7.0)
        # (b also dials a, which does not know b: those are reported too, and left out here.)
        dialer = [e for e in na.pending_events() if isinstance(e, HandshakeFailed) and not e.inbound]
        listener = [e for e in nb.pending_events() if isinstance(e, HandshakeFailed) and e.kind == "misdirected"]
        failures = na.manager.snapshot()[wrong.public_hex].handshake_failures
        assert failures >= 10  # it kept redialling...
        assert 2 <= len(dialer) <= 5  # ...but was reported at most once per 2 s interval
        assert len(dialer) + sum(e.repeats for e in dialer) in (failures, failures - 1)  # the rest counted
        first = dialer[0]
        assert first.kind == "refused" and not first.inbound
        assert first.neighbour == first.expected == wrong.public_hex
        assert first.presented == b.public_hex  # the listener named its real key
        assert wrong.public_hex in first.reason and b.public_hex in first.reason
        assert "the key pinned for it here is wrong" in first.reason
        back = listener[0]
        assert back.kind == "misdirected" and back.inbound
        assert back.neighbour == back.presented == a.public_hex and back.expected == wrong.public_hex
        assert b.public_hex in back.reason and "its pin for us is wrong" in back.reason
        assert 2 <= len(listener) <= 5
        assert not na.manager.is_up(wrong.public_key)


@pytest.mark.parametrize("kind", ["memory"])
async def test_an_honest_pair_reports_nothing(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        nb = await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        await trio.sleep(3.0)
        assert na.pending_events() == nb.pending_events() == []


def test_describe_failure_on_the_dialer_side() -> None:
    a, b, c = identities(3)
    wrong_key = HandshakeError("dialer: wrong peer", kind="wrong-key", presented=c.public_key)
    ev = describe_failure(wrong_key, dialled=b.public_key, claimed=None, source="h:1",
                          neighbours={b.public_key: 1, c.public_key: 1}, me=a.public_key)
    assert (ev.neighbour, ev.expected, ev.presented) == (b.public_hex, b.public_hex, c.public_hex)
    assert "are two addresses swapped" in ev.reason
    not_known = HandshakeError("listener: unknown key 12…: not a configured neighbour", kind="refused")
    ev = describe_failure(not_known, dialled=b.public_key, claimed=None, source="h:1",
                          neighbours={b.public_key: 1}, me=a.public_key)
    assert ev.presented is None and a.public_hex in ev.reason and "pinned for us there" in ev.reason


def test_describe_failure_on_the_listener_side() -> None:
    a, b, stranger = identities(3)
    unknown = HandshakeError("listener: unknown key", kind="unknown-key", presented=stranger.public_key)
    ev = describe_failure(unknown, dialled=None, claimed=None, source="10.0.0.9",
                          neighbours={b.public_key: 1}, me=a.public_key)
    assert ev.inbound and ev.neighbour is None and ev.presented == stranger.public_hex
    assert "10.0.0.9" in ev.reason and b.name in ev.reason
    assert key_named_in(f"listener: misdirected: this node is {a.public_hex}") == a.public_key
    assert key_named_in("listener: garbage") is None


def test_report_limiter_counts_what_it_suppresses() -> None:
    lim = ReportLimiter(interval=10.0, max_keys=2)
    assert lim.offer("k", 0.0, "p0") == 0
    assert lim.offer("k", 1.0, "p1") is None
    assert lim.offer("k", 2.0, "p2") is None
    assert lim.due(5.0) == []
    assert lim.due(10.0) == [("k", 2, "p2")]
    assert lim.offer("k", 12.0) is None  # the summary restarted the interval
    assert lim.offer("k", 20.0) == 1
    lim.offer("x", 21.0)
    lim.offer("y", 22.0)  # over max_keys: the stalest key is forgotten
    assert lim.offer("k", 23.0) == 0 and lim.total_suppressed == 3


@pytest.mark.parametrize("kind", ["memory"])
async def test_strangers_rotating_keys_get_one_report_per_interval(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b], report_interval=5.0)
        for i in range(20):
            stranger = Identity.from_seed(bytes([100 + i]) * 32)
            with pytest.raises(Exception):  # refused: unknown key
                await net.raw_dial(stranger, na)
        reports = [e for e in na.pending_events() if isinstance(e, HandshakeFailed)]
        assert [e.kind for e in reports] == ["unknown-key"]
        assert na.manager.unknown_handshake_failures == 20
        await trio.sleep(10.5)  # the housekeeping's first tick after a whole interval summarises
        [summary] = [e for e in na.pending_events() if isinstance(e, HandshakeFailed)]
        assert summary.repeats == 19 and summary.kind == "unknown-key"
