"""The allocator settings of a worker: freed buffers are reused instead of faulted in again."""

from __future__ import annotations

import subprocess
import sys

from portside.workers.process import keep_freed_memory_for_reuse

# Allocates and frees request-body-sized buffers, as a push does, and prints the page faults.
_CHURN = """
import resource, sys
from portside.workers.process import keep_freed_memory_for_reuse
if sys.argv[1] == "tuned":
    assert keep_freed_memory_for_reuse()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    batch = [b"\\x01" * (256 << 10) for _ in range(16)]
    del batch
before = faults()
for _ in range(40):
    batch = [b"\\x01" * (256 << 10) for _ in range(16)]  # a 4 MiB batch of 256 KiB chunks
    read = b"\\x02" * (1 << 20)  # a 1 MiB read of a pull
    del batch, read
print(faults() - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_the_settings_apply_on_this_c_library() -> None:
    assert keep_freed_memory_for_reuse()


def test_buffers_freed_and_allocated_again_do_not_fault_in_fresh_pages() -> None:
    untouched, tuned = _faults("default"), _faults("tuned")
    # With glibc's defaults the heap is trimmed and refilled: measured here 3,700 faults for these
    # 200 MiB of buffers, against about 250 with the settings (the first touch of the kept heap).
    assert untouched > 2_000
    assert tuned < untouched / 5
