"""How a server worker process is set up once it has started: the collector and the C allocator."""

from __future__ import annotations

import ctypes
import gc

from portside.libc import load_libc

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# Blocks up to this size come from the heap, where freed memory is reused, rather than from mmap.
MMAP_THRESHOLD = 4 << 20
# Free memory kept at the top of a heap instead of being handed back to the kernel.
TRIM_THRESHOLD = 8 << 20
# Heaps shared by all threads (glibc's default is eight per core): each keeps its own free memory.
ARENA_MAX = 2


def keep_freed_memory_for_reuse() -> bool:
    """Ask glibc's malloc to reuse freed buffers instead of returning them to the kernel.

    A push arrives as request-body chunks of 64 to 400 KiB (allocated by Granian) gathered into
    4 MiB batches; a pull reads 1 MiB at a time. With glibc's defaults, buffers that size are
    mmapped, or trimmed off the heap once freed, so the next batch faults in fresh zeroed pages:
    15,000 to 21,000 page faults per 256 MiB push here. With these settings that fell to about a
    hundred, and 16 parallel pulls used less CPU (docs/performance.md). Kept free memory counts in
    RSS: with an 8 MiB trim threshold and two arenas a worker's peak grew by about 4 MiB in the
    pull benchmarks, where a 32 MiB threshold and glibc's default arenas cost 8 to 10 MiB.
    Returns whether the settings were applied (not on a C library without ``mallopt``, such as musl).
    """
    mallopt = getattr(load_libc(), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ((M_ARENA_MAX, ARENA_MAX), (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return all([bool(mallopt(parameter, value)) for parameter, value in settings])


def settle_worker_process() -> None:
    """Once a worker has built its app: freeze what it built, and tune the allocator for streaming."""
    # Everything built so far lives as long as the worker: keep it out of the collector's full
    # passes, which otherwise walk it all and stall every request in flight meanwhile.
    gc.collect()
    gc.freeze()
    keep_freed_memory_for_reuse()
