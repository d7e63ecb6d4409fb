"""``peer run`` alone: the very command of :mod:`peer.cli.app`, without the rest of the CLI.

A node process needs one command, but importing :mod:`peer.cli.app` loads every
other one too (the simulator, networkx, the experiments, the auctioneer): about
1.2 s of imports and 20 MiB, paid by every node started as ``python -m peer
run`` and by the launcher's fork server before it forks.  The ``run`` function,
its options and the CLI conventions are the same objects, so a node started
here parses its argv exactly as ``peer run`` does.
"""

from __future__ import annotations

from typing import Any


def node_command() -> Any:
    """The click group ``peer`` holding only ``run`` (a group, so argv starts with ``run``)."""
    import typer

    from peer.cli.conventions import PeerCommand, new_app
    from peer.cli.node_cmd import run

    app = new_app(name="peer", help="A peer-to-peer node (only the run command is loaded here).")

    @app.callback()
    def _root() -> None:
        """peer: one node."""

    app.command(cls=PeerCommand)(run)
    return typer.main.get_command(app)


def warm(command: Any, argv: list[str]) -> None:
    """Parse ``argv`` (a ``run ...`` line) without running it.

    typer builds each option's value converter (a pydantic adapter) on first
    use: ~0.1 s of CPU.  Done once in the fork server, every forked node finds
    them built.  A line that does not parse is left for the node to report.
    """
    try:
        with command.make_context("peer", list(argv)) as ctx:
            sub = command.get_command(ctx, argv[0])
            if sub is not None:
                sub.make_context(argv[0], list(argv[1:]), parent=ctx).close()
    except Exception:  # noqa: BLE001 - a warm-up only: the node itself reports a bad argv
        pass


def run_argv(command: Any, argv: list[str], prog_name: str | None = "peer") -> int:
    """Run ``command`` on ``argv`` as the ``peer`` program would; return its exit code."""
    try:
        command.main(args=list(argv), prog_name=prog_name, standalone_mode=True)
    except SystemExit as exc:
        return exit_code(exc)
    return 0


def exit_code(exc: SystemExit) -> int:
    """The process exit code a ``SystemExit`` stands for."""
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def main() -> None:
    """``python -m peer run ...``."""
    import sys

    raise SystemExit(run_argv(node_command(), sys.argv[1:], prog_name=None))  # usage says python -m peer, as the full CLI's
