"""Keep freed memory in the process for reuse (glibc only), for the command-line tools.

numpy allocates every array above 32 MB with ``mmap`` and gives it back with ``munmap`` when it
is freed, so each large temporary is faulted in page by page again. On the bench machine that
made large compiles superlinear for no algorithmic reason: the same 7 x 10^6-element computation
took 0.69 s when its arrays were fresh mappings and 0.05 s when they came from reused heap
memory, and a 10^7-synapse compile spent about a third of its CPU time in page faults. Raising
glibc's mmap threshold and trim threshold lets freed blocks be reused instead. Peak memory is
unchanged (blocks are reused, not added); the heap does not shrink until the process exits, which
suits a compiler or interpreter run. Elsewhere (not glibc) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once; True when they were set."""
    global _done
    if _done:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1))
    _done = ok
    return ok
