"""The Outbox: bounded in bytes, protocol traffic never dropped for relay gossip,
relay dropped oldest first, a fair flush across neighbours (issues 17.2, 17.3)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.net.outbox import Outbox, Priority

P, R = Priority.PROTOCOL, Priority.RELAY


class Links:
    """Fake links: each takes up to ``room[to]`` messages, recording what it sent."""

    def __init__(self, **room: int) -> None:
        self.room = Counter(room)
        self.sent: list[tuple[str, object]] = []

    def __call__(self, to: str, msg: object) -> bool:
        if self.room[to] <= 0:
            return False
        self.room[to] -= 1
        self.sent.append((to, msg))
        return True


def test_junk_gossip_cannot_crowd_out_the_auction() -> None:
    """Issue 17.3: the backlog full of junk dropped the node's own Settled."""
    box: Outbox[str, str] = Outbox(max_bytes=1000, max_bytes_per_neighbour=1000)
    for i in range(100):
        assert box.push("b", f"junk{i}", 60, R)  # later junk evicts earlier junk
    assert box.pending_bytes() <= 1000 and box.dropped[R] > 0
    assert box.push("b", "Invite", 100, P) and box.push("b", "Settled", 100, P)
    assert box.pending("b", P) == 2 and box.pending_bytes() <= 1000
    links = Links(b=3)
    box.flush(links)
    assert [m for _, m in links.sent] == ["Invite", "Settled", f"junk{100 - box.pending('b', R) - 1}"]


def test_relay_is_dropped_oldest_first_and_protocol_only_refused_when_protocol_fills() -> None:
    box: Outbox[str, str] = Outbox(max_bytes=300, max_bytes_per_neighbour=300)
    assert box.push("b", "r1", 100, R) and box.push("b", "r2", 100, R) and box.push("b", "r3", 100, R)
    assert box.push("b", "p1", 150, P)  # evicts r1 and r2 (oldest first)
    assert box.pending("b", R) == 1 and box.dropped[R] == 2
    assert box.push("b", "p2", 150, P)  # evicts r3
    assert not box.push("b", "p3", 1, P)  # protocol alone fills the budget: refused, counted
    assert not box.push("b", "r4", 1, R)
    assert box.refused == Counter({P: 1, R: 1}) and box.pending("b", P) == 2


def test_one_dead_neighbour_cannot_take_the_whole_budget() -> None:
    box: Outbox[str, str] = Outbox(max_bytes=1000, max_bytes_per_neighbour=400)
    for i in range(20):
        box.push("dead", f"r{i}", 50, R)
    assert box.pending_bytes("dead") <= 400
    assert box.push("live", "p", 300, P) and box.push("live", "p2", 100, P)  # room was kept for others
    assert not box.push("live", "p3", 1, P)  # its own share is full of protocol


def test_the_flush_is_round_robin_and_a_blocked_link_is_skipped() -> None:
    box: Outbox[str, str] = Outbox()
    for i in range(5):
        box.push("busy", f"b{i}", 10, R)
        box.push("a", f"a{i}", 10, R)
        box.push("c", f"c{i}", 10, P)
    links = Links(busy=100, a=2, c=100)
    assert box.flush(links, budget=6) == 6
    assert [to for to, _ in links.sent] == ["busy", "a", "c", "busy", "a", "c"]
    links.sent.clear()
    assert box.flush(links) == 6  # 'a' is now full: skipped, the others drain
    assert Counter(to for to, _ in links.sent) == {"busy": 3, "c": 3}
    assert box.pending() == 3 and box.pending("a") == 3


def test_send_goes_direct_unless_its_class_is_queued() -> None:
    box: Outbox[str, str] = Outbox()
    links = Links(b=1)
    assert box.send("b", "p1", 10, P, links) and box.pending() == 0
    assert box.send("b", "r1", 10, R, links) and box.pending("b", R) == 1  # link full: queued
    links.room["b"] = 5
    assert box.send("b", "p2", 10, P, links) and box.pending("b", P) == 0  # overtakes queued relay
    assert box.send("b", "r2", 10, R, links) and box.pending("b", R) == 2  # keeps relay order
    box.flush(links)
    assert [m for _, m in links.sent] == ["p1", "p2", "r1", "r2"]


def test_discard_forgets_a_neighbour() -> None:
    box: Outbox[str, str] = Outbox()
    box.push("x", "m", 10, P)
    box.push("y", "n", 10, R)
    assert box.discard("x") == 1 and box.discard("x") == 0
    assert box.pending_bytes() == 10 and box.pending() == 1
    with pytest.raises(ValueError):
        box.push("x", "m", -1, P)


ops = st.lists(
    st.tuples(st.sampled_from(["push", "flush"]), st.sampled_from(["a", "b", "c"]),
              st.integers(0, 400), st.sampled_from([P, R]), st.integers(0, 4)),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_bounds_and_priorities_hold_under_any_sequence(seq: list[tuple[str, str, int, Priority, int]]) -> None:
    box: Outbox[str, tuple[int, Priority]] = Outbox(max_bytes=1000, max_bytes_per_neighbour=500)
    protocol_in: list[tuple[str, int]] = []
    protocol_out: list[tuple[str, int]] = []
    for n, (op, to, size, prio, room) in enumerate(seq):
        if op == "push":
            before_protocol = box.pending(priority=P)
            if box.push(to, (n, prio), size, prio) and prio is P:
                protocol_in.append((to, n))
            assert box.pending(priority=P) >= before_protocol  # protocol is never dropped
        else:
            links = Links(a=room, b=room, c=room)
            box.flush(links)
            protocol_out += [(t, m[0]) for t, m in links.sent if m[1] is P]
        assert box.pending_bytes() <= 1000
        assert all(box.pending_bytes(k) <= 500 for k in "abc")
    drain = Links(a=10**6, b=10**6, c=10**6)
    box.flush(drain)
    protocol_out += [(t, m[0]) for t, m in drain.sent if m[1] is P]
    assert sorted(protocol_out) == sorted(protocol_in)  # every accepted protocol message is sent...
    for k in "abc":  # ...in order, per neighbour
        assert [m for t, m in protocol_out if t == k] == [m for t, m in protocol_in if t == k]
    assert box.pending() == 0 and box.pending_bytes() == 0
