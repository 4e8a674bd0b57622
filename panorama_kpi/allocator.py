"""The C allocator's settings for a process that streams large buffers.

A dump turns ~1 MB buffers of rows into the lake's text with a few `bytes.replace`
calls, each making a new buffer of about the same size. glibc serves blocks of 128 KB
or more with a fresh `mmap` and returns them with `munmap` on free (and trims the top
of its heap the same way), so every such buffer cost page faults on all of its pages:
measured on a 1M-row PostgreSQL dump, a fifth of the wall time and most of the system
time. Raising both thresholds keeps those blocks in the heap for reuse; peak memory is
unchanged because the buffers are bounded (a few MB per stream).

Only where the C library has `mallopt` (glibc); elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks below this come from the heap (glibc's largest dynamic threshold is 32 MB).
MMAP_THRESHOLD = 32 << 20
#: Free memory kept at the top of the heap before it is returned to the system.
TRIM_THRESHOLD = 64 << 20


def tune() -> bool:
    """Apply the thresholds; True when the C library took them."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
