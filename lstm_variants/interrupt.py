"""Ctrl-C ends a command with one line and exit status 130, wherever in JAX the signal lands.

SIGTERM (``kill``, ``timeout``, ``docker stop``) is handled the same way, with status 143, and
SIGHUP (the terminal closed, an ssh connection dropped) with status 129: by default either would
end the process on the spot, before the population loop saves its last epoch.

Python turns SIGINT into ``KeyboardInterrupt`` at the main thread's next bytecode. In a JAX
program two things make that unreliable, so the default handling is not enough:

- That bytecode may run inside a garbage-collection callback (JAX registers one,
  ``_xla_gc_callback``). An exception cannot leave such a callback: Python prints "Exception
  ignored in ..." with a traceback, drops the interrupt, and training goes on (seen in CI).
- While the main thread waits in a long C++ call (compiling, a long epoch), nothing happens
  until the call returns.

So, while ``ending_interrupts`` is active:

- an interrupt dropped that way ends the process at once, through ``sys.unraisablehook``;
- a watchdog ends the process if it is still running ``grace_seconds`` after the first Ctrl-C,
  or, if it is then inside a ``finishing_first`` block (a checkpoint being written), as soon as
  the block ends, ``FINISH_SECONDS`` at most;
- a second Ctrl-C ends it at once, unless it comes within ``DUPLICATE_SECONDS`` of the first:
  that is one Ctrl-C delivered twice (the terminal or a harness signals the whole process group,
  and ``uv run``, seeing no terminal, forwards its own copy), and ending at once would cut short
  the clean-up the first one started (a population's last checkpoint);
- once the interrupt has been reported, a later one ends the process quietly instead of raising
  ``KeyboardInterrupt`` into Python's exit handlers (where it would print a traceback).

Whichever way it ends, the one line is printed once. Ending with ``os._exit`` skips Python's
clean-up, which is safe here. Records and job statuses are written to a temporary file and
renamed (``records.write_json_atomic``), and the compilation cache removes programs cut short
at its next start.

No library handles this for JAX programs: Hydra leaves signals alone, and JAX's own gc callback
is what drops the interrupt.

A reader that goes away (``lstm-variants --help | head``) is the other way a command is cut
short. Python ignores SIGPIPE and raises ``BrokenPipeError`` at the next write, often at exit while
flushing, with a traceback. ``quiet_when_reader_leaves`` ends such a command silently with status
141, as a Unix tool killed by SIGPIPE would.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator

# Exit status of a program stopped by SIGINT, by the shells' convention 128 + 2 (SIGTERM: 143).
INTERRUPTED_STATUS = 130
GRACE_SECONDS = 5.0
DUPLICATE_SECONDS = 1.0
FINISH_SECONDS = 120.0

# 128 + SIGPIPE's number: what a shell reports for a tool whose reader closed the pipe.
BROKEN_PIPE_STATUS = 141

# How many ``finishing_first`` blocks are running (any thread).
_finishing = 0
_finishing_lock = threading.Lock()


@contextlib.contextmanager
def finishing_first() -> Iterator[None]:
    """Work that the watchdog lets finish before it ends an interrupted process (a checkpoint
    being saved: cut short, it would be lost), for up to ``FINISH_SECONDS``."""
    global _finishing
    with _finishing_lock:
        _finishing += 1
    try:
        yield
    finally:
        with _finishing_lock:
            _finishing -= 1


class _Interrupted:
    """The state of one command's interrupt handling: the line, and whether it was printed."""

    def __init__(self, line: str, grace_seconds: float):
        self.line = line
        self.grace_seconds = grace_seconds
        self.lock = threading.Lock()
        self.signalled_at: float | None = None
        self.status = INTERRUPTED_STATUS  # 128 + the first signal's number
        self.reported = False

    def report(self) -> None:
        with self.lock:
            first, self.reported = not self.reported, True
        if first:
            with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
                print(f"\n{self.line}", file=sys.stderr, flush=True)

    def end_now(self) -> None:
        self.report()
        os._exit(self.status)

    def on_signal(self, signum, frame) -> None:
        if self.signalled_at is not None:
            if time.monotonic() - self.signalled_at < DUPLICATE_SECONDS:
                return
            self.end_now()
        self.signalled_at, self.status = time.monotonic(), 128 + signum
        self.start_watchdog(self.grace_seconds)
        raise KeyboardInterrupt

    def start_watchdog(self, seconds: float) -> None:
        watchdog = threading.Timer(seconds, self.on_grace_over)
        watchdog.daemon = True
        watchdog.start()

    def on_grace_over(self) -> None:
        waited = time.monotonic() - self.signalled_at
        if _finishing and waited < self.grace_seconds + FINISH_SECONDS:
            self.start_watchdog(0.2)
        else:
            self.end_now()


@contextlib.contextmanager
def ending_interrupts(line: str, grace_seconds: float = GRACE_SECONDS) -> Iterator[None]:
    """Within the block, Ctrl-C prints ``line`` on stderr and exits with status 130; SIGTERM
    (``kill``, ``timeout``, ``docker stop``) does the same with status 143, SIGHUP (a closed
    terminal) with 129. All raise ``KeyboardInterrupt`` first, so the code interrupted can keep
    its work (the population loop saves its last whole epoch).

    Where SIGINT is ignored (a job started in the background with ``nohup ... &``), it stays
    ignored, and so does SIGHUP under ``nohup``; SIGTERM and SIGHUP are handled only where they
    have their default action. Must be entered from the main thread.
    """
    defaults = {
        signal.SIGINT: signal.default_int_handler,
        signal.SIGTERM: signal.SIG_DFL,
        signal.SIGHUP: signal.SIG_DFL,
    }
    handled = [
        number for number, default in defaults.items() if signal.getsignal(number) == default
    ]
    if not handled:
        yield
        return
    state = _Interrupted(line, grace_seconds)
    previous_hook = sys.unraisablehook

    def on_unraisable(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            state.end_now()
        previous_hook(unraisable)

    for number in handled:
        signal.signal(number, state.on_signal)
    sys.unraisablehook = on_unraisable
    ending = False
    try:
        yield
    except KeyboardInterrupt:
        ending = True
        state.report()
        for number in handled:  # while exiting
            signal.signal(number, lambda signum, frame: state.end_now())
        sys.exit(state.status)
    finally:
        if not ending:  # however else the block ended (an error line's SystemExit too)
            for number in handled:
                signal.signal(number, defaults[number])
        sys.unraisablehook = previous_hook


@contextlib.contextmanager
def quiet_when_reader_leaves() -> Iterator[None]:
    """End the command with status 141 and no traceback if its standard output's reader is gone.

    Standard output is flushed on the way out when the block ends normally or by ``sys.exit``
    (as ``--help`` and ``--version`` end), so that a write Python buffered fails here and not in the
    interpreter's own flush at exit, where it could not be caught. A ``BrokenPipeError`` from
    another pipe (a socket, a child process) is not this case and goes on as raised.
    """
    try:
        yield
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        _end_quietly()
    except SystemExit:
        _flush_or_end_quietly()
        raise
    else:
        _flush_or_end_quietly()
    # Any other exception (Ctrl-C's KeyboardInterrupt, an error) goes on as raised, unflushed:
    # its own line matters more than output a reader may no longer want.


def _flush_or_end_quietly() -> None:
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        _end_quietly()


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (poll reports an error)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or stdout is not a file
        return False


def _end_quietly() -> None:
    # Python flushes stdout once more at exit; pointing it at /dev/null keeps that quiet.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(BROKEN_PIPE_STATUS)
