"""``peer experiment ...``: the papers' experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from peer.errors import ScenarioError

experiment_app = typer.Typer(help="Reproduce the papers' experiments.", no_args_is_help=True)
experiment_app.command("auctioneer")(__import__("peer.auctioneer.cli", fromlist=["experiment"]).experiment)

EXIT_BAD_INPUT = 2


@experiment_app.command()
def figure2(
    samples: Annotated[int, typer.Option(min=1, help="Value samples.")] = 10_000,
    runs: Annotated[
        int,
        typer.Option(
            min=1,
            help="Randomised CRM runs (random spanning trees) per sample; also the distributed SRA's sampled trees "
            "per sample, if it can realise more than 4096.",
        ),
    ] = 1_000,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 1,
    scenario: Annotated[
        Path | None,
        typer.Option(help="Graph and seller; default scenarios/paper-figure2.toml here, else a packaged copy."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for figure2.csv, figure2.png, summary.json.")] = Path(
        "out/figure2"
    ),
) -> None:
    """The SRA paper's Sec. 5.2 experiment: win probability and expected utility per buyer, SRA vs IDM.

    SRA twice: as the paper computes it (CRM over all spanning trees) and distributed (rounds mode).
    """
    from peer.experiments.figure2 import load_figure2_scenario, run_figure2, summary_table, write_outputs

    console = Console()
    try:
        loaded = load_figure2_scenario(scenario)
    except ScenarioError as exc:
        _fail(str(exc))
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"{loaded.name}: samples", total=samples)
        try:
            result = run_figure2(
                loaded, samples=samples, runs=runs, seed=seed, progress=lambda n: progress.advance(task, n)
            )
        except ValueError as exc:
            _fail(str(exc))
    paths = write_outputs(result, out)
    console.print(summary_table(result))
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)


@experiment_app.command()
def deviations(
    quick: Annotated[bool, typer.Option("--quick", help="The small set the tests run (a second or two).")] = False,
    seeds: Annotated[int | None, typer.Option(min=1, help="Run seeds per graph (default 12, quick 2).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: every CPU; quick: 1).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for deviations.csv, chaos.csv and the per-run CSVs.")] = Path(
        "out/deviations"
    ),
    paper_resale: Annotated[bool, typer.Option(
        "--paper-resale", help="The paper's literal stage 3 (buy, then resell) instead of guarded resale.")] = False,
) -> None:
    """Strategic, malicious and faulty nodes, and network faults: what SRA and the shells' checks do about them."""
    import os
    from dataclasses import replace

    from peer.experiments.report import FULL, QUICK, build_report
    from peer.experiments.report_output import render, write_csv

    config = QUICK if quick else replace(FULL, workers=os.cpu_count() or 1)
    if seeds is not None:
        config = replace(config, seeds=seeds)
    if workers is not None:
        config = replace(config, workers=workers)
    if paper_resale:
        config = replace(config, guarded=False)
    console = Console()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("graph x seed", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = build_report(config, progress=advance)
    for item in render(report):
        console.print(item)
    for label, path in write_csv(report, out).items():
        console.print(f"{label}: {path}", highlight=False)
