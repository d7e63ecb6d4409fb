"""``peer run --no-tui``: the lines printed for a node's events."""

from __future__ import annotations

from peer.tui.lines import event_line, identity_lines
from peer.tui.snapshot import NodeIdentity


def test_identity_lines_give_the_exact_neighbour_item() -> None:
    ident = NodeIdentity(name="s", public_key="ab" * 32, host="127.0.0.1", port=43127)
    lines = identity_lines(ident)
    assert lines[0] == "node s listening on ws://127.0.0.1:43127"
    assert lines[2] == f"neighbours link here with: s=ws://127.0.0.1:43127#{'ab' * 32}"
    wildcard = identity_lines(NodeIdentity(name="s", public_key="ab" * 32, host="0.0.0.0", port=1))
    assert "replace 0.0.0.0" in wildcard[-1]


def test_one_line_per_stage_and_result_none_for_messages() -> None:
    assert event_line({"t": 1.5, "kind": "stage", "stage": "hosting"}) == "[   1.50s] stage hosting"
    assert event_line({"t": 0, "kind": "send", "type": "Bid"}) is None
    assert event_line({"t": 0, "kind": "recv", "type": "Bid"}) is None
    assert event_line({"t": 2, "kind": "settled", "winner": "c", "price": "5", "hops": 1}).endswith(
        "settled: winner c at 5 after 1 hop(s)")
    assert event_line({"t": 2, "kind": "final", "bought_at": None, "sold_at": "5", "ledger": ["x"]}).endswith(
        "done: sold at 5; ledger complete (1 hop entry)")
    assert event_line({"t": 2, "kind": "link", "peer": "b", "up": False, "reason": "closed"}).endswith(
        "link b down (closed)")
