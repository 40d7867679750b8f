"""One process at a time trains a given population into an output folder.

Two processes given the same study and output folder (a command started twice, a SLURM job
requeued while the first copy still runs) would otherwise both train every trial, and both save
the same checkpoint directory at once. Each population is therefore trained under an exclusive
lock named like its checkpoint directory (the hash of its trial ids):
``output_dir/.locks/<hash>.lock``, with the holder's process id, host and command in
``<hash>.holder`` beside it. A process that finds the lock held says once who holds it and
waits; when it gets the lock, it trains only what is still missing, which is usually nothing.

The jobs of one sweep share the folder legitimately: they train other trials, so other locks,
and never wait for each other. Two processes that group the same trials differently (another
``population_size``) take other locks and may both train a trial; their records are written
atomically and equal to rounding (a member's numbers depend in their last bits on its
population's padding and sharding), the later replacing the earlier, and their checkpoints go
to other directories, so nothing is lost.

The lock is ``filelock``'s (``flock`` on Unix), which the kernel releases when its process
ends, however it ends: a lock is never left behind by a killed run. On a file system without
``flock`` (Lustre mounted ``noflock``) the population trains unlocked, with a warning line. The
holder's note goes with the lock; the lock files stay (empty, one per population): removing one
while another process waits on it would let a third take a fresh file and hold "the same" lock
at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import filelock

LOCKS = ".locks"


def population_key(trials: Sequence[str]) -> str:
    """A population's name in an output folder: the first 16 hex digits of the sha256 of its
    sorted trial ids. Its checkpoint directory and its lock are named by it."""
    return hashlib.sha256(" ".join(sorted(trials)).encode()).hexdigest()[:16]


def lock_path(output_dir: Path, trials: Sequence[str]) -> Path:
    """``output_dir/.locks/<population_key>.lock``."""
    return Path(output_dir) / LOCKS / f"{population_key(trials)}.lock"


def holder_note() -> str:
    """Who holds a lock: this process's id, host and command line."""
    return f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)[:300]}"


@contextlib.contextmanager
def population_lock(
    output_dir: Path,
    trials: Sequence[str],
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> Iterator[bool]:
    """Hold the population lock of ``trials`` in ``output_dir`` for the block.

    Yields:
      Whether the lock was held by another process when asked for, so that the caller looks
      again at what that process has recorded meanwhile.
    """
    path = lock_path(output_dir, trials)
    note = path.with_suffix(".holder")
    path.parent.mkdir(parents=True, exist_ok=True)
    # No fallback to a marker file where the file system has no flock: a killed holder would
    # leave it behind, and every later run would wait on it for ever.
    lock = filelock.FileLock(path, fallback_to_soft=False)
    try:
        waited = not _acquired_at_once(lock)
    except (NotImplementedError, OSError) as error:  # no flock here
        log(
            f"lstm-variants: warning: cannot lock {path} ({error}); trained unlocked, so another "
            "process given the same trials and folder would train them too"
        )
        yield False
        return
    if waited:
        holder = ""
        with contextlib.suppress(OSError):
            holder = note.read_text().strip()
        log(
            f"waiting for another process training the same {len(trials)} trial(s) into "
            f"{output_dir} ({holder or 'holder unknown'}); what it records is not trained here. "
            f"Lock: {path}"
        )
        lock.acquire()
    try:
        with contextlib.suppress(OSError):  # only for the message of a process that waits
            note.write_text(holder_note() + "\n")
        yield waited
    finally:
        # Still holding the lock: a process that waits next reads no stale note, only its
        # new holder's (or none yet).
        with contextlib.suppress(OSError):
            note.unlink()
        lock.release()


def _acquired_at_once(lock: filelock.FileLock) -> bool:
    """Take ``lock`` if it is free; False if another process holds it."""
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:  # an OSError too: told apart here from a file system without flock
        return False
    return True
