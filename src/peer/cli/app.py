"""``peer``: the command-line entry point.

Commands parse their options and delegate; domain errors become one printed
line and a non-zero exit code here, and nowhere else.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from peer import __version__
from peer.cli.conventions import EXIT_BAD_INPUT, PeerCommand, fail, new_app
from peer.cli.experiment_cmd import experiment_app
from peer.errors import ScenarioError
from peer.ledger.cli import ledger_app
from peer.cli.control_cmd import register as register_control
from peer.cli.node_cmd import keygen, run
from peer.qpq.cli import qpq_app, qpq_experiment_app
from peer.mechanisms import MECHANISMS, run_mechanism
from peer.result import dumps
from peer.scenario.load import load_scenario
from peer.scenario.model import Scenario
from peer.sim.chaos import parse_chaos

app = new_app(
    name="peer",
    help="A peer-to-peer node for auctions on social networks with no trusted auctioneer.",
    no_args_is_help=True,
    add_completion=True,
)
app.add_typer(experiment_app, name="experiment")
experiment_app.add_typer(qpq_experiment_app)
app.add_typer(qpq_app, name="qpq", help="Multilevel QPQ: payment-free allocation of a stream of resources.")
app.command(cls=PeerCommand)(keygen)
app.command(cls=PeerCommand)(run)
app.add_typer(ledger_app, name="ledger", help="Show and verify a node's ledger, offline.")
from peer.cli.operator_cmds import register as _register_operator_commands  # noqa: E402
_register_operator_commands(app)  # peer key ..., peer launch
register_control(app)  # sell, status, value set, neighbour add/remove: drive a running node
from peer.auctioneer.cli import auctioneer_app  # noqa: E402
app.add_typer(auctioneer_app, name="auctioneer")
from peer.mirage.node_cli import mirage_app  # noqa: E402  (light: the market loads when a command runs)
app.add_typer(mirage_app, name="mirage")

# The --mechanism choices, so that help and shell completion list them.
Mechanism = Enum("Mechanism", {m.replace("-", "_"): m for m in MECHANISMS}, type=str)  # type: ignore[misc]

__all__ = ["EXIT_BAD_INPUT", "app", "main"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"peer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """peer: SRA and multilevel QPQ on social networks."""


@app.command(cls=PeerCommand)
def sim(
    scenario: Annotated[Path, typer.Argument(help="A scenario TOML file.")],
    mechanism: Annotated[Mechanism, typer.Option(help="The mechanism to run.")] = Mechanism.sra,  # type: ignore[attr-defined]
    rounds: Annotated[bool, typer.Option("--rounds", help="Synchronous rounds (the paper's setting; default).")] = False,
    async_: Annotated[bool, typer.Option("--async", help="Seeded random per-message delays.")] = False,
    gather_window: Annotated[
        float | None, typer.Option(min=0, help="Gather window, in rounds (rounds mode) or delay units (async).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help=(
        "Run seed (default: the scenario's): parents, tie-breaks, async delays, chaos, Sybil edges, crm's "
        "sampled trees. The graph and the values come from the scenario's own seed and never change with it."))] = None,
    runs: Annotated[int, typer.Option(min=1, help=(
        "Run seeds seed..seed+RUNS-1 and print a summary (means with 95% confidence intervals); "
        "--json adds the summary to every run."))] = 1,
    trees: Annotated[int, typer.Option(min=1, help="Spanning trees sampled by crm when too many to enumerate.")] = 1000,
    json_out: Annotated[bool, typer.Option("--json", help=(
        "Print the run(s) as JSON; amounts are in whole units, as exact decimal JSON numbers."))] = False,
    chaos: Annotated[str | None, typer.Option(
        help="Network faults, e.g. drop=0.05,dup=0.05,delay=0.5,reorder=0.1 (seeded by the run seed).")] = None,
    paper_resale: Annotated[bool, typer.Option(
        "--paper-resale", help="The paper's literal stage 3 (buy, then resell) instead of guarded resale.")] = False,
    auctions: Annotated[int | None, typer.Option(
        min=1, help="Run this many auctions sharing the nodes (sellers drawn by the seed; async delays).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="With --auctions: auctions in flight at once.")] = 1,
    capacity: Annotated[int, typer.Option(min=1, help="With --auctions: each node's bound on auctions in flight.")] = 64,
) -> None:
    """Run every node of a scenario in one process and show the outcome."""
    if rounds and async_:
        _fail("choose one of --rounds and --async")
    mechanism_name = Mechanism(mechanism).value
    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        _fail(str(exc))
    _warn_unreachable(loaded)
    first = loaded.seed if seed is None else seed
    if auctions is not None:
        from peer.sim.workload import print_workload, simulate_workload

        print_workload(simulate_workload(loaded, seed=first, auctions=auctions, concurrency=concurrency,
                                         capacity=capacity, guarded=not paper_resale), json_out)
        return
    mode = "async" if async_ else "rounds"
    try:
        chaos_config = None if chaos is None else parse_chaos(chaos)
        results = [
            run_mechanism(mechanism_name, loaded, seed=s, mode=mode, gather_window=gather_window, trees=trees,
                          chaos=chaos_config, guarded=not paper_resale)
            for s in range(first, first + runs)
        ]
    except ValueError as exc:
        _fail(str(exc))
    from peer.cli.summary import summarise, summary_json, summary_view

    if json_out:
        if runs == 1:
            payload = results[0].to_json()
        else:
            payload = {"runs": [r.to_json() for r in results], "summary": summary_json(summarise(results))}
        sys.stdout.write(dumps(payload) + "\n")
        return
    console = Console()
    if runs == 1:
        from peer.cli.render import result_view

        console.print(result_view(results[0]))
    else:
        console.print(summary_view(summarise(results)))


def _warn_unreachable(scenario: Scenario) -> None:
    from peer.cli.reach import unreachable_warning

    line = unreachable_warning(scenario)
    if line is not None:
        Console(stderr=True, soft_wrap=True).print(line, markup=False, highlight=False)


def _fail(message: str) -> NoReturn:
    fail(message)


def main() -> None:
    app()
