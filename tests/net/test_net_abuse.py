"""Issue 16.2: abuse outlives the link.  A key closed for abuse is throttled on redial
for a growing time, banned after repeated closes until an operator lifts it, and an
honest neighbour never notices."""

from __future__ import annotations

import math

import pytest
import trio
from trio_websocket import ConnectionClosed

from peer.net.abuse import AbuseTracker
from peer.net.link import CloseCode
from peer.net.linkstate import LinkDown, LinkUp, PeerBanned
from tests.net.net_harness import identities, open_harness, wait_until

# --- the pure tracker ----------------------------------------------------------------


def test_each_abuse_close_doubles_the_throttle_and_the_score_decays() -> None:
    t = AbuseTracker(half_life=100.0, backoff_base=1.0, backoff_cap=60.0, ban_after=4)
    k = b"k" * 32
    assert t.refusal(k, 0.0) is None and t.retry_at(k) == -math.inf
    assert t.on_abuse_close(k, 0.0, "junk") is None
    assert t.refusal(k, 0.5) == ("throttled", "throttled for abuse: retry in 0.5 s")
    assert t.refusal(k, 1.0) is None
    t.on_abuse_close(k, 1.0, "junk")  # score ~2: 2 s
    assert t.retry_at(k) == pytest.approx(1.0 + 2 ** (t.score(k, 1.0) - 1), rel=1e-9)
    assert 2.9 < t.retry_at(k) < 3.0
    assert t.score(k, 101.0) == pytest.approx(t.score(k, 1.0) / 2)  # one half-life later
    later = 1000.0  # long forgiven: back to a short throttle
    t.on_abuse_close(k, later, "junk")
    assert t.retry_at(k) - later < 1.1


def test_a_ban_keeps_its_reason_until_an_operator_lifts_it() -> None:
    t = AbuseTracker(backoff_base=1.0, backoff_cap=8.0, ban_after=3)
    k = b"k" * 32
    assert t.on_abuse_close(k, 0.0, "a") is None
    assert t.on_abuse_close(k, 0.0, "b") is None
    ban = t.on_abuse_close(k, 0.0, "forged gossip")
    assert ban is not None and "3 abuse closes" in ban.reason and "forged gossip" in ban.reason
    assert t.refusal(k, 1e9)[0] == "banned" and t.retry_at(k) == math.inf
    assert t.bans() == {k: ban}
    assert t.unban(k) and not t.unban(k)
    assert t.refusal(k, 0.0) is None and t.score(k, 0.0) == 0
    manual = t.ban(k, "operator says so", 5.0)
    assert t.bans()[k] is manual and t.refusal(k, 6.0) == ("banned", "banned: operator says so")


# --- on links (virtual time) ------------------------------------------------------------


async def _next_link_event(node: object) -> object:
    """The next LinkUp/LinkDown, skipping the (rate-limited) refusal reports."""
    while True:
        event = await node.event()  # type: ignore[attr-defined]
        if isinstance(event, (LinkUp, LinkDown)):
            return event


async def _abuse(ws: object, n: int) -> None:
    for _ in range(n):
        await ws.send_message(b"junk")  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["memory"])
async def test_a_neighbour_that_redials_after_an_abuse_close_is_throttled_then_banned(
    kind: str, clock: object
) -> None:
    async with open_harness(kind, limit=600) as net:
        a, honest, m = identities(3)
        na = await net.start(
            a, [honest, m], abuse_threshold=2, abuse_backoff_base=4.0, ban_after=3, abuse_half_life=1e9)
        nh = await net.start(honest, [a])
        assert await na.event() == LinkUp(honest.public_hex)
        honest_link = na.manager.link(honest.public_key)
        closes = []
        for round_ in range(3):
            ws, _, _ = await net.raw_dial(m, na)
            assert await _next_link_event(na) == LinkUp(m.public_hex)
            await _abuse(ws, 2)
            down = await _next_link_event(na)
            assert isinstance(down, LinkDown) and "abuse" in down.reason
            closes.append(trio.current_time())
            if round_ == 2:
                break
            # Redialling at once is refused with THROTTLED, without a link coming up...
            with pytest.raises(ConnectionClosed) as refused:
                await net.raw_dial(m, na)
            assert refused.value.reason.code == CloseCode.THROTTLED
            assert "throttled for abuse" in refused.value.reason.reason
            # ...until the throttle (4 s, then ~8 s) has passed.
            retry = na.manager.abuse.retry_at(m.public_key)
            assert retry - closes[-1] == pytest.approx(4.0 * 2 ** (na.manager.abuse.score(m.public_key, closes[-1]) - 1))
            await trio.sleep_until(retry + 0.01)
        banned: list[PeerBanned] = []
        while not banned:  # it follows the LinkDown (bounded by the harness's time limit)
            banned += [e for e in na.pending_events() if isinstance(e, PeerBanned)]
            await trio.sleep(0.01)
        assert len(banned) == 1 and banned[0].peer == m.public_hex and "3 abuse closes" in banned[0].reason
        assert m.public_hex in na.manager.bans()
        await trio.sleep(300)  # far beyond any throttle
        with pytest.raises(ConnectionClosed) as refused:
            await net.raw_dial(m, na)
        assert refused.value.reason.code == CloseCode.THROTTLED and "banned" in refused.value.reason.reason
        snap = na.manager.snapshot()
        assert snap[m.public_hex].abuse_closes == 3 and snap[m.public_hex].refused == 3
        # The operator lifts the ban: m gets in again.
        assert na.manager.unban(m.public_hex) and na.manager.bans() == {}
        await net.raw_dial(m, na)
        assert await _next_link_event(na) == LinkUp(m.public_hex)
        # The honest neighbour kept its one link and was never refused.
        assert na.manager.link(honest.public_key) is honest_link and nh.manager.is_up(a.public_key)
        assert snap[honest.public_hex].refused == snap[honest.public_hex].abuse_closes == 0
        assert na.manager.abuse_scores()[honest.public_hex] == 0


@pytest.mark.parametrize("kind", ["memory"])
async def test_our_own_dialer_waits_out_the_throttle(kind: str, clock: object) -> None:
    """Both directions are throttled: we do not redial an abusive neighbour early either."""
    async with open_harness(kind, limit=60) as net:
        a, m = identities(2)  # a is the lower key: the preferred dialer
        na = await net.start(a, [m], abuse_threshold=1, abuse_backoff_base=5.0)
        nm = await net.start(m, [a], defer_dial=100.0)  # m never dials first: a's dialer does
        assert await na.event() == LinkUp(m.public_hex)
        na.manager.report_abuse(m.public_hex, "forged gossip")
        down = await na.event()
        closed_at = trio.current_time()
        assert isinstance(down, LinkDown) and "abuse" in down.reason
        assert await na.event() == LinkUp(m.public_hex)
        assert trio.current_time() - closed_at >= 5.0
        await wait_until(lambda: nm.manager.is_up(a.public_key))


@pytest.mark.parametrize("kind", ["memory"])
async def test_abuse_reports_are_rate_limited_for_logging(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m], abuse_threshold=1000, report_interval=5.0)
        await net.raw_dial(m, na)
        assert await na.event() == LinkUp(m.public_hex)
        logged = [na.manager.report_abuse(m.public_hex, "no such auction") for _ in range(50)]
        assert logged[0] and not any(logged[1:])
        assert na.manager.suppressed_reports() == {}
        await trio.sleep(5.0)
        assert na.manager.suppressed_reports() == {m.public_hex: 49}
        assert not na.manager.report_abuse(m.public_hex, "no such auction")  # the summary was this interval's report
        await trio.sleep(5.0)
        assert na.manager.report_abuse(m.public_hex, "no such auction")
