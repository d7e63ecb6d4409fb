"""Registers the operator's commands on the root ``peer`` app: ``peer key ...`` and ``peer launch``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from peer.cli.conventions import PeerCommand
    from peer.cli.key_cmd import key_app
    from peer.launch.cli import launch

    app.add_typer(key_app, name="key")
    # The same command as tools/launch, installed with the package (no clone needed).
    app.command(name="launch", cls=PeerCommand)(launch)
