"""Process-wide malloc settings for long runs: at most two glibc malloc arenas, large
blocks mapped (and unmapped when freed), and Arrow's buffers from that same malloc.

    >>> limit_malloc_arenas() in (True, False)  # False where there is no glibc mallopt
    True
    >>> fix_mmap_threshold() in (True, False)
    True
    >>> use_system_arrow_pool() in (True, False)  # False where the user chose a pool
    True

glibc gives each thread that allocates its own arena (up to 8 per core) and keeps freed
memory in the arena it came from. A run allocates from the event loop and from the worker
threads that read the input and commit parts (`asyncio.to_thread`: a pool of up to six
threads, each picking its own arena), so fragmentation adds up arena by arena and the
resident size creeps up with the length of the run, not with any data it keeps: measured
on 1M queries x 10 candidates (`local` provider), the run's RSS rose from ~170 MB in the
first minute to ~195 MB later, peak 210 MB (and 209 MB with main's code minus its id set).
With two arenas the same run stayed at ~165-172 MB, peak 185 MB, at the same CPU time.

Call it before the pipeline starts threads (the CLI does, first thing, for every command;
importing pyarrow may already have started its own): arenas already created stay as they
are. Nothing happens where the C library has no `mallopt` (macOS,
musl returns 0).

glibc serves a block of 128 KB or more with its own `mmap`, returned to the OS when freed,
but each time such a block is freed it raises that threshold to the block's size (up to
32 MB), so Arrow's column buffers (hundreds of KB to a few MB per batch) soon come from the
heap instead, where freed ones stay resident and fragment it: the resident size then grows
with the number of batches a command has read. `fix_mmap_threshold` pins the threshold at
256 KB, which also stops the adjusting. Measured side by side with the commit before
(whose ledger cache was 4 MB, not 1: ~3 MB of the 3M difference), peak RSS, 2 runs each,
grouped input of 10 candidates in 32,768-row row groups:
`estimate` of 100,000 queries 119/120 -> 112/112 MB, of 3,000,000 131/131 -> 114/115 MB,
wall 55.1/56.1 -> 58.3/60.2 s (the mapping and zeroing of each large buffer); `run` of
100,000 170/167 -> 156/157 MB at the same wall time (24.3/24.7 -> 23.3/24.9 s). A 1 MB
threshold kept most of the estimate's growth (127 MB at 3M), 4 MB all of it (132 MB).

pyarrow allocates from its bundled mimalloc by default, which keeps what it has touched:
the peak resident size of the same commands with `ARROW_DEFAULT_MEMORY_POOL=system`,
measured side by side (2 runs each, `benchmarks/scale.py`'s VmHWM): `run` of 100,000
grouped queries 215/220 -> 161/161 MB at the same wall time (30.0/28.3 -> 28.4/26.9 s);
`estimate` of 1M pairs queries (10M rows) 200/185 -> 151/152 MB (53.5/51.0 -> 55.7/49.0 s).
Arrow reads that variable once, at its first allocation, so `pipeline/__init__.py` sets it
(unless the user named a pool); `use_system_arrow_pool`, which the CLI calls, also switches
pyarrow's own default where Arrow was imported first (a switch made that late left a run
at 204 MB: Arrow's C++ code keeps its first pool).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Ask glibc for at most `arenas` malloc arenas; True when it accepted."""
    return _mallopt(M_ARENA_MAX, arenas)


def fix_mmap_threshold(nbytes: int = 256 << 10) -> bool:
    """Blocks of `nbytes` or more from `mmap` (unless free heap space already fits them),
    whatever was freed before (see above); True when glibc accepted."""
    return _mallopt(M_MMAP_THRESHOLD, nbytes)


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded in this process
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(param, value))


def use_system_arrow_pool() -> bool:
    """pyarrow's default memory pool becomes the C library's malloc (see above); True when
    switched, False where `ARROW_DEFAULT_MEMORY_POOL` names another pool (used as given)."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "system") != "system":
        return False
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    return True
