"""``peer``: the command-line entry point.

Commands parse their options and delegate; domain errors become one printed
line and a non-zero exit code here, and nowhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from peer import __version__
from peer.cli.experiment_cmd import experiment_app
from peer.errors import ScenarioError
from peer.ledger.cli import ledger_app
from peer.cli.node_cmd import keygen, run
from peer.qpq.cli import qpq_app, qpq_experiment_app
from peer.mechanisms import MECHANISMS, run_mechanism
from peer.result import dumps
from peer.scenario.load import load_scenario
from peer.sim.chaos import parse_chaos

app = typer.Typer(
    name="peer",
    help="A peer-to-peer node for auctions on social networks with no trusted auctioneer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(experiment_app, name="experiment")
experiment_app.add_typer(qpq_experiment_app)
app.add_typer(qpq_app, name="qpq", help="Multilevel QPQ: payment-free allocation of a stream of resources.")
app.command()(keygen)
app.command()(run)
app.add_typer(ledger_app, name="ledger", help="Show and verify a node's ledger, offline.")
app.add_typer(__import__("peer.auctioneer.cli", fromlist=["auctioneer_app"]).auctioneer_app, name="auctioneer")

EXIT_BAD_INPUT = 2


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


@app.command()
def sim(
    scenario: Annotated[Path, typer.Argument(help="A scenario TOML file.")],
    mechanism: Annotated[str, typer.Option(help=f"One of: {', '.join(MECHANISMS)}.")] = "sra",
    rounds: Annotated[bool, typer.Option("--rounds", help="Synchronous rounds (the paper's setting; default).")] = False,
    async_: Annotated[bool, typer.Option("--async", help="Seeded random per-message delays.")] = False,
    gather_window: Annotated[
        float | None, typer.Option(help="Gather window, in rounds (rounds mode) or delay units (async).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed; defaults to the scenario's.")] = None,
    runs: Annotated[int, typer.Option(min=1, help="Run seeds seed..seed+RUNS-1.")] = 1,
    trees: Annotated[int, typer.Option(min=1, help="Spanning trees sampled by crm when too many to enumerate.")] = 1000,
    json_out: Annotated[bool, typer.Option("--json", help="Print the run(s) as JSON.")] = False,
    chaos: Annotated[str | None, typer.Option(
        help="Network faults, e.g. drop=0.05,dup=0.05,delay=0.5,reorder=0.1 (seeded by the run seed).")] = None,
    paper_resale: Annotated[bool, typer.Option(
        "--paper-resale", help="The paper's literal stage 3 (buy, then resell) instead of guarded resale.")] = False,
) -> None:
    """Run every node of a scenario in one process and show the outcome."""
    if rounds and async_:
        _fail("choose one of --rounds and --async")
    if mechanism not in MECHANISMS:
        _fail(f"unknown mechanism {mechanism!r}; choose one of: {', '.join(MECHANISMS)}")
    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        _fail(str(exc))
    first = loaded.seed if seed is None else seed
    mode = "async" if async_ else "rounds"
    try:
        chaos_config = None if chaos is None else parse_chaos(chaos)
        results = [
            run_mechanism(mechanism, loaded, seed=s, mode=mode, gather_window=gather_window, trees=trees,
                          chaos=chaos_config, guarded=not paper_resale)
            for s in range(first, first + runs)
        ]
    except ValueError as exc:
        _fail(str(exc))
    if json_out:
        payload = results[0].to_json() if runs == 1 else {"runs": [r.to_json() for r in results]}
        sys.stdout.write(dumps(payload) + "\n")
        return
    from peer.cli.render import result_view

    console = Console()
    for result in results:
        console.print(result_view(result))


def _fail(message: str) -> None:
    # One line, verbatim: markup off (messages contain "[key]"), no wrapping.
    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)


def main() -> None:
    app()
