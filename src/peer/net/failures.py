"""Turning a failed handshake into a :class:`HandshakeFailed` event a person can act on.

Issue 9.4: a wrong pinned key used to give ``handshake with unknown failed ...
not a configured neighbour`` over and over, naming neither the neighbour nor
the keys.  :func:`describe_failure` says which configured neighbour was dialled
(or claimed), which key was expected and which was presented, in one sentence;
the link manager rate-limits repeats with :class:`peer.net.abuse.ReportLimiter`.

A refused dialer learns why from the listener's close reason; a listener that
was dialled with a wrong pin for itself names its real key there
(``misdirected: this node is <hex>``), which :func:`key_named_in` recovers.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from peer.net.handshake import HandshakeError
from peer.net.identity import short_name
from peer.net.linkstate import HandshakeFailed

_NAMED_KEY = re.compile(r"this node is ([0-9a-f]{64})")


def key_named_in(close_reason: str | None) -> bytes | None:
    """The key a refusing listener named as its own in its close reason, if any."""
    match = _NAMED_KEY.search(close_reason or "")
    return bytes.fromhex(match.group(1)) if match else None


def _k(key: bytes | None) -> str:
    return f"{short_name(key)} ({key.hex()[:16]}…)" if key else "?"


def describe_failure(
    error: HandshakeError,
    *,
    dialled: bytes | None,
    claimed: bytes | None,
    source: str,
    neighbours: Mapping[bytes, object],
    me: bytes,
) -> HandshakeFailed:
    """The event for one failed handshake.

    ``dialled`` is the pinned key we dialled (outbound) or ``None`` (inbound);
    ``claimed`` the key an inbound dialer put in its Hello, if it got that far;
    ``neighbours`` the configured neighbour keys.
    """
    presented = error.presented or claimed
    inbound = dialled is None
    if not inbound:
        nb = dialled
        head = f"dialled neighbour {_k(dialled)} at {source}"
        if error.kind == "wrong-key":
            text = f"{head}: expected key {dialled.hex()}, but it presented {presented.hex() if presented else '?'}"
            if presented in neighbours:
                text += f" (that is neighbour {short_name(presented)}'s key: are two addresses swapped?)"
        elif error.kind == "refused":
            named = key_named_in(error.reason)
            if named is not None:
                presented = named
                text = (f"{head}: it refused us as misdirected; we expected key {dialled.hex()} but it says it "
                        f"is {named.hex()}: the key pinned for it here is wrong")
            elif "unknown key" in error.reason:
                text = (f"{head}: it refused our key {me.hex()} as not one of its neighbours: "
                        f"the key pinned for us there is wrong or missing ({error.reason})")
            else:
                text = f"{head}: it refused our handshake ({error.reason})"
        else:
            text = f"{head}, expecting key {dialled.hex()}: {error.reason}"
        return HandshakeFailed(error.kind, nb.hex(), dialled.hex(), presented.hex() if presented else None,
                               text, False, source)
    nb = presented if presented in neighbours else None
    head = f"inbound connection from {source}"
    if error.kind == "unknown-key" and presented is not None:
        text = (f"{head} presented key {presented.hex()}, which is not a configured neighbour's "
                f"(configured: {', '.join(short_name(k) for k in neighbours) or 'none'})")
    elif error.kind == "misdirected" and presented is not None:
        wanted = error.wanted.hex() if error.wanted else "?"
        text = (f"{head} claiming {'neighbour ' + _k(presented) if nb else 'key ' + presented.hex()} "
                f"expected this node to have key {wanted}, but this node is {me.hex()}: its pin for us is wrong")
        return HandshakeFailed(error.kind, nb.hex() if nb else None, wanted, presented.hex(), text, True, source)
    elif presented is not None:
        who = f"neighbour {_k(presented)}" if nb else f"key {presented.hex()}"
        text = f"{head} claiming {who}: {error.reason}"
    else:
        text = f"{head}: {error.reason}"
    return HandshakeFailed(error.kind, nb.hex() if nb else None, None, presented.hex() if presented else None,
                           text, True, source)
