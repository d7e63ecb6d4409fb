"""Process lifetime: a launched node never outlives the process that started it.

Used by the fork server (its forked nodes) and by the exec launcher (between
fork and exec, in ``preexec_fn``; the setting is kept across exec).  ``ctypes``
is imported with this module, before any fork, so nothing is imported in the
child between fork and exec.
"""

from __future__ import annotations

import ctypes
import os
import signal


def die_with_parent() -> None:
    """SIGTERM this process when its parent dies (even by SIGKILL).

    Linux's PR_SET_PDEATHSIG; elsewhere there is no such call and the parent's
    own orderly stop (the fork server's pipe closed, the launcher's stop) is all
    there is.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    except (OSError, AttributeError):
        pass
