"""pipeline.allocator's malloc settings take effect in a fresh process (glibc only).

Each check runs in its own interpreter: mallopt settings are process-wide, and a test
that calls the CLI in process has already made them in the pytest process."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Frees a 16 MB block (glibc maps it, and on free raises its mmap threshold to 16 MB unless
# the threshold was pinned), then holds 4 MB and prints how many more blocks are mapped.
PROBE = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[2] == "pinned":
    from pipeline.allocator import fix_mmap_threshold
    assert fix_mmap_threshold()
elif sys.argv[2] == "cli":  # any command: here one that fails at once
    from pipeline.cli import main
    assert main(["report", sys.argv[1] + "/no-such-output"]) == 2
libc.free(libc.malloc(16 << 20))
before = libc.mallinfo2().hblks
held = libc.malloc(4 << 20)
print(libc.mallinfo2().hblks - before)
"""


def _glibc_with_mallinfo2() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    return hasattr(ctypes.CDLL(None), "mallinfo2")  # glibc >= 2.33


needs_mallinfo2 = pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="needs glibc's mallinfo2")


def _clean_env() -> dict[str, str]:
    """This environment without what would set malloc up otherwise for the child."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD")
    }


def _mapped_blocks_for_4mb(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), mode],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    )
    return int(out.stdout.split()[-1])


@needs_mallinfo2
def test_a_freed_large_block_moves_later_buffers_into_the_heap_unless_pinned():
    # The control shows glibc's adjusting (what made Arrow's buffers settle in the heap),
    # so the pinned case below is a real check.
    assert _mapped_blocks_for_4mb("default") == 0
    assert _mapped_blocks_for_4mb("pinned") == 1


@needs_mallinfo2
def test_the_cli_pins_the_threshold_before_any_command():
    assert _mapped_blocks_for_4mb("cli") == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_settings_are_accepted_and_a_users_arrow_pool_stays():
    probe = (
        "import os, sys; sys.path.insert(0, sys.argv[1]);"
        "from pipeline import allocator;"
        "print(allocator.limit_malloc_arenas(), allocator.fix_mmap_threshold(),"
        " allocator.use_system_arrow_pool())"
    )
    env_user_pool = {**_clean_env(), "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}
    out = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
        env=env_user_pool,
    )
    assert out.stdout.split() == ["True", "True", "False"]
