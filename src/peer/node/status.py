"""What a node shows: the live view's snapshot and the control socket's ``status``, as plain data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from peer.money import format_money
from peer.node.balances import balances
from peer.sra.instance import SraAuction
from peer.tui.snapshot import NodeSnapshot

if TYPE_CHECKING:
    from peer.node.node import Node


def _view_instance(node: Node) -> SraAuction | None:
    """The auction the one-line views follow: the first one, else the newest in flight."""
    live = [i for i in node.instances if isinstance(i, SraAuction)]
    primary = node._primary
    if primary is not None and (not primary.finished or not live):
        return primary
    return live[-1] if live else primary


def snapshot(node: Node) -> NodeSnapshot:
    snap = NodeSnapshot(
        name=node.name,
        key=node.identity.name,
        links_up=len(node.linked),
        links_total=len(node.neighbours),
        messages_in=node.messages_in,
        messages_out=node.messages_out,
        bad_frames=node.bad + sum(s.bad_frames for s in node.manager.snapshot().values()),
        value=node.config.value,
    )
    inst = _view_instance(node)
    if inst is None:
        return snap
    m = inst.machine
    snap.stage = m.stage.value
    snap.value = m.value
    snap.inviters = [node.n(x) for x in sorted(m.inviters)]
    snap.invitees = [node.n(x) for x in sorted(m.children.keys() | m.declined)]
    snap.parent = node.n(m.parents[0]) if len(m.parents) == 1 else None
    snap.bought_at = None if m.is_seller else m.bought_at
    snap.sold_at = m.sold_at
    chain = node.store.chain(m.auction)
    snap.ledger_entries = 0 if chain is None else chain.length
    if m.is_seller:
        snap.role = "seller"
    elif inst.settled is not None and inst.settled.winner == node.me:
        snap.role = "winner"
    elif m.bought_at is not None:
        snap.role = "local seller"
    if inst.settled is not None:
        snap.winner = node.n(inst.settled.winner)
    return snap


def neighbour_string(node: Node) -> str:
    """The exact ``NAME=ws://HOST:PORT#KEY`` string to give neighbours."""
    address = node.address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{node.name}=ws://{address[0]}:{address[1]}#{node.me}"
    return f"{node.name}=#{node.me}"


def outcome_json(node: Node, outcome: dict[str, Any]) -> dict[str, Any]:
    out = dict(outcome)
    out["seller_name"] = node.n(outcome["seller"])
    if "winner" in outcome:
        out["winner_name"] = node.n(outcome["winner"])
        out["price"] = format_money(outcome["price"])
    return out


def status(node: Node) -> dict[str, Any]:
    """Everything ``peer status`` shows (money as exact decimal strings)."""
    links = node.manager.snapshot()
    in_flight = []
    for inst in node.instances:
        if not isinstance(inst, SraAuction):
            continue
        chain = node.store.chain(inst.key)
        in_flight.append({
            "auction": inst.key, "item": inst.machine.item, "seller": inst.owner,
            "seller_name": node.n(inst.owner), "stage": inst.stage,
            "role": "seller" if inst.machine.is_seller else "participant",
            "hops": 0 if chain is None else len(chain.hops),
        })
    chains = node.store.chains()
    positions = balances(chains)
    address = node.address
    return {
        "name": node.name,
        "key": node.me,
        "short": node.identity.name,
        "listen": f"ws://{address[0]}:{address[1]}" if isinstance(address, tuple) else None,
        "neighbour_string": neighbour_string(node),
        "links": [{"name": node.n(peer), "key": peer, "up": peer in node.linked,
                   "last_error": links[peer].last_error if peer in links else None}
                  for peer in node.neighbours],
        "in_flight": in_flight,
        "recent": [outcome_json(node, o) for o in list(node.outcomes)[-20:]],
        "auctions_on_ledger": len(chains),
        "balance": _signed(positions.get(node.me, 0)),
        "balances": {node.n(k): _signed(v) for k, v in sorted(positions.items())},
        "value_default": format_money(node.values.default),
        "values": {k: format_money(v) for k, v in sorted(node.values.items.items())},
        "ledger_writable": node.store_failure is None,
        "ledger_error": node.store_failure,
        "limits": {"total": node.instances.limits.total, "per_neighbour": node.instances.limits.per_neighbour,
                   "per_seller": node.instances.limits.per_owner},
        "messages_in": node.messages_in,
        "messages_out": node.messages_out,
        "refused_invitations": node.refused_invites,
        "bad": node.bad,
        "internal_errors": node.internal_errors,
        "bans": bans(node),
        "abuse_scores": {node.n(k): round(v, 3) for k, v in sorted(node.manager.abuse_scores().items()) if v > 0},
        "outbox": {"bytes": node.outbox.pending_bytes(), "messages": node.outbox.pending(),
                   "relay_dropped": sum(node.outbox.dropped.values()),
                   "refused": {p.name.lower(): n for p, n in sorted(node.outbox.refused.items())}},
    }


def bans(node: Node) -> list[dict[str, Any]]:
    """Banned keys with the logged reason (``peer neighbour unban NAME`` lifts one)."""
    now = trio.current_time()
    return [{"name": node.n(k), "key": k, "reason": b.reason, "for_seconds": round(max(0.0, now - b.since), 1),
             "score": round(b.score, 3)} for k, b in sorted(node.manager.bans().items())]


def _signed(units: int) -> str:
    return format_money(units) if units >= 0 else "-" + format_money(-units)
