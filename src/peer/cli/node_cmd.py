"""``peer keygen``, ``peer key show`` and ``peer run``: one real node."""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from peer.cli.failures import EXIT_BAD_INPUT, judge
from peer.money import MoneyError, parse_money
from peer.net.identity import Identity, IdentityError
from peer.node.config import ConfigError, NeighbourSpec, NodeConfig, parse_neighbours
from peer.node.values import ValuesError, ValueTable


def check_values_file(path: Path, default: int) -> None:
    """Refuse a ``--values`` file that is missing or does not parse, before the node starts."""
    if not path.is_file():
        raise ValuesError(f"--values {path}: no such file")
    ValueTable.open(path, default)



def with_cluster(specs: list[NeighbourSpec], path: Path, identity: Identity) -> list[NeighbourSpec]:
    """``specs`` plus the provider cluster's members this node must link to (raises ConfigError)."""
    from peer.auctioneer.cluster import NodeCluster
    from peer.auctioneer.shell import ClusterError

    try:
        cluster = NodeCluster.load(path)
    except ClusterError as exc:
        raise ConfigError(f"--provider {exc}") from None
    if identity.public_key not in cluster.providers:
        raise ConfigError(f"--provider {path}: this node's key is not one of the cluster's providers")
    keys = {s.pubkey for s in specs}
    names = {s.name for s in specs}
    out = list(specs)
    for spec in cluster.neighbour_specs(identity.public_key):
        if spec.pubkey in keys:
            continue  # already a configured neighbour: its address and name stand
        name = spec.name if spec.name not in names else f"{spec.name}-{spec.pubkey.hex()[:8]}"
        out.append(NeighbourSpec(name=name, pubkey=spec.pubkey, host=spec.host, port=spec.port))
        names.add(name)
    return out


def _fail(message: str) -> None:
    # One line, verbatim: markup off (messages contain "[key]"), no wrapping.
    _say(f"error: {message}")
    raise typer.Exit(EXIT_BAD_INPUT)


def keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the Ed25519 key (mode 0600).")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Create a node identity: an Ed25519 key; the node's id is its public key."""
    identity = Identity.generate()
    try:
        identity.save(out, overwrite=force)
    except IdentityError as exc:
        _fail(str(exc))  # names the path already
    except OSError as exc:
        _fail(f"{out}: {exc.strerror or exc}")
    typer.echo(f"{identity.public_hex}  {identity.name}  -> {out}")


def run(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (127.0.0.1 by default).")],
    key: Annotated[Path, typer.Option(help="This node's key file (from peer keygen).")],
    value: Annotated[str, typer.Option(help="This node's value for the item (exact decimal).")] = "0",
    neighbours: Annotated[list[str] | None, typer.Option(
        help="NAME=ws://HOST:PORT#PUBKEY (keys are pinned); repeat the option or separate with commas.")] = None,
    sell: Annotated[str | None, typer.Option(help="Sell ITEM: this node is the seller.")] = None,
    name: Annotated[str | None, typer.Option(help="A readable name for logs and views.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Seed of this node's random choices (parent, tie-breaks).")] = 0,
    auction_id: Annotated[str | None, typer.Option(help="Auction id (seller only; default: from this node's key, the item and the time; "
        "an explicit id is not protected from squatting).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Ledger and state directory (default ./peer-data/NAME).")] = None,
    log_json: Annotated[Path | None, typer.Option(help="Append NDJSON events to this file.")] = None,
    gather_window: Annotated[float, typer.Option(min=0, help="Seconds to gather inviters before forwarding.")] = 0.2,
    reply_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for an invitee's reply.")] = 30.0,
    context_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait in a local auction.")] = 30.0,
    confirm_timeout: Annotated[float, typer.Option(
        min=0.1, help="Seller: seconds to wait for a buyer's Confirm or Refuse (covers the resale chain).")] = 90.0,
    paper_resale: Annotated[bool, typer.Option(
        "--paper-resale", help="The paper's literal stage 3 (every node of the auction must agree).")] = False,
    verifiable_coins: Annotated[bool, typer.Option(
        "--verifiable-coins",
        help="Pick parents by verifiable coins, signed and checked (every node of the auction must agree).")] = False,
    values: Annotated[Path | None, typer.Option(
        "--values", help="Per-item values, TOML: default and [items] names or globs to amounts "
        "(default DATA_DIR/values.toml if it exists; --value is the default's default).")] = None,
    max_auctions: Annotated[int, typer.Option(min=1, help="Auctions in flight at once.")] = 64,
    max_per_neighbour: Annotated[int, typer.Option(
        min=1, help="Auctions in flight opened here by one neighbour's invitations.")] = 32,
    max_per_seller: Annotated[int, typer.Option(min=1, help="Auctions in flight of one seller.")] = 8,
    heartbeat: Annotated[float, typer.Option(
        min=0.5, max=300, help="Seconds between heartbeats on a link with no other traffic; a link silent "
        "for 3x this long is closed.")] = 5.0,
    start_on_signal: Annotated[bool, typer.Option(help="Seller: start on SIGUSR1, not when all neighbours link.")] = False,
    start_timeout: Annotated[float, typer.Option(min=0, help="Seller: start anyway after this many seconds.")] = 60.0,
    exit_when_done: Annotated[bool, typer.Option(help="Exit once settled and the ledger copy is complete.")] = False,
    qpq_plan: Annotated[Path | None, typer.Option(help="Take part in a QPQ resource stream (a plan from tools/launch).")] = None,
    provider: Annotated[Path | None, typer.Option(
        "--provider", help="Be an executing provider of the distributed auctioneer: the cluster file (JSON or "
        "TOML) lists the providers, clients and schedule; its providers and clients become neighbours.")] = None,
    tui: Annotated[bool | None, typer.Option(
        "--tui/--no-tui", help="Show the live view (default: when stdout is a terminal).", show_default=False)] = None,
    debug: Annotated[bool, typer.Option(help="On a failure, also print the Python traceback.")] = False,
    behaviour: Annotated[str | None, typer.Option(
        hidden=True, help="TESTING ONLY: misbehave (see peer.node.adversary), e.g. crash@hosting.")] = None,
) -> None:
    """Run one node: link to the neighbours, take part in (or start) an auction."""
    attack = None
    try:
        # Every --neighbours counts (typer would keep only the last of a plain option);
        # a name given twice, in one option or across several, is refused.
        specs = parse_neighbours(",".join(neighbours or []))
        try:
            amount = parse_money(value)
        except MoneyError as exc:
            raise ConfigError(f"--value {value!r}: {exc}") from None
        if values is not None:
            check_values_file(values, amount)
        identity = Identity.load(key)
        if provider is not None:
            specs = with_cluster(specs, provider, identity)
        if behaviour is not None:
            from peer.node.adversary import Attack

            attack = Attack.parse(behaviour)
    except (ConfigError, MoneyError, IdentityError, ValuesError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{key}: {exc.strerror or exc}")
    config = NodeConfig(
        key_path=key, port=port, value=amount, neighbours=specs, name=name, host=host, sell=sell,
        auction_id=auction_id, seed=seed, data_dir=data_dir, log_json=log_json, gather_window=gather_window,
        reply_timeout=reply_timeout, context_timeout=context_timeout, confirm_timeout=confirm_timeout,
        paper_resale=paper_resale, verifiable_coins=verifiable_coins, values_file=values,
        max_auctions=max_auctions, max_per_neighbour=max_per_neighbour, max_per_seller=max_per_seller,
        start_on_signal=start_on_signal,
        start_timeout=start_timeout, qpq_plan=qpq_plan, provider_cluster=provider,
        exit_when_done=exit_when_done, heartbeat=heartbeat,
    )
    from peer.node.runner import NodeRun, run_node_blocking

    outcome = NodeRun()
    try:
        if attack is not None:  # a test adversary: no live view
            from peer.node.adversary import run_adversary_blocking

            run_adversary_blocking(config, identity, attack)
        else:
            # Decided now, not at import: the launcher imports this module with another stdout.
            run_node_blocking(config, identity, tui=sys.stdout.isatty() if tui is None else tui, outcome=outcome)
    except BaseException as exc:  # noqa: BLE001 - the CLI boundary: no traceback reaches a user
        if isinstance(exc, (SystemExit, typer.Exit)):
            raise
        failure = judge(exc, host=host, port=port, started=outcome.started)
        if debug:
            traceback.print_exception(exc)
        if failure.message is not None:
            _say(f"error: {failure.message}")
        raise typer.Exit(failure.code) from None
    if outcome.stopped_by is not None:
        _say(f"stopped by {signal.Signals(outcome.stopped_by).name}; ledger closed")
        raise typer.Exit(128 + outcome.stopped_by)


def _say(line: str) -> None:
    try:
        Console(stderr=True, soft_wrap=True).print(line, markup=False, highlight=False)
    except (BrokenPipeError, ValueError):
        pass
