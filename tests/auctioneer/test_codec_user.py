"""The wire codec (strict, never raises anything but WireError) and the bid submitter machine."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.auctioneer import codec
from peer.auctioneer import messages as m
from peer.auctioneer.bids import Equivocation
from peer.auctioneer.effects import Rejected, Send, Wake
from peer.auctioneer.user import BidSubmitter
from tests.auctioneer._helpers import bid, ident

B1, B2 = bid(1, 10, 2), bid(1, 11, 2)
SAMPLES = [
    m.BidBatch(1, (B1, B2)), m.BidReceipt(1, 3, ((B1.bidder, "why"),)), m.CloseBids(1),
    m.ViewDigest(1, bytes(32), 4), m.ViewChunk(1, 0, 1, (B1,), (Equivocation.of(B1, B2),)),
    m.VectorDigest(1, bytes(32)), m.CoinCommit(1, bytes(32)), m.CoinReveal(1, bytes(32), bytes(16)),
    m.TaskResult(1, "pay.0", b"xyz", bytes(64)), m.OutcomeSig(1, bytes(32), bytes(64)),
    m.OutcomeNotice(1, bytes(32), ((bytes(32), bytes(64)),), 5), m.AbortNotice(1, "timeout", (bytes(32),)),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda x: type(x).__name__)
def test_every_message_round_trips(msg):
    assert codec.decode(codec.encode(msg)) == msg


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=200))
def test_garbage_is_a_wire_error_and_nothing_else(raw):
    try:
        codec.decode(raw)
    except codec.WireError:
        pass


@settings(deadline=None, derandomize=True, database=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_a_mutated_field_type_is_refused(msg, data):
    import msgspec

    raw = msgspec.msgpack.decode(codec.encode(msg))
    i = data.draw(st.integers(1, len(raw) - 1))
    raw[i] = data.draw(st.sampled_from([x for x in (True, 1.5, "x", None, {"a": 1}) if type(x) is not type(raw[i])]))
    with pytest.raises(codec.WireError):
        codec.decode(msgspec.msgpack.encode(raw))


def test_the_submitter_resends_to_a_provider_that_did_not_acknowledge_and_settles_on_equal_outcomes():
    providers = tuple(sorted(ident("provider", i).public_key for i in range(2)))
    sub = BidSubmitter(1, (B1,), providers, resend_every=1.0, give_up_at=10.0)
    out = sub.start(0.0)
    assert sorted(e.to for e in out if isinstance(e, Send)) == sorted(providers)
    sub.on_message(providers[0], m.BidReceipt(1, 1, ()), 0.1)
    again = sub.on_tick(1.0)
    assert [e.to for e in again if isinstance(e, Send)] == [providers[1]]
    assert any(isinstance(e, Wake) for e in again)
    digest = bytes(32)
    ids = sorted((ident("provider", i) for i in range(2)), key=lambda x: x.public_key)
    sigs = tuple((p.public_key, p.sign(digest)) for p in ids)
    assert sub.settled() is None
    for p in providers:
        assert sub.on_message(p, m.OutcomeNotice(1, digest, sigs, 0), 2.0) == []
    assert sub.settled() == digest
    bad = tuple((p, bytes(64)) for p, _ in sigs)
    assert isinstance(sub.on_message(providers[0], m.OutcomeNotice(1, digest, bad, 0), 2.0)[0], Rejected)
    assert sub.on_tick(11.0) == []


def test_a_message_for_a_peer_without_a_link_waits_and_goes_out_when_the_link_comes_up():
    """Regression: a provider that finished collecting before its links to the others were up
    dropped its ViewDigest, and the round timed out (seen with real processes)."""
    from peer.auctioneer.shell import Sender

    class Links:
        def __init__(self):
            self.up, self.sent = set(), []

        def send_nowait(self, to, env):
            if to in self.up:
                self.sent.append((to, env))
                return True
            return False

    links = Links()
    peer = ident("provider", 0).public_key
    sender = Sender(ident("provider", 1), links)
    sender.send(peer, m.ViewDigest(1, bytes(32), 0))
    sender.send(peer, m.VectorDigest(1, bytes(32)))
    assert links.sent == []
    links.up.add(peer)
    sender.flush(peer)
    assert [codec.decode(env.payload) for _, env in links.sent] == [m.ViewDigest(1, bytes(32), 0), m.VectorDigest(1, bytes(32))]
    assert sender.pending == {}


def test_a_record_with_out_of_range_numbers_is_refused_not_raised():
    from peer.auctioneer.record import verify_record

    record = {
        "output": "outcome", "round": 1, "auction": "double", "digest": "00" * 32, "vector_digest": "00" * 32,
        "coin": "00" * 32, "trades": [["00" * 32, "11" * 32, -5]], "charges": [], "credits": [],
        "providers": [], "signatures": [],
    }
    assert "malformed" in verify_record(record)
    record["trades"] = []
    record["round"] = 2**70
    assert "malformed" in verify_record(record)
