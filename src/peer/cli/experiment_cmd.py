"""``peer experiment ...``: the papers' experiments."""

from __future__ import annotations

import typer

experiment_app = typer.Typer(help="Reproduce the papers' experiments.", no_args_is_help=True)
