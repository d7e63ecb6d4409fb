"""``peer key show KEYFILE``: who a key file makes a node (its public key and short name)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from peer.cli.conventions import PeerCommand, new_app
from peer.cli.node_cmd import _fail
from peer.net.identity import Identity, IdentityError

key_app = new_app(no_args_is_help=True, help="Inspect node identities (key files from peer keygen).")


@key_app.command(cls=PeerCommand)
def show(
    keyfile: Annotated[Path, typer.Argument(metavar="KEYFILE", help="A key file written by peer keygen.")],
    name: Annotated[str | None, typer.Option(help="The name neighbours will know this node by (default: the short name).")] = None,
    host: Annotated[str, typer.Option(help="Host for the neighbour string.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port for the neighbour string.")] = None,
    spec: Annotated[bool, typer.Option("--spec", help="Print only the neighbour string (for scripts).")] = False,
) -> None:
    """Print a key file's public key and short name, and the --neighbours item for it.

    The secret key is never printed.
    """
    try:
        identity = Identity.load(keyfile)
    except IdentityError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{keyfile}: {exc.strerror or exc}")
    where = f"ws://{host}:{port}" if port is not None else f"ws://{host}:PORT"
    neighbour = f"{name or identity.name}={where}#{identity.public_hex}"
    if spec:
        typer.echo(neighbour)
        return
    typer.echo(f"public key  {identity.public_hex}")
    typer.echo(f"short name  {identity.name}")
    typer.echo(f"neighbours  {neighbour}")
