"""``peer sell``, ``peer bid``, ``peer status``, ``peer value set``, ``peer neighbour add/remove/unban``: drive a running node.

The client side of the control socket (:mod:`peer.node.control`): one JSON
request line to ``DATA_DIR/control.sock``, one JSON response line back.  Every
failure is one ``error:`` line and a non-zero exit (2: the request was bad or
refused; 3: no node is running on that data directory).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from peer.cli.conventions import PeerCommand, new_app
from rich.console import Console

from peer.node.control import short_path, socket_path

EXIT_REFUSED = 2
EXIT_NO_NODE = 3
CONNECT_TIMEOUT = 5.0

DataDir = Annotated[Path, typer.Option("--data-dir", help="The running node's data directory.")]
Json = Annotated[bool, typer.Option("--json", help="Print the node's answer as JSON.")]

value_app = new_app(no_args_is_help=True, help="Set what this node would pay for items (no restart).")
neighbour_app = new_app(no_args_is_help=True, help="Add, remove or unban neighbours of a running node.")


def _fail(message: str, code: int = EXIT_REFUSED) -> None:
    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def request(data_dir: Path, payload: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """Send one request to the node on ``data_dir``; its answer (``ok`` true), else exit with the error."""
    path = socket_path(data_dir)
    if not path.exists():
        _fail(f"no node is running on {data_dir} (no control socket {path})", EXIT_NO_NODE)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    where, fd = short_path(path)
    try:
        try:
            sock.connect(where)
        except (ConnectionRefusedError, FileNotFoundError):
            _fail(f"no node is running on {data_dir} (its control socket {path} is stale)", EXIT_NO_NODE)
        except OSError as exc:
            _fail(f"cannot reach the node on {data_dir}: {exc.strerror or exc}", EXIT_NO_NODE)
        finally:
            if fd is not None:
                os.close(fd)
        sock.settimeout(timeout)
        sock.sendall(json.dumps(payload).encode() + b"\n")
        buf = bytearray()
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except TimeoutError:
        _fail(f"the node on {data_dir} did not answer within {timeout:g} s")
    except OSError as exc:
        _fail(f"lost the node on {data_dir}: {exc.strerror or exc}", EXIT_NO_NODE)
    finally:
        sock.close()
    try:
        answer = json.loads(bytes(buf).split(b"\n", 1)[0])
    except ValueError:
        _fail(f"the node on {data_dir} sent no answer (did it stop?)", EXIT_NO_NODE)
    if not isinstance(answer, dict):
        _fail(f"the node on {data_dir} sent a malformed answer")
    if not answer.get("ok"):
        _fail(str(answer.get("error", "refused")))
    return answer


def _print_json(answer: dict[str, Any]) -> None:
    answer = {k: v for k, v in answer.items() if k != "ok"}
    typer.echo(json.dumps(answer, indent=2, sort_keys=True))


def _outcome_line(o: dict[str, Any]) -> str:
    if o.get("outcome") == "completed":
        return (f"{o['auction']}  {o['item']}: sold to {o.get('winner_name', '?')} at {o.get('price', '?')} "
                f"after {o.get('hops', '?')} hop(s)" if o.get("hops") else
                f"{o['auction']}  {o['item']}: the seller {o.get('seller_name', '?')} kept it")
    return f"{o['auction']}  {o['item']}: aborted: {o.get('reason', '?')}"


def sell(
    item: Annotated[str, typer.Argument(help="The item to sell.")],
    data_dir: DataDir,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the outcome and print it.")] = False,
    timeout: Annotated[float, typer.Option(min=1, max=3600, help="Seconds --wait waits at most.")] = 300.0,
    as_json: Json = False,
) -> None:
    """Start an auction of ITEM on the running node; print its id (and, with --wait, its outcome)."""
    answer = request(data_dir, {"cmd": "sell", "item": item, "wait": wait, "timeout": timeout},
                     timeout=timeout + 10 if wait else 30)
    if as_json:
        _print_json(answer)
    elif wait:
        typer.echo(_outcome_line(answer["outcome"]))
    else:
        typer.echo(answer["auction"])
    if wait and answer["outcome"].get("outcome") != "completed":
        raise typer.Exit(1)


def status(data_dir: DataDir, as_json: Json = False) -> None:
    """Show the running node: identity, address, links, auctions in flight, recent outcomes, balance."""
    s = request(data_dir, {"cmd": "status"}, timeout=30)
    if as_json:
        _print_json(s)
        return
    out = [
        f"node {s['name']} ({s['short']})  key {s['key']}",
        f"listening on {s['listen'] or '?'}",
        f"give neighbours: {s['neighbour_string']}",
        "links: " + (", ".join(f"{ln['name']} {'up' if ln['up'] else 'down'}" for ln in s["links"]) or "none"),
        f"auctions in flight: {len(s['in_flight'])}",
    ]
    out += [f"  {a['auction']}  {a['item']}  seller {a['seller_name']}  {a['stage']}  hops {a['hops']}"
            for a in s["in_flight"]]
    out.append(f"recent outcomes: {len(s['recent'])}")
    out += [f"  {_outcome_line(o)}" for o in s["recent"]]
    out.append(f"balance: {s['balance']}  (ledger: {s['auctions_on_ledger']} auctions; "
               + ", ".join(f"{k} {v}" for k, v in s["balances"].items()) + ")")
    for ban in s.get("bans", []):
        out.append(f"banned: {ban['name']} ({ban['key'][:16]}...) {ban['for_seconds']:.0f} s ago: {ban['reason']}"
                   f"  (lift with: peer neighbour unban {ban['name']})")
    out += _auctioneer_lines(s.get("auctioneer", {}))
    if not s["ledger_writable"]:
        out.append(f"ledger NOT writable: {s['ledger_error']} (taking part in nothing until it is)")
    typer.echo("\n".join(out))


def _auctioneer_lines(a: dict[str, Any]) -> list[str]:
    out = []
    p = a.get("provider")
    if p:
        live = ", ".join(f"{r['round']} {r['phase']}" for r in p["live"]) or "none"
        out.append(f"auctioneer provider: {p['auction']} auction, k = {p['k']}, {len(p['providers'])} providers, "
                   f"a round every {p['interval']:g} s (bids for {p['bid_window']:g} s); live: {live}; "
                   f"decided {p['decided']}, ⊥ {p['bottom']}, {p['empty']} without bids (not recorded)")
        for r in p["recent"][-5:]:
            out.append(f"  round {r['round']}: " + (
                f"outcome {r['digest'][:16]}  {r['bids']} bids, {r['trades']} trades" if r["output"] == "outcome"
                else f"⊥ {r['reason']}" + (f" (culprits {', '.join(r['culprits'])})" if r["culprits"] else "")))
        out.append(f"  records: {p['records']}  (peer auctioneer rounds --data-dir ... lists and verifies them)")
    for b in a.get("bids", []):
        out.append("bid: " + _bid_line(b))
    return out


def _bid_line(b: dict[str, Any]) -> str:
    line = f"round {b['round']}: {b['side']} {b['quantity']} unit(s) at {b['value']}, acknowledged by " \
           f"{b['acknowledged']} of {b['providers']} providers"
    line += "".join(f"; refused by {r['provider']}: {r['reason']}" for r in b["rejected"])
    if b["acknowledged"] == 0:
        line += " (no provider answered: are they up, and is this node's key one of the cluster's clients?)"
    o = b.get("outcome")
    if o is None:
        return line + ("; bids close in {:.1f} s".format(b["bids_close_in"]) if b["bids_close_in"] > 0 else
                       "; outcome not known yet")
    if "bottom" in o:
        culprits = f" (culprits: {', '.join(o['culprits'])})" if o["culprits"] else ""
        return line + f"; round ⊥ at {len(o['bottom'])} provider(s): {next(iter(o['bottom'].values()))}{culprits}"
    got = sum(t["quantity"] for t in o["trades"])
    return line + f"; outcome {o['digest'][:16]}: {got} unit(s) in {len(o['trades'])} trade(s), pays {o['pays']}" \
        + (f", receives {o['receives']}" if o["receives"] != "0" else "")


def bid(
    data_dir: DataDir,
    cluster: Annotated[Path, typer.Option(help="The auctioneer's cluster file (its providers and schedule).")],
    value: Annotated[str, typer.Option(help="Most this node pays per bandwidth unit (exact decimal); "
                                       "with --sell, its cost per unit.")],
    quantity: Annotated[int, typer.Option(min=1, help="Bandwidth units wanted (with --sell: offered).")] = 1,
    sell: Annotated[bool, typer.Option("--sell", help="Offer bandwidth (a provider's ask) instead of buying.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the round's outcome and print this node's part.")] = False,
    timeout: Annotated[float, typer.Option(min=1, max=3600, help="Seconds --wait waits at most.")] = 120.0,
    as_json: Json = False,
) -> None:
    """Sign a bid with the running node's key and send it to every provider of the cluster (the next open round)."""
    payload = {"cmd": "bid", "cluster": str(cluster.resolve()), "value": value, "quantity": quantity,
               "side": "provider" if sell else "user", "wait": wait, "timeout": timeout}
    answer = request(data_dir, payload, timeout=timeout + 30)
    if as_json:
        _print_json(answer)
    else:
        typer.echo(_bid_line(answer))
    outcome = answer.get("outcome")
    if answer["acknowledged"] == 0 or (wait and (outcome is None or "bottom" in outcome)):
        raise typer.Exit(1)


@value_app.command("set", cls=PeerCommand)
def value_set(
    item: Annotated[str, typer.Argument(help="An item name or a glob pattern (e.g. 'book-*').")],
    amount: Annotated[str, typer.Argument(help="What this node would pay (exact decimal).")],
    data_dir: DataDir,
) -> None:
    """Set this node's value for ITEM (used by auctions that start from now on; saved in values.toml)."""
    answer = request(data_dir, {"cmd": "value_set", "item": item, "amount": amount}, timeout=30)
    typer.echo(f"{answer['item']} = {answer['amount']}")


@neighbour_app.command("add", cls=PeerCommand)
def neighbour_add(
    spec: Annotated[str, typer.Argument(help="NAME=ws://HOST:PORT#PUBKEY (what `peer status` prints).")],
    data_dir: DataDir,
) -> None:
    """Link to a new neighbour now, without a restart."""
    answer = request(data_dir, {"cmd": "neighbour_add", "spec": spec}, timeout=30)
    typer.echo(f"added {answer['name']} ({answer['key'][:16]}...)")


@neighbour_app.command("remove", cls=PeerCommand)
def neighbour_remove(
    name: Annotated[str, typer.Argument(help="The neighbour's name.")],
    data_dir: DataDir,
) -> None:
    """Stop linking to a neighbour now, without a restart."""
    answer = request(data_dir, {"cmd": "neighbour_remove", "name": name}, timeout=30)
    typer.echo(f"removed {answer['name']}")


@neighbour_app.command("unban", cls=PeerCommand)
def neighbour_unban(
    name: Annotated[str, typer.Argument(help="The banned neighbour's name (or its key, in hex).")],
    data_dir: DataDir,
) -> None:
    """Lift a ban for abuse (`peer status` lists bans with their reason); the node links again."""
    answer = request(data_dir, {"cmd": "neighbour_unban", "name": name}, timeout=30)
    typer.echo(f"unbanned {answer['name']} ({answer['key'][:16]}...)")


def register(app: typer.Typer) -> None:
    """Add the control commands to ``peer``."""
    app.command(cls=PeerCommand)(sell)
    app.command(cls=PeerCommand)(status)
    app.command(cls=PeerCommand)(bid)
    app.add_typer(value_app, name="value")
    app.add_typer(neighbour_app, name="neighbour")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `peer sell`, `peer status`, ...")
