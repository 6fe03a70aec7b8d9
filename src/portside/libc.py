"""The C library, for the few Linux calls Python's ``os`` does not wrap."""

from __future__ import annotations

import ctypes
import ctypes.util


def load_libc() -> ctypes.CDLL | None:
    """The process's C library with ``errno`` kept, or ``None`` where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
