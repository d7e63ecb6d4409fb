"""The views render into a fixed-width console exactly as the golden files say.

To refresh a golden file after an intended change: PEER_UPDATE_GOLDEN=1 pytest tests/tui
(and read the diff before committing it).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from peer.tui.snapshot import LedgerRow, NodeSnapshot
from peer.tui.views import network_view, node_view

GOLDEN = Path(__file__).parent / "golden"
M = 10**6


def render(renderable: object, width: int = 100) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(renderable)
    return buffer.getvalue()


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PEER_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with PEER_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def nodes() -> list[NodeSnapshot]:
    return [
        NodeSnapshot(name="s", key="k-s", stage="settled", role="seller", value=0, invitees=["a", "b"],
                     sold_at=5 * M, links_up=2, links_total=2, messages_in=4, messages_out=5, ledger_entries=2),
        NodeSnapshot(name="a", key="k-a", stage="settled", role="winner", value=8 * M, inviters=["s"], parent="s",
                     bought_at=5 * M, links_up=1, links_total=1, messages_in=3, messages_out=2, ledger_entries=2),
        NodeSnapshot(name="b", key="k-b", stage="reported", role="other", value=5 * M, inviters=["s"], parent="s",
                     links_up=1, links_total=1, messages_in=2, messages_out=1, bad_frames=3, ledger_entries=1),
    ]


def test_network_view_snapshot() -> None:
    ledger = [LedgerRow(1, "s", "a", 5 * M, "ab" * 32, copies=2)]
    text = render(network_view(nodes(), ledger, title="small-tree (seed 1)", elapsed=1.25, message_rate=42.0))
    check_golden("network_view.txt", text)
    for word in ("seller", "winner", "settled", "reported", "ledger", "2/3", "abababababab"):
        assert word in text


def test_node_view_snapshot() -> None:
    text = render(node_view(nodes()[1], events=["stage aggregating", "stage reported"]), width=80)
    check_golden("node_view.txt", text)
    assert "winner" in text and "3 allocation" not in text


@pytest.mark.parametrize("width", [40, 60, 200])
def test_views_render_at_any_width(width: int) -> None:
    many = [NodeSnapshot(name=f"n{i}", stage="aggregating", inviters=[f"n{j}" for j in range(i % 7)])
            for i in range(60)]
    text = render(network_view(many, [], title="big", elapsed=0.0, message_rate=0.0), width=width)
    assert "more nodes" in text


def test_network_view_fits_80x24_with_the_summary_first() -> None:
    # 40 nodes, named 1..40: natural order (2 before 10), the summary and the whole ledger above
    # the node table, and the node rows cut to what fits 24 lines.
    many = [NodeSnapshot(name=str(i), stage="settled", links_up=1, links_total=1) for i in range(1, 41)]
    many[0].role = "seller"
    ledger = [LedgerRow(h, str(h), str(h + 1), 5 * M, f"{h:02d}" * 32, copies=40) for h in range(1, 4)]
    text = render(network_view(many, ledger, title="forty (seed 1)", elapsed=2.0, message_rate=0.0,
                               height=24, width=80, footer="done: press any key"), width=80)
    check_golden("network_view_80x24.txt", text)
    lines = text.splitlines()
    assert len(lines) <= 23 and max(len(line) for line in lines) <= 80
    assert lines[3].startswith("sales 1 → 2 (5) → 3 (5) → 4 (5)")
    assert lines.index("ledger") < next(i for i, line in enumerate(lines) if line.startswith("node"))
    names = [line.split()[0] for line in lines if line[:1].isdigit() and "settled" in line]
    assert names[:4] == ["1", "2", "3", "4"] and "10" in names and names.index("9") < names.index("10")
    assert lines[-1] == "done: press any key"
