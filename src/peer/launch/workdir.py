"""A launch mode's work directory: made (or given), and never left holding private keys.

Shared by the QPQ and Mirage launch modes: a temporary directory is removed
after a clean run; after a failure only its logs are kept (the keys are
removed and the path is printed), and an empty one is removed too.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console


def run_in_workdir(prefix: str, workdir: Path | None, err: Console, body: Callable[[Path], int]) -> int:
    """Run ``body(root)``; an unwritable directory is one error line (2), Ctrl-C is 130."""
    try:
        root = Path(tempfile.mkdtemp(prefix=prefix)) if workdir is None else workdir
    except OSError as exc:
        err.print(f"error: cannot make a temporary directory: {exc.strerror or exc}", markup=False)
        return 2
    code = 1
    try:
        root.mkdir(parents=True, exist_ok=True)
        code = body(root)
    except OSError as exc:  # the work directory (or a file in it) cannot be written
        err.print(f"error: {exc.filename or root}: {exc.strerror or exc}", markup=False, highlight=False)
        code = 2
    except KeyboardInterrupt:  # Ctrl-C before the nodes started (planning, forking)
        code = 130
    finally:
        if workdir is None:  # a temp dir never keeps the private keys (see peer.launch.cli)
            if code == 0:
                shutil.rmtree(root, ignore_errors=True)
            else:
                shutil.rmtree(root / "keys", ignore_errors=True)
                if any(root.iterdir()):
                    err.print(f"logs kept in {root} (keys removed)", markup=False, highlight=False)
                else:
                    shutil.rmtree(root, ignore_errors=True)
    return code
