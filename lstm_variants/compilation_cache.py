"""JAX's persistent compilation cache, so that a machine compiles each training program once.

A population's setup is mostly compilation. Each new hidden size compiles the initialisers' small
programs, about 0.9 s per size on the CPU, and each hidden-size bucket compiles its epoch program. A
Greff study draws sizes from 181 integers and runs many jobs, each in its own process, and a
resumed study compiles everything again. JAX can keep compiled programs on disk
(``jax_compilation_cache_dir``), keyed by the program, the compile options, the backend and the
jaxlib version, so a cached program is the same executable and gives the same numbers.

This module only points JAX's cache at a directory and sets three of its settings:

- The two thresholds go to zero. JAX's own defaults cache only programs that take more than 1 s
  to compile, which skips the many small initialiser programs, the bulk of a population's setup.
- The size is bounded by ``MAX_CACHE_BYTES``. With a bound, JAX evicts the least recently used
  programs, and it reads and writes under a file lock (``filelock``). A study's jobs running
  side by side (the joblib launcher) then never read a program another job is still writing.

One thing JAX does not do is survive a process killed while it writes. It writes a program's file
in place, then the program's access-time file beside it. A run killed in between (SIGKILL,
the out-of-memory killer, a preempted cluster job) leaves a program file that may be truncated and
has no access-time file. From then on JAX warns at every read of that program ("Error reading
persistent compilation cache entry") and never replaces it, and its eviction fails on the missing
access-time file. So, under the same lock, ``enable_compilation_cache`` first removes every
program file that has no access-time file; those programs are compiled and saved again. (A
directory that JAX filled without a size bound has no access-time files at all: its programs are
removed once and saved again with them.)

A disk that fills up during a run fails every later save, and JAX warns, in two lines, for each
program. Those warnings are one line here, and the job's last line counts the programs compiled
but not saved.

Measured on the 2-core CPU with a 32-trial Greff population on JSB Chorales, one epoch (then
with the default Adam, which ignored the sampled momentum; the command now needs ``optimizer=sgd``):

    lstm-variants dataset=jsb_chorales search=greff optimizer=sgd search.trials=32 train=greff \
        train.max_epochs=1

- Cold, the run compiled 746 programs and took 144 s.
- Warm, it loaded all of them and took 34 to 39 s (two runs, with and without the file lock).
- The 32 records were identical, and the cache held 9.5 MB.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import filelock

from lstm_variants.errors import ConfigError

OFF_VALUES = ("", "null", "none", "off", "false")
MAX_CACHE_BYTES = 2 * 1024**3
# JAX's monitoring events for a program read from the cache and one compiled and written to it.
LOADED_EVENT = "/jax/compilation_cache/cache_hits"
SAVED_EVENT = "/jax/compilation_cache/cache_misses"
# The file names of JAX's LRU cache (jax/_src/lru_cache.py): KEY-cache holds the program and
# KEY-atime its last use, written after it. tests/test_compilation_cache.py checks this layout.
PROGRAM_SUFFIX = "-cache"
ACCESS_TIME_SUFFIX = "-atime"
LOCK_NAME = ".lockfile"
LOCK_TIMEOUT_SECONDS = 10
# The starts of JAX's warnings for a program it could not read from the cache or save to it (a
# full disk, a cache folder removed while the run goes on); each names the program and the error.
READ_ERROR = "Error reading persistent compilation cache entry"
WRITE_ERROR = "Error writing persistent compilation cache entry"


class _CacheUse:
    """Counts this process's programs loaded from the cache, compiled and saved to it, and
    compiled but not saved (JAX counts a save it tried, then warns if it failed)."""

    def __init__(self):
        self.loaded = 0
        self.saved = 0
        self.unsaved = 0
        self.listening = False
        self.path: Path | None = None
        self.problem_reported = False

    def __call__(self, event: str, **_) -> None:
        self.loaded += event == LOADED_EVENT
        self.saved += event == SAVED_EVENT

    def errors_in_one_line(self, show):
        """``warnings.showwarning`` that shows every warning as ``show`` does, but JAX's cache
        read and write errors: those are counted, and the first is one line. A disk that fills
        up fails every later save, and JAX would warn (two lines) for each program."""

        def showwarning(message, category, filename, lineno, file=None, line=None):
            text = str(message)
            if not text.startswith((READ_ERROR, WRITE_ERROR)):
                return show(message, category, filename, lineno, file, line)
            self.unsaved += text.startswith(WRITE_ERROR)
            if not self.problem_reported:
                self.problem_reported = True
                print(
                    f"compilation cache: warning: cannot use {self.path} "
                    f"({text.partition(': ')[2]}); the run goes on, compiling what it cannot load",
                    file=sys.stderr,
                )

        return showwarning


_use = _CacheUse()


def enable_compilation_cache(directory: str | os.PathLike | None) -> Path | None:
    """Let JAX keep compiled programs in ``directory`` (created if missing); None or '' turns it off.

    Call before the first compilation: JAX reads the setting when it first compiles.

    Returns:
      The cache directory, or None when the cache is off.

    Raises:
      ConfigError: the directory cannot be created or is not writable.
    """
    if directory is None or str(directory).strip().lower() in OFF_VALUES:
        return None
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():  # mkdir's own word for it is "File exists"
        raise ConfigError(
            f"compilation_cache: '{path}' is a file, not a directory; choose a directory or "
            "turn the cache off with compilation_cache=null"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"compilation_cache: cannot create '{path}' ({error.strerror or error}); "
            "choose a writable directory or turn the cache off with compilation_cache=null"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(
            f"compilation_cache: '{path}' is not writable; choose a writable directory or turn "
            "the cache off with compilation_cache=null"
        )
    removed = remove_torn_programs(path)
    if removed:
        print(
            f"compilation cache: removed {removed} program(s) left half-written by an interrupted "
            f"run ({path}); they are compiled again",
            file=sys.stderr,
        )
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)
    _use.path = path
    if not _use.listening:
        jax.monitoring.register_event_listener(_use)
        # Each failed save must reach the count, not only the first with its text.
        warnings.filterwarnings("always", message=WRITE_ERROR)
        warnings.showwarning = _use.errors_in_one_line(warnings.showwarning)
        _use.listening = True
    return path


def remove_torn_programs(path: Path) -> int:
    """Delete the program files of ``path`` that have no access-time file; return how many.

    Holds the cache's own lock, so a program another process is writing right now is left
    alone. Where the lock is busy for longer than JAX itself waits, nothing is removed.
    """
    try:
        with filelock.FileLock(path / LOCK_NAME, timeout=LOCK_TIMEOUT_SECONDS):
            torn = [
                program
                for program in path.glob(f"*{PROGRAM_SUFFIX}")
                if not program.with_name(
                    program.name.removesuffix(PROGRAM_SUFFIX) + ACCESS_TIME_SUFFIX
                ).exists()
            ]
            for program in torn:
                program.unlink(missing_ok=True)
    except filelock.Timeout:
        return 0
    return len(torn)


@dataclass(frozen=True)
class JobCache:
    """The cache a command's job uses, and the process's counts when the job started (a
    multirun's jobs can share one process, so each reports only its own programs)."""

    path: Path
    loaded_before: int
    saved_before: int
    unsaved_before: int

    def describe(self) -> str:
        """One line for the end of the job: how many programs it loaded and compiled, and how
        many of those it could not save (a full disk)."""
        loaded, saved, unsaved = cache_use()
        failed = unsaved - self.unsaved_before
        return (
            f"compilation cache: {loaded - self.loaded_before} programs loaded, "
            f"{saved - self.saved_before} compiled and saved"
            + (f", {failed} compiled but not saved" if failed else "")
            + f" ({self.path})"
        )


def enable_for_command(directory, overrides: Sequence[str], prog: str) -> JobCache | None:
    """``enable_compilation_cache`` for a command line: a place the user chose must work.

    A directory set with ``compilation_cache=...`` or ``LSTM_VARIANTS_COMPILATION_CACHE`` that
    cannot be used raises ``ConfigError`` (one error line, no training). The default place under
    the user's home may be read-only (a container run as another user); there the cache is only
    an optimisation, so one warning line is printed and the run goes on without it.
    """
    chosen = "LSTM_VARIANTS_COMPILATION_CACHE" in os.environ or any(
        override.lstrip("+~").partition("=")[0] == "compilation_cache" for override in overrides
    )
    try:
        path = enable_compilation_cache(directory)
    except ConfigError as error:
        if chosen:
            raise
        print(f"{prog}: warning: {error}; going on without it", file=sys.stderr)
        return None
    return None if path is None else JobCache(path, *cache_use())


def cache_use() -> tuple[int, int, int]:
    """(programs loaded from the cache, programs compiled and saved to it, programs compiled
    but not saved) in this process."""
    return _use.loaded, _use.saved - _use.unsaved, _use.unsaved
