"""Freed memory given back to the system (glibc's allocator; elsewhere these do nothing).

A burst of big photo uploads once left the idle server holding 2.1 GB: arrays of a few MB are
served from glibc's per-thread arenas once its adaptive mmap threshold has grown, and an arena
keeps what is freed in it. :func:`tune` fixes the threshold (buffers from 1 MiB up are mapped
and unmapped on their own), and :func:`trim` hands the arenas' free pages back after work that
used a lot of memory. Written with ctypes: no library wraps mallopt / malloc_trim.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

log = logging.getLogger("gan3d")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES = 1 << 20


@cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def tune() -> bool:
    """Fix glibc's mmap threshold at 1 MiB (no adaptive growth). -> whether it was set."""
    libc = _glibc()
    if libc is None:
        log.info("not glibc: the allocator is left as it is")
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def trim() -> None:
    """Give the allocator's free pages back to the system (a few milliseconds)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
