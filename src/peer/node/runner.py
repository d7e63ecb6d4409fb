"""Run one node in trio, with its compact live view or plain lines (what ``peer run`` runs).

Stopping: Ctrl-C (SIGINT) and SIGTERM cancel the node's tasks, so its
``finally`` closes the ledger and the event log, and the run returns with the
signal that stopped it; the CLI turns that into exit code 128 + signal.  A
signal that is ignored when we start (the launcher's children ignore SIGINT:
the launcher stops them itself) stays ignored.
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import trio

from peer.net.identity import Identity
from peer.node.config import NodeConfig
from peer.node.node import Node
from peer.tui.lines import event_line, identity_lines
from peer.tui.snapshot import NodeIdentity

if TYPE_CHECKING:  # rich draws the live view only: a node without one (every launched node) never loads it
    from rich.console import Console

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class NodeRun:
    """What a run ended with.  ``started`` is set once the node listens (so the CLI can tell a
    start-up failure from a later one even when the run raises)."""

    started: bool = False
    identity: NodeIdentity | None = None
    stopped_by: int | None = None  # the signal number, if a signal stopped the node
    node: Node | None = field(default=None, repr=False)


class LinePrinter:
    """An EventLog listener printing one line per stage change, link change and result.

    A closed stdout (``peer run --no-tui | head -1``) silences it instead of killing the node.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.closed = False

    def write(self, line: str) -> None:
        if self.closed:
            return
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):  # ValueError: the file was closed under us
            self.closed = True

    def __call__(self, event: dict[str, Any]) -> None:
        line = event_line(event)
        if line is not None:
            self.write(line)


def _identity_of(node: Node, address: Any) -> NodeIdentity:
    host, port = (address[0], address[1]) if isinstance(address, tuple) else (node.config.host, node.config.port)
    return NodeIdentity(name=node.name, public_key=node.identity.public_hex, host=str(host), port=int(port))


async def _dashboard(node: Node, console: Console, ident: NodeIdentity, fps: float = 4.0) -> None:
    from rich.live import Live

    from peer.tui.views import node_view

    # auto_refresh=False: rich's refresh thread would read node state from another OS thread.
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            # The panel is ~19 lines without events: show as many recent events as the terminal fits.
            room = max(0, min(6, console.size.height - 19))
            live.update(node_view(node.snapshot(), events=list(node.recent), identity=ident, max_events=room),
                        refresh=True)
            await trio.sleep(1 / fps)


async def _stop_on_signals(outcome: NodeRun, cancel: Callable[[], None]) -> None:
    wanted = [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
    if not wanted:
        await trio.sleep_forever()
    with trio.open_signal_receiver(*wanted) as signals:
        async for signum in signals:
            outcome.stopped_by = int(signum)
            cancel()
            return


async def serve_node(
    config: NodeConfig,
    identity: Identity,
    *,
    tui: bool,
    console: Console | None = None,
    out: TextIO | None = None,
    outcome: NodeRun | None = None,
    handle_signals: bool = True,
) -> NodeRun:
    """Run the node until it is done (``exit_when_done``), cancelled or signalled."""
    outcome = outcome if outcome is not None else NodeRun()
    node = Node(config, identity)
    outcome.node = node
    printer = None if tui else LinePrinter(out or sys.stdout)
    if printer is not None:
        node.log.listeners.append(printer)
    async with trio.open_nursery() as nursery:
        if handle_signals:
            nursery.start_soon(_stop_on_signals, outcome, nursery.cancel_scope.cancel)

        async def run_then_stop(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            await node.run(task_status=task_status)
            nursery.cancel_scope.cancel()  # done (exit_when_done): stop the signal watcher and the view

        address = await nursery.start(run_then_stop)
        ident = _identity_of(node, address)
        outcome.started, outcome.identity = True, ident
        if printer is not None:
            for line in identity_lines(ident):
                printer.write(line)
        else:
            if console is None:
                from rich.console import Console

                console = Console()
            live_console = console
            for line in identity_lines(ident):  # also in the scrollback, whole, for copying
                live_console.print(line, markup=False, highlight=False, soft_wrap=True)
            nursery.start_soon(_dashboard, node, live_console, ident)
    return outcome


def run_node_blocking(config: NodeConfig, identity: Identity, *, tui: bool, outcome: NodeRun | None = None) -> NodeRun:
    """``trio.run`` the node; ``outcome`` (if given) is filled in even when this raises."""
    return trio.run(functools.partial(serve_node, config, identity, tui=tui, outcome=outcome))
