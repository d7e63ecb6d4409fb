"""``peer run --no-tui``: one plain line per event a person cares about.

Pure: an event dict (as the node's EventLog emits it) in, a line or None out.
"""

from __future__ import annotations

from typing import Any

from peer.tui.snapshot import NodeIdentity


def identity_lines(ident: NodeIdentity) -> list[str]:
    """Printed once at start (and kept in the live view): how to reach this node."""
    lines = [
        f"node {ident.name} listening on {ident.url}",
        f"public key {ident.public_key}",
        f"neighbours link here with: {ident.neighbour_spec}",
    ]
    if ident.wildcard:
        lines.append(f"(listening on every interface: replace {ident.host} with an address neighbours can reach)")
    return lines


def event_line(event: dict[str, Any]) -> str | None:
    """The line for one event, or None for the ones too chatty to print (send, recv, ...)."""
    kind = event.get("kind")
    t = event.get("t", 0.0)
    prefix = f"[{float(t):7.2f}s] "
    text: str | None = None
    if kind == "link":
        if event.get("up"):
            text = f"link {event.get('peer')} up"
        else:
            reason = event.get("reason")
            text = f"link {event.get('peer')} down" + (f" ({reason})" if reason else "")
    elif kind == "waiting":
        text = f"waiting: {event.get('reason')}"
    elif kind == "announced":
        text = f"auction {event.get('auction')}: selling {event.get('item')}"
    elif kind == "stage":
        text = f"stage {event.get('stage')}"
    elif kind == "settled":
        text = f"settled: winner {event.get('winner')} at {event.get('price')} after {event.get('hops')} hop(s)"
    elif kind == "final":
        bought, sold = event.get("bought_at"), event.get("sold_at")
        trade = ", ".join(x for x in (f"bought at {bought}" if bought else "",
                                      f"sold at {sold}" if sold else "") if x) or "no trade"
        hops = len(event.get("ledger") or [])
        text = f"done: {trade}; ledger complete ({hops} hop entr{'y' if hops == 1 else 'ies'})"
    elif kind == "aborted":
        text = f"aborted: {event.get('reason')}"
    elif kind == "error":
        text = f"error: {event.get('reason')}"
    elif kind == "fraud":
        text = f"fraud detected in {event.get('auction')}: {', '.join(event.get('culprits') or []) or 'relayed proof'}"
    elif kind == "qpq_round":
        text = f"qpq round {event.get('round')}: winner {event.get('winner') or '-'}"
    if text is None:
        return None
    return prefix + text
