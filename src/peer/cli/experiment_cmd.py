"""``peer experiment ...``: the papers' experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from peer.cli.conventions import PeerCommand, fail, new_app, prepare_out_dir
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from peer.errors import ScenarioError

experiment_app = new_app(help="Reproduce the papers' experiments.", no_args_is_help=True)


@experiment_app.command(cls=PeerCommand)
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
    prepare_out_dir(out)
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
    try:
        paths = write_outputs(result, out)
    except OSError as exc:
        _fail(f"--out {out}: cannot write: {exc.strerror or exc}")
    console.print(summary_table(result))
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)


def _fail(message: str) -> NoReturn:
    fail(message)


@experiment_app.command(cls=PeerCommand)
def deviations(
    quick: Annotated[bool, typer.Option("--quick", help="The small set the tests run (a second or two).")] = False,
    seeds: Annotated[int | None, typer.Option(min=1, help="Run seeds per graph (default 12, quick 2).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: every CPU; quick: 1).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for deviations.csv, chaos.csv and the per-run CSVs.")] = Path(
        "out/deviations"
    ),
    paper_resale: Annotated[bool, typer.Option(
        "--paper-resale", help="The paper's literal stage 3 (buy, then resell) instead of guarded resale.")] = False,
    verifiable_coins: Annotated[bool, typer.Option(
        "--verifiable-coins",
        help="Parents chosen by a coin inviters can check (docs/findings.md) instead of a private coin.")] = False,
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
    if verifiable_coins:
        config = replace(config, verifiable_coins=True)
    prepare_out_dir(out)
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
    try:
        paths = write_csv(report, out)
    except OSError as exc:
        _fail(f"--out {out}: cannot write: {exc.strerror or exc}")
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)


from peer.mirage.cli import mirage as _mirage  # noqa: E402  (light: the market loads when it runs)

experiment_app.command("mirage", cls=PeerCommand)(_mirage)

from peer.auctioneer.cli import experiment as _auctioneer_experiment  # noqa: E402

experiment_app.command("auctioneer", cls=PeerCommand)(_auctioneer_experiment)
