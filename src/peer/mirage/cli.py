"""``peer experiment mirage``: the command (registered in :mod:`peer.cli.experiment_cmd`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from peer.errors import ScenarioError

EXIT_BAD_INPUT = 2


def mirage(
    scenario: Annotated[Path | None, typer.Option(
        help="Mirage scenario TOML; default scenarios/mirage/paper.toml here, else next to the source tree.")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds (job streams); results are means over them.")] = 2,
    weeks: Annotated[float | None, typer.Option(min=0.05, help="Override the scenario's length in weeks.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for the CSV files and plots.")] = Path("out/mirage"),
) -> None:
    """Mirage's repeated auction: A1, A2, A2+MIP and A2+rules against truthful users and strategies S1-S4."""
    from peer.mirage.experiment import check_claims, run_experiment
    from peer.mirage.output import claims_table, summary_table, write_csv, write_plots
    from peer.mirage.scenario import load_mirage_scenario

    console = Console()
    try:
        loaded = load_mirage_scenario(scenario)
    except ScenarioError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)  # keys look like markup
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if weeks is not None:
        loaded = replace(loaded, weeks=weeks)
    first = loaded.seed
    with console.status("running rounds...") as status:
        report = run_experiment(loaded, tuple(range(first, first + seeds)),
                                progress=lambda label: status.update(f"ran {label}"))
    console.print(summary_table(report))
    console.print(claims_table(check_claims(report)))
    try:
        paths = {**write_csv(report, out), **write_plots(report, out)}
    except OSError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] cannot write to {escape(str(out))}: "
                                   f"{escape(exc.strerror or str(exc))}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)
