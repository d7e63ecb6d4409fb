"""Giving memory back to the operating system after a flood.

CPython frees the objects of thousands of dropped connections, but glibc keeps
the freed heap pages mapped, so RSS stayed at 438-489 MiB 20 s after a flood
that started at 64 MiB (issue 17.1).  ``malloc_trim(0)`` returns free pages at
the top of the heap *and* unused pages inside it (glibc >= 2.8).  A no-op where
there is no glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys


def _load_trim() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _load_trim()


def reclaim_memory() -> bool:
    """Collect cycles and trim the C heap; True if the heap trim ran."""
    gc.collect()
    if _TRIM is None:
        return False
    _TRIM(0)  # type: ignore[operator]
    return True
