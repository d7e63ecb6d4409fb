"""Turn whatever a node run raised into one line for a person and an exit code.

trio wraps what its tasks raise in (nested) exception groups, so the CLI
boundary cannot simply ``except OSError``: it flattens the group first and
then judges the leaves.  The exit codes are documented in
docs/troubleshooting.md.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from peer.errors import PeerError

EXIT_OK = 0
EXIT_FAILED = 1  # the node started, then failed (or a launch's check failed)
EXIT_BAD_INPUT = 2  # bad options, or the node could not start
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """Every non-group exception inside ``exc``, depth first."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


@dataclass(frozen=True)
class Failure:
    code: int
    message: str | None  # None: nothing to say (an interrupt)


def judge(exc: BaseException, *, host: str, port: int, started: bool) -> Failure:
    """What to tell the user about ``exc`` (raised by a node run listening on host:port)."""
    found = list(leaves(exc))
    if any(isinstance(e, KeyboardInterrupt) for e in found):
        return Failure(EXIT_INTERRUPTED, None)
    # Prefer the error that explains the others (a cancelled sibling is never the cause).
    for leaf in found:
        message = _describe(leaf, host=host, port=port, started=started)
        if message is not None:
            return Failure(EXIT_FAILED if started else EXIT_BAD_INPUT, message)
    first = found[0] if found else exc
    text = str(first) or type(first).__name__
    return Failure(EXIT_FAILED if started else EXIT_BAD_INPUT,
                   f"unexpected {type(first).__name__}: {text} (run again with --debug to see where)")


def _describe(exc: BaseException, *, host: str, port: int, started: bool) -> str | None:
    if isinstance(exc, PeerError):
        return str(exc)
    if isinstance(exc, OSError):
        if started and exc.filename is None:  # after start-up a socket error is not about listening
            return f"{type(exc).__name__}: {exc.strerror or exc}"
        return describe_os_error(exc, host=host, port=port)
    return None


def describe_os_error(exc: OSError, *, host: str, port: int) -> str:
    if exc.filename is not None:  # a file or directory: name it
        return f"{exc.filename}: {exc.strerror or exc}"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot listen on {host}:{port}: port {port} is already in use "
                f"(stop the other program, pick another --port, or use --port 0 for any free port)")
    if exc.errno == errno.EACCES:
        return f"cannot listen on {host}:{port}: permission denied (ports below 1024 need privileges)"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {host}:{port}: cannot resolve host {host!r} ({exc.strerror or exc})"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}:{port}: {host} is not an address of this machine"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
