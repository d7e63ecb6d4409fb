"""``peer experiment ...``: the papers' experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from peer.errors import ScenarioError

experiment_app = typer.Typer(help="Reproduce the papers' experiments.", no_args_is_help=True)

EXIT_BAD_INPUT = 2


@experiment_app.command()
def figure2(
    samples: Annotated[int, typer.Option(min=1, help="Value samples.")] = 10_000,
    runs: Annotated[int, typer.Option(min=1, help="Randomised CRM runs (random spanning trees) per sample.")] = 1_000,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 1,
    scenario: Annotated[
        Path | None,
        typer.Option(help="Graph and seller; default scenarios/paper-figure2.toml here, else a packaged copy."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for figure2.csv, figure2.png, summary.json.")] = Path(
        "out/figure2"
    ),
) -> None:
    """The SRA paper's Sec. 5.2 experiment: win probability and expected utility per buyer, SRA vs IDM."""
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
