"""The launcher's terminal: keep a finished dashboard on screen until a key is pressed or
``--linger`` seconds pass, and cope with a reader that went away.

Only on a terminal: with stdin or stdout not a tty (a pipe, CI) there is nobody
to press a key, so there is no wait at all.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable
from typing import Any

try:
    import termios
    import tty
except ImportError:  # not POSIX: no raw keyboard, no linger
    termios = None  # type: ignore[assignment]
    tty = None  # type: ignore[assignment]


def interactive() -> bool:
    return termios is not None and sys.stdin.isatty() and sys.stdout.isatty()


def wait_for_key(seconds: float) -> bool:
    """Block until a key is pressed (True) or ``seconds`` pass (False).  Never waits off a terminal."""
    if seconds <= 0 or not interactive():
        return False
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)  # one key, no Enter; Ctrl-C still interrupts
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if ready:
                os.read(fd, 64)  # swallow the key (and any escape sequence) so the shell does not get it
                return True
        return False
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def stdout_closed() -> None:
    """``tools/launch ... | head -1``: the reader has what it wanted.  Point stdout at /dev/null so
    the interpreter's final flush does not fail again; the run's own result decides the exit code."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def close_view(live: Any, ok: bool, linger: float, draw_done: Callable[[str], None], what: str) -> None:
    """End a launch's live view: on success, keep it on screen until a key or ``linger`` seconds
    (``draw_done`` redraws it with the footer), then stop it, coping with a closed stdout."""
    if live is None:
        return
    if ok and linger > 0 and interactive():
        draw_done(f"done: press any key for the {what} (or wait {linger:g} s)")
        try:
            wait_for_key(linger)
        except KeyboardInterrupt:
            pass
    try:
        live.stop()
    except (OSError, SystemExit):  # rich turns a broken pipe into SystemExit(1)
        stdout_closed()
