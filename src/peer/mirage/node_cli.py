"""``peer mirage provider | user | verify``: the processes of a live Mirage market, and the offline check.

``peer launch scenarios/mirage/live.toml`` starts all of them (peer.launch.mirage_mode);
each is also a command an operator can run by hand.  Domain errors become one
printed line and exit code 2; no traceback reaches a user.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from peer.cli.conventions import PeerCommand, new_app
from peer.errors import PeerError

mirage_app = new_app(no_args_is_help=True, help="Mirage's market on real nodes: providers clear hourly rounds, users bid.")
console = Console()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(2)


def _load(key: Path, cluster: Path):
    from peer.mirage.live_config import LiveCluster
    from peer.net.identity import Identity, IdentityError

    try:
        return Identity.load(key), LiveCluster.load(cluster)
    except (IdentityError, PeerError) as exc:
        raise _fail(str(exc)) from None


def _run(main) -> None:
    """``trio.run(main)``, with a network or start-up failure inside a task group raised bare, so that it
    becomes one printed line (trio wraps every task's exception in an ExceptionGroup)."""
    import trio

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        leaves = [group]
        while leaves and isinstance(leaves[0], BaseExceptionGroup):
            leaves = list(leaves[0].exceptions) + leaves[1:]
        wanted = [e for e in leaves if isinstance(e, (OSError, TimeoutError, KeyboardInterrupt))]
        if wanted:
            raise wanted[0] from None
        raise


def _rounds(raw: str) -> frozenset[int]:
    try:
        return frozenset(int(x) for x in raw.split(",") if x.strip())
    except ValueError:
        raise _fail(f"not a comma-separated list of rounds: {raw!r}") from None


@mirage_app.command(cls=PeerCommand)
def provider(
    key: Annotated[Path, typer.Option(help="This provider's key file.")],
    cluster: Annotated[Path, typer.Option(help="The Mirage cluster file.")],
    directory: Annotated[Path, typer.Option("--dir", help="Address directory shared by the run.")],
    out: Annotated[Path | None, typer.Option(help="Write round-N.json records here.")] = None,
    lie: Annotated[str, typer.Option(hidden=True, help="Deviate: report a wrong task result in these rounds.")] = "",
    verbose: Annotated[bool, typer.Option("--verbose")] = False,
) -> None:
    """Run one provider: it clears every hourly round with the others and keeps the signed balances."""
    import logging

    from peer.mirage.live_shell import MirageProviderShell

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    identity, live = _load(key, cluster)
    if identity.public_key not in live.providers:
        raise _fail(f"{key} is not one of the cluster's providers")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"cannot create a directory: {exc.strerror}") from None
    shell = MirageProviderShell(identity, live, directory, out, lie_rounds=_rounds(lie))
    try:
        _run(shell.run)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (OSError, TimeoutError) as exc:
        raise _fail(str(exc)) from None
    decided = sum(1 for o in shell.outputs.values() if o == "decided")
    console.print(f"{identity.name}: {decided} of {live.rounds} rounds decided", highlight=False)
    if len(shell.outputs) < live.rounds:
        raise typer.Exit(1)


@mirage_app.command(cls=PeerCommand)
def user(
    key: Annotated[Path, typer.Option(help="This user's key file (its account).")],
    cluster: Annotated[Path, typer.Option(help="The Mirage cluster file.")],
    directory: Annotated[Path, typer.Option("--dir", help="Address directory shared by the run.")],
    scenario: Annotated[Path | None, typer.Option(help="The scenario its jobs come from (default: the cluster's).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write this user's summary (JSON) here.")] = None,
) -> None:
    """Run one user's node: its agent bids for its jobs through every provider, each round."""
    from peer.mirage.live_shell import MirageUserNode
    from peer.mirage.live_user import make_user
    from peer.mirage.scenario import load_mirage_scenario

    identity, live = _load(key, cluster)
    entry = next((u for u in live.users if u.key == identity.public_hex), None)
    if entry is None:
        raise _fail(f"{key} is not one of the cluster's users")
    try:
        loaded = load_mirage_scenario(scenario or Path(live.scenario))
        from dataclasses import replace

        loaded = replace(loaded, seed=live.seed)
        agent_user = make_user(entry, identity, loaded, live.rules, live.capacity, live.baseline, live.rounds)
    except (PeerError, ValueError) as exc:
        raise _fail(str(exc)) from None
    node = MirageUserNode(identity, live, directory, out, agent_user)
    try:
        _run(node.run)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (OSError, TimeoutError) as exc:
        raise _fail(str(exc)) from None
    summary = node.summary()
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(summary, indent=1))
        except OSError as exc:
            raise _fail(f"{out}: {exc.strerror}") from None
    console.print(f"{entry.name} ({entry.strategy}): won {len(summary['won'])} block(s), paid {summary['paid']}, "
                  f"balance {summary['balance']}", highlight=False)


@mirage_app.command(cls=PeerCommand)
def verify(
    cluster: Annotated[Path, typer.Option(help="The Mirage cluster file.")],
    records: Annotated[list[Path], typer.Argument(help="Directories of round-N.json records, one per provider.")],
) -> None:
    """Check providers' records offline: each copy recomputed round by round, signatures checked, copies equal."""
    from peer.mirage.live_check import check_copies
    from peer.mirage.live_config import LiveCluster

    try:
        live = LiveCluster.load(cluster)
    except PeerError as exc:
        raise _fail(str(exc)) from None
    report = check_copies(live, records)
    for line in report["problems"]:
        console.print(f"  - {line}", markup=False, highlight=False)
    console.print(f"{report['verified']}/{report['copies']} copies verify, identical: {report['identical']}",
                  highlight=False)
    if not report["ok"]:
        raise typer.Exit(1)
