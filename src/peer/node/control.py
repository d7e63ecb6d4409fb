"""The control socket: a running node's local endpoint for ``peer sell``, ``peer status`` and friends.

Conventions follow long-lived daemons with a local client (bitcoind with
bitcoin-cli, lnd with lncli), kept as small as they can be: the endpoint is a
Unix socket in the node's data directory, ``DATA_DIR/control.sock``, created
mode 0600 (only the node's owner may connect: file permissions are the
authentication, so there is no cookie to leak) and never on the network.  The
protocol is line-delimited JSON: one request object per line, one response
object per line, ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.
Every read and write is bounded in time and size; a client that disconnects
mid-request harms nothing (its request either ran, or did not start); a
request holds the node's lock only for its own step, never while waiting.

Requests (``cmd``): ``status``; ``sell`` (``item``, ``wait``, ``timeout``);
``wait`` (``auction``, ``timeout``); ``value_set`` (``item``, ``amount``);
``neighbour_add`` (``spec``: ``NAME=ws://HOST:PORT#KEY``); ``neighbour_remove``
(``name``); ``neighbour_unban`` (``name``: a neighbour's name or key; lifts a
ban for abuse, which ``status`` lists under ``bans``); ``bid`` (``cluster``: the
auctioneer's cluster file, ``value``, ``quantity``, ``side``: ``user`` or
``provider``, ``wait``, ``timeout``: sign a bid with the node's key and send it to
every provider, see :mod:`peer.auctioneer.bidder_host`).  Amounts are exact decimal strings.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from peer.money import MoneyError, parse_money
from peer.node.actions import unban_neighbour
from peer.node.config import ConfigError, parse_neighbours
from peer.node.status import outcome_json, status

if TYPE_CHECKING:
    from peer.node.node import Node

SOCKET_NAME = "control.sock"
MAX_LINE = 64 * 1024
READ_TIMEOUT = 10.0  # seconds a client has to send its request
WRITE_TIMEOUT = 5.0
MAX_WAIT = 3600.0  # the longest a request may wait for an auction to end
UNIX_PATH_MAX = 100  # sun_path is 108 bytes on Linux; leave room


class ControlError(Exception):
    """A request the node refuses; the message is the one line the client prints."""


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


def short_path(path: Path) -> tuple[str, int | None]:
    """A path bind/connect accept (sun_path is short): via /proc/self/fd when the real one is too long."""
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        return str(path), None
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{path.name}", fd


async def serve_control(node: Node, *, task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
    path = socket_path(node.data_dir)
    # We hold the data directory's ledger lock, so a socket file here is a dead node's.
    path.unlink(missing_ok=True)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    where, fd = short_path(path)
    old = os.umask(0o177)  # created 0600: no moment at which others could connect
    try:
        await sock.bind(where)
    finally:
        os.umask(old)
        if fd is not None:
            os.close(fd)
    os.chmod(path, 0o600)
    sock.listen(16)
    listener = trio.SocketListener(sock)
    task_status.started(path)
    try:
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:  # EMFILE and friends: shed this one, keep serving
                    node.emit("error", reason=f"control socket: {exc}")
                    await trio.sleep(0.1)
                    continue
                nursery.start_soon(_serve_client, node, stream)
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
        path.unlink(missing_ok=True)


async def _read_line(stream: trio.abc.Stream) -> bytes | None:
    buf = bytearray()
    while b"\n" not in buf:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return bytes(buf) if buf else None
        buf += chunk
        if len(buf) > MAX_LINE:
            raise ControlError(f"request longer than {MAX_LINE} bytes")
    return bytes(buf[: buf.index(b"\n")])


async def _serve_client(node: Node, stream: trio.abc.Stream) -> None:
    async with stream:
        try:
            with trio.fail_after(READ_TIMEOUT):
                line = await _read_line(stream)
            if line is None:
                return
            try:
                request = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                raise ControlError("the request is not a JSON object on one line") from None
            if not isinstance(request, dict):
                raise ControlError("the request is not a JSON object")
            response = {"ok": True, **await handle(node, request)}
        except ControlError as exc:
            response = {"ok": False, "error": str(exc)}
        except trio.TooSlowError:
            response = {"ok": False, "error": f"no complete request within {READ_TIMEOUT:g} s"}
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return  # the client went away: nothing to answer
        except Exception as exc:  # never let one request take the node down
            node.emit("error", reason=f"control request failed: {type(exc).__name__}: {exc}")
            response = {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
        try:
            with trio.move_on_after(WRITE_TIMEOUT):
                await stream.send_all(json.dumps(response).encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


def _text(request: dict[str, Any], field: str) -> str:
    value = request.get(field)
    if not isinstance(value, str) or not value:
        raise ControlError(f"missing {field!r} (a string)")
    return value


def _timeout(request: dict[str, Any]) -> float:
    value = request.get("timeout", 300)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_WAIT:
        raise ControlError(f"timeout must be a number of seconds in (0, {MAX_WAIT:g}]")
    return float(value)


async def _wait_for(node: Node, auction: str, timeout: float) -> dict[str, Any]:
    event = node.finished_event(auction)
    with trio.move_on_after(timeout):
        await event.wait()
    outcome = node.outcome_of(auction)
    if outcome is None:
        if event.is_set():
            raise ControlError(f"auction {auction!r} is not in flight here and its outcome is no longer kept")
        raise ControlError(f"auction {auction!r} did not end within {timeout:g} s (it is still in flight)")
    return {"auction": auction, "outcome": outcome_json(node, outcome)}


async def handle(node: Node, request: dict[str, Any]) -> dict[str, Any]:
    """One request; raises ControlError with the line the client shows."""
    from peer.node.node import SellError
    from peer.node.values import ValuesError

    cmd = request.get("cmd")
    if cmd == "status":
        async with node._lock:
            answer = status(node)
            extra = node.auctioneer.status()
            if extra:
                answer["auctioneer"] = extra
            return answer
    if cmd == "bid":
        return await _bid(node, request)
    if cmd == "sell":
        item = _text(request, "item")
        timeout = _timeout(request)
        async with node._lock:
            try:
                auction = await node.sell(item)
            except SellError as exc:
                raise ControlError(str(exc)) from None
        if request.get("wait"):
            return await _wait_for(node, auction, timeout)
        return {"auction": auction}
    if cmd == "wait":
        return await _wait_for(node, _text(request, "auction"), _timeout(request))
    if cmd == "value_set":
        item = _text(request, "item")
        if "/" in item or len(item) > 96 or not item.isprintable():
            raise ControlError(f"item {item!r}: up to 96 printable characters, no '/'")
        try:
            amount = parse_money(_text(request, "amount"))
        except MoneyError as exc:
            raise ControlError(f"amount: {exc}") from None
        async with node._lock:
            try:
                node.values.set(item, amount)
            except (OSError, ValuesError) as exc:
                raise ControlError(f"value not saved: {exc}") from None
            node.emit("values", reason="value set", item=item, amount=request["amount"])
        return {"item": item, "amount": request["amount"]}
    if cmd == "neighbour_add":
        try:
            specs = parse_neighbours(_text(request, "spec"), what="neighbour")
        except ConfigError as exc:
            raise ControlError(str(exc)) from None
        if len(specs) != 1 or specs[0].address is None:
            raise ControlError("give exactly one neighbour as NAME=ws://HOST:PORT#KEY")
        async with node._lock:
            try:
                node.add_neighbour(specs[0])
            except ValueError as exc:
                raise ControlError(str(exc)) from None
        return {"name": specs[0].name, "key": specs[0].pubkey.hex()}
    if cmd == "neighbour_remove":
        name = _text(request, "name")
        async with node._lock:
            try:
                key = node.remove_neighbour(name)
            except ValueError as exc:
                raise ControlError(str(exc)) from None
        return {"name": name, "key": key}
    if cmd == "neighbour_unban":
        name = _text(request, "name")
        async with node._lock:
            try:
                key = unban_neighbour(node, name)
            except ValueError as exc:
                raise ControlError(str(exc)) from None
        return {"name": node.n(key), "key": key}
    raise ControlError(f"unknown request {cmd!r}; one of: status, sell, wait, value_set, neighbour_add, "
                       "neighbour_remove, neighbour_unban, bid")


async def _bid(node: Node, request: dict[str, Any]) -> dict[str, Any]:
    from peer.auctioneer.bidder_host import BidError
    from peer.auctioneer.bids import MAX_QUANTITY, Side

    cluster = Path(_text(request, "cluster"))
    if not cluster.is_absolute():
        raise ControlError("cluster must be an absolute path (the node's working directory is not yours)")
    side = {"user": Side.USER, "provider": Side.PROVIDER}.get(request.get("side", "user"))
    if side is None:
        raise ControlError("side must be 'user' (buy bandwidth) or 'provider' (sell it)")
    try:
        value = parse_money(_text(request, "value"))
    except MoneyError as exc:
        raise ControlError(f"value: {exc}") from None
    quantity = request.get("quantity")
    if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
        raise ControlError(f"quantity must be a whole number of bandwidth units in [1, {MAX_QUANTITY}]")
    try:
        return await node.auctioneer.bidder.bid(cluster, side, value, quantity, wait=bool(request.get("wait")),
                                                timeout=_timeout(request))
    except BidError as exc:
        raise ControlError(str(exc)) from None
