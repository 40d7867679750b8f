"""Give each of several local jobs cores of its own (``cpu_pinning``), so their threads never meet.

Jobs side by side on one CPU host (``launcher=joblib``) each run one simulated device, but XLA's CPU
runtime still starts a thread pool per process sized for every core, and a device's loop bodies
hand work to that pool. Two unpinned jobs on two cores therefore run four busy threads on two
cores. Measured on the 2-core CPU with the 32 Greff-shaped trials of ``benchmarks/population.py``,
split into two populations of 16, one per process, one device each:

    processes unpinned                     3.22 trial-epochs/s (1.69 + 1.53)
    each pinned to its own core            4.32 trial-epochs/s (2.33 + 1.98)
    one process, two devices, all 32       3.00 trial-epochs/s

Through the command line, two Greff JSB jobs side by side (README, "Jobs side by side") finished
after 86 s pinned and 104 s unpinned, against 92 s one after the other on two devices.

A job claims a core by holding an exclusive ``flock`` on a file named after it, in one directory per
user (``core_lock_dir``). The kernel drops the lock when the process ends, however it ends, so a
crashed or killed job never keeps its core, and a study's next job takes whichever core is free.
No library does this claim-and-pin (``os.sched_setaffinity`` pins one thread; loky and joblib do
not assign cores), hence this module.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

# Open lock files of the cores this process holds; closing one would release its core.
_held: dict[int, object] = {}


def core_lock_dir() -> Path:
    """The machine-wide directory of core locks for this user."""
    return Path(tempfile.gettempdir()) / f"lstm-variants-cores-{os.getuid()}"


def claim_cores(count: int, lock_dir: Path | None = None) -> list[int]:
    """Claim up to ``count`` cores of this process's allowed set that no other process holds.

    A process that already holds cores keeps them (a reused worker process runs job after job).

    Returns:
      The claimed cores, sorted; fewer than ``count`` (possibly none) when the others are taken.
    """
    lock_dir = core_lock_dir() if lock_dir is None else Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    for core in sorted(os.sched_getaffinity(0) | set(_held)):
        if len(_held) >= count:
            break
        if core in _held:
            continue
        handle = open(lock_dir / f"core-{core}.lock", "a")  # stays open while the core is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held[core] = handle
    return sorted(_held)


def pin_process(cores: list[int]) -> None:
    """Keep every thread of this process, and so every thread it starts later, on ``cores``.

    ``os.sched_setaffinity(0, ...)`` moves only the calling thread; JAX's pool threads, if it has
    started them, are moved one by one through ``/proc/self/task``.
    """
    target = set(cores)
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), target)
        except (ProcessLookupError, PermissionError):
            pass  # a thread that ended meanwhile
