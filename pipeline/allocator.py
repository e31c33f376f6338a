"""Process-wide malloc settings for long runs: at most two glibc malloc arenas.

    >>> limit_malloc_arenas() in (True, False)  # False where there is no glibc mallopt
    True

glibc gives each thread that allocates its own arena (up to 8 per core) and keeps freed
memory in the arena it came from. A run allocates from the event loop and from the worker
threads that read the input and commit parts (`asyncio.to_thread`: a pool of up to six
threads, each picking its own arena), so fragmentation adds up arena by arena and the
resident size creeps up with the length of the run, not with any data it keeps: measured
on 1M queries x 10 candidates (`local` provider), the run's RSS rose from ~170 MB in the
first minute to ~195 MB later, peak 210 MB (and 209 MB with main's code minus its id set).
With two arenas the same run stayed at ~165-172 MB, peak 185 MB, at the same CPU time.

Call it before the first thread starts (the CLI's `run` does): arenas already created
stay as they are. Nothing happens where the C library has no `mallopt` (macOS, musl
returns 0).
"""

from __future__ import annotations

import ctypes
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Ask glibc for at most `arenas` malloc arenas; True when it accepted."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded in this process
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
