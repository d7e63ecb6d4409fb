"""The fork server parses each node's argv before forking it; the node only invokes the result.

Parsing a ``peer run`` line with typer touches a few hundred of the fork
server's pages (option objects, converters, typing objects: CPython 3.11 writes
every object's reference count), and a forked node that parsed its own argv
copied each of them: ~400 pages, 1.6 MiB of its memory (measured with
``/proc/self/pagemap``, two linked nodes).  Parsed in the fork server, for a whole
batch of forks before the first of them, those pages stay shared; each node
invokes its own parsed command, as ``peer run`` would (same exit codes, same
error lines).  A line that does not parse here is left to the node, which
reports it as ``peer run`` does.
"""

from __future__ import annotations

import sys
from typing import Any

Parsed = tuple[Any, Any, Any]  # (the group's context, the run command, its context)


def parse(command: Any, argv: list[str]) -> Parsed | None:
    """``argv`` (a ``run ...`` line) parsed into click contexts, or None if it does not parse here."""
    try:
        ctx = command.make_context("peer", list(argv))
        sub = command.get_command(ctx, argv[0])
        if sub is None:
            return None
        return ctx, sub, sub.make_context(argv[0], list(argv[1:]), parent=ctx)
    except (Exception, SystemExit):  # noqa: BLE001 - usage errors, --help: the node reports them itself
        return None


def invoke(parsed: Parsed) -> int:
    """Run the parsed command; its exit code, with errors shown as typer's standalone main shows them."""
    from typer import _click
    from typer.exceptions import Abort, Exit

    from peer.cli.node_entry import exit_code

    ctx, sub, sub_ctx = parsed
    try:
        try:
            with ctx:
                ctx.invoked_subcommand = sub_ctx.info_name
                with sub_ctx:
                    sub.invoke(sub_ctx)
        except KeyboardInterrupt as exc:
            raise Exit(130) from exc
        except _click.exceptions.ClickException as exc:
            exc.show()
            return exc.exit_code
    except Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return exit_code(exc)
    except Abort:
        print("Aborted!", file=sys.stderr)
        return 1
    return 0
