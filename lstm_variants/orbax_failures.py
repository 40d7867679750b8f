"""A checkpoint save that fails mid-write says so in one line, not in thousands.

``population_checkpoint`` reports a failed save in one line and training goes on; the checkpoint
only saves time. But when orbax's writes fail part-way (the disk fills up between the free-space
check and the write, a file-size limit), its threads and tensorstore's report it themselves, in
ways no caller can catch (measured: 2,954 lines for six failed saves of one tiny member):

- orbax logs each failed writer thread at ERROR through absl, with the traceback;
- asyncio logs "Future exception was never retrieved" for the failed writes' futures when they
  are collected;
- Python warns of the failed writes' coroutines that were "never awaited" when they are
  collected;
- tensorstore's callbacks, arriving after orbax has closed the event loop of the save, raise
  ``RuntimeError("Event loop is closed")`` into ``sys.unraisablehook``, one traceback each.

``failure_of`` runs a save and returns its error in one line, without these: absl's and
asyncio's log records while the save runs and, after a failure, until the threads it started have
ended and their leftovers are collected; asyncio's reports of orbax's failed tasks collected
later still; and the closed-loop callbacks, which come later. A failed save's temporary files
are removed at once (``remove_temporaries``): on a full disk, the space is what the records need next. (A write still
in flight may make a folder again; the next save, or the chunk's end, removes it.)

Written here because orbax has no option for it: its errors are logged where they happen.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# orbax writes a save into ``<step>.orbax-checkpoint-tmp`` (and subfolders named alike), and
# renames it when complete.
TEMPORARY_MARK = ".orbax-checkpoint-tmp"
# Where a failed save's reports are logged: orbax's (through absl), and asyncio's for its futures.
LOGGERS = ("absl", "asyncio")
# How long a failed save's threads may take to end while their reports are dropped.
THREADS_WAIT_SECONDS = 10.0


def _none(record: logging.LogRecord) -> bool:
    return False


def _not_an_orbax_task_never_retrieved(record: logging.LogRecord) -> bool:
    """False (drop) for asyncio's report of an orbax write whose exception nobody retrieved."""
    message = record.getMessage()
    return not ("exception was never retrieved" in message and "/orbax/" in message)


def _a_callback_into_a_closed_loop(unraisable) -> bool:
    """Whether ``unraisable`` is a native thread's ``loop.call_soon_threadsafe`` (tensorstore's
    callback, with no Python caller) meeting a closed event loop."""
    error, frames = unraisable.exc_value, unraisable.exc_traceback
    return (
        isinstance(error, RuntimeError)
        and str(error) == "Event loop is closed"
        and frames is not None
        and frames.tb_frame.f_code.co_name == "call_soon_threadsafe"
    )


def _without_closed_loop_callbacks(previous):
    """``previous`` (a ``sys.unraisablehook``) without tensorstore's callbacks into the closed
    event loop of a save."""

    def hook(unraisable) -> None:
        if not _a_callback_into_a_closed_loop(unraisable):
            previous(unraisable)

    hook.drops_closed_loop_callbacks = True
    return hook


def failure_of(save: Callable[[], Any], close: Callable[[], Any]) -> str | None:
    """Run ``save``: None if it succeeds, else its error in one line, without orbax's own reports.

    While it runs, absl's and asyncio's log records are dropped: orbax logs its failed writer
    threads through absl (its records cannot be told apart by their source file, which is absl's
    own when the absl logger was made before absl set its class), and asyncio reports the failed
    writes' tasks and futures when they are collected. After a failure they stay dropped until
    ``close`` (orbax's manager) has run, the threads the save started have ended (at most
    ``THREADS_WAIT_SECONDS``: on a busy machine they go on failing, and logging, after the save
    has raised) and their leftovers are collected. From the first save on, tensorstore's
    callbacks into a closed event loop (a native thread calling ``call_soon_threadsafe``) are
    dropped too, as they come at any time, and later still.
    """
    if not getattr(sys.unraisablehook, "drops_closed_loop_callbacks", False):
        sys.unraisablehook = _without_closed_loop_callbacks(sys.unraisablehook)
    # A failed write's task may be collected long after the save (a busy machine, a thread that
    # outlived the wait): asyncio's report of it is dropped whenever it comes, and only it.
    asyncio_logger = logging.getLogger("asyncio")
    if _not_an_orbax_task_never_retrieved not in asyncio_logger.filters:
        asyncio_logger.addFilter(_not_an_orbax_task_never_retrieved)
    before = set(threading.enumerate())
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addFilter(_none)
    try:
        try:
            save()
        except Exception as error:
            why = f"{type(error).__name__}: {error}"
        else:
            return None
        with contextlib.suppress(Exception):  # reported by the next save, which reopens
            close()
        deadline = time.monotonic() + THREADS_WAIT_SECONDS
        for thread in set(threading.enumerate()) - before:
            # Thread's own join: orbax's threads override it to raise their error. A thread
            # still starting (listed, not yet running) cannot be joined; it is none of the save's.
            with contextlib.suppress(RuntimeError):
                threading.Thread.join(thread, max(deadline - time.monotonic(), 0))
        # The failed writes' tasks and coroutines, collected now: asyncio's reports of them are
        # dropped meanwhile, and Python's "coroutine ... was never awaited" is ignored.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
            gc.collect()
        return why
    finally:
        for logger in loggers:
            logger.removeFilter(_none)


def remove_temporaries(orbax_directory: Path) -> None:
    """Remove what a failed save wrote; the saves completed before it stay."""
    for temporary in Path(orbax_directory).glob(f"*{TEMPORARY_MARK}*"):
        shutil.rmtree(temporary, ignore_errors=True)
