"""Checkpoints of a population's training state, so a killed job resumes mid-training.

A run record is written when its population finishes; a population of long trials (hundreds of
members for 150 epochs on a GPU, or a CPU study's 32) can take half an hour or more, and a kill,
a SLURM pre-emption or a time limit would lose all of it. So every ``every_seconds`` the state of
the chunk in training is saved with orbax: the parameters, optimizer states and best parameters
of every member (arrays), and the epoch, learning curves and stopping state (JSON). The same
command, run again, restores it and goes on from the next epoch.

Resuming changes no number: an epoch's randomness comes from the member's data key and the epoch
(``jax.random.fold_in``), and the restored arrays are the saved bits, so a resumed chunk ends with
the same curves and parameters as one never interrupted (tested, bitwise on CPU).

A checkpoint belongs to one chunk: its directory name is a hash of the chunk's members, padded
hidden size and device layout, so a chunk only ever reads its own. orbax writes each save to a
temporary directory and renames it when complete, and removes the temporaries a kill leaves;
a checkpoint that cannot be read is reported in one line and the chunk trains from the start.

orbax does the writing and reading. Written here, because orbax leaves them to its callers: what
a chunk's state is and when it is saved; a sha256 list of each save's files, checked before
reading (orbax fails on damaged files with a storm of errors from its threads); the code
versions and the data (its fingerprint) a checkpoint may be resumed under; and holding back
signals while a save is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from lstm_variants.data.cache import sha256_of
from lstm_variants.interrupt import finishing_first
from lstm_variants.orbax_failures import failure_of, remove_temporaries
from lstm_variants.output_directory import free_bytes
from lstm_variants.records import environment, write_json_atomic

if TYPE_CHECKING:
    import orbax.checkpoint as ocp


@dataclasses.dataclass(frozen=True)
class CheckpointSettings:
    """Where a population's chunks keep their state, and how often they save it.

    Attributes:
      directory: one subdirectory per chunk goes here; removed by the caller once the
        population's records are written.
      every_seconds: a chunk saves after an epoch (and when it finishes) once at least this
        long has passed since its last save or its start; 0 saves after every epoch.
      log: where a resumed chunk, or a checkpoint that could not be read, is reported.
      trials: the population's trial ids, written to ``directory/trials.json`` with the first
        save, so that a later run can tell when every one of them has been recorded by another
        population (``experiment.remove_stale_checkpoints``).
    """

    directory: Path
    every_seconds: float = 600.0
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    trials: tuple[str, ...] = ()


# Beside orbax's directory: the sha256 of every file of the last step, checked before reading it.
FILES = "files.json"
# In the population's directory: its trial ids and when it was first saved.
TRIALS = "trials.json"
# The environment's entries a checkpoint must share with the code resuming it (not the host or the
# devices: a requeued SLURM job may land elsewhere). git_dirty too: epochs saved under uncommitted
# changes must not go into a record that says the code was clean (nor the other way round).
CODE_KEYS = ("jax", "jaxlib", "flax", "optax", "git_commit", "git_dirty")
# The state's arrays that live on the devices; the others are host-side numpy.
DEVICE_ARRAYS = ("params", "opt_state", "best_params")


@dataclasses.dataclass
class ChunkState:
    """What a chunk's epoch loop needs to go on: arrays (a pytree) and host-side bookkeeping.

    Attributes:
      epoch: the last epoch completed.
      finished: the epoch loop is over (every member stopped, or ``max_epochs``).
      arrays: ``params``, ``opt_state``, ``best_params``, and the per-member numpy arrays
        ``best_valid``, ``best_epoch`` and ``active``.
      stopped: each member's stopping reason so far.
      curves: each member's learning curve so far.
      seconds: spent in these epochs, over every process that trained them.
    """

    epoch: int
    finished: bool
    arrays: dict[str, Any]
    stopped: list[str]
    curves: list[list[dict[str, float]]]
    seconds: float = 0.0

    def copy(self) -> ChunkState:
        """A copy that later epochs leave alone (device arrays never change, so are shared)."""
        arrays = {
            name: np.copy(value) if isinstance(value, np.ndarray) else value
            for name, value in self.arrays.items()
        }
        return dataclasses.replace(
            self, arrays=arrays, stopped=list(self.stopped), curves=[list(c) for c in self.curves]
        )


class ChunkCheckpoint:
    """The checkpoint of one chunk: ``restore`` once, ``save_if_due`` after every epoch.

    A context manager: orbax's manager is opened at the first restore or save, kept open across
    saves, and closed on exit.
    """

    def __init__(
        self,
        settings: CheckpointSettings,
        identity: Sequence[Any],
        data_sha256: str = "",
        time_loop: str = "xla",
        always_save_finished: bool = False,
    ):
        self.data_sha256 = data_sha256
        self.time_loop = time_loop
        # Whether the finished state is saved even when no save is due (``save_finished``).
        self.always_save_finished = always_save_finished
        digest = hashlib.sha256(json.dumps(list(identity), default=repr).encode()).hexdigest()
        self.population_directory = Path(settings.directory).absolute()
        self.directory = self.population_directory / digest[:16]
        self.trials = settings.trials
        self.every_seconds = settings.every_seconds
        self.log = settings.log
        self.last_save = time.monotonic()
        self.saves = 0  # orbax steps number the saves, not the epochs: a finished chunk saves twice
        self.saved_epoch = 0
        self._manager: ocp.CheckpointManager | None = None

    def __enter__(self) -> ChunkCheckpoint:
        return self

    def __exit__(self, *exception) -> None:
        self.close()

    def close(self) -> None:
        if self._manager is not None:
            manager, self._manager = self._manager, None  # one that fails to close is not reused
            manager.close()

    def restore(self, template: dict[str, Any]) -> ChunkState | None:
        """The chunk's saved state (arrays shaped like ``template``), or None if there is none.

        The ``DEVICE_ARRAYS`` come back as uncommitted device arrays (placed like fresh ones),
        the others as writable numpy arrays.
        """
        if not (self.directory / "orbax").exists():
            return None
        import orbax.checkpoint as ocp  # here: importing it costs 0.4 s, and most runs never save

        try:
            with signals_deferred():
                manager = self._open()
                step = manager.latest_step()
                if step is None:
                    return None
                _check_files(self.directory, step)
                # The progress first: a checkpoint of other code or data is refused for that,
                # not for the arrays' tree that the other code may have shaped otherwise.
                progress = manager.restore(
                    step, args=ocp.args.Composite(progress=ocp.args.JsonRestore())
                )["progress"]
                refusal = self._not_resumable(progress)
                if refusal is not None:
                    return self._refuse(refusal)
                restore_args = jax.tree.map(
                    lambda _: ocp.RestoreArgs(restore_type=np.ndarray), template
                )
                arrays = manager.restore(
                    step,
                    args=ocp.args.Composite(
                        arrays=ocp.args.PyTreeRestore(item=template, restore_args=restore_args)
                    ),
                )["arrays"]
                state = ChunkState(
                    epoch=int(progress["epoch"]),
                    finished=bool(progress["finished"]),
                    arrays=arrays,
                    stopped=list(progress["stopped"]),
                    curves=[list(curve) for curve in progress["curves"]],
                    seconds=float(progress["seconds"]),
                )
        except Exception as error:  # any unreadable checkpoint: train afresh, never crash
            # One line: orbax's messages hold a whole tree diff, arrays included.
            first = (str(error).strip().splitlines() or [""])[0][:300]
            return self._refuse(f"could not be read ({type(error).__name__}: {first})")
        self.saves, self.saved_epoch = step, state.epoch
        for name in DEVICE_ARRAYS:
            arrays[name] = jax.device_put(arrays[name])
        for name in set(arrays) - set(DEVICE_ARRAYS):  # writable: the epoch loop updates them
            arrays[name] = np.array(arrays[name])
        return state

    def _not_resumable(self, progress: Any) -> str | None:
        """Why a checkpoint with this progress must not be resumed here, or None."""
        if not isinstance(progress, dict):
            return "could not be read (its progress is not a JSON object)"
        if progress.get("code") != code_identity():
            return f"was saved by other code ({progress.get('code')}, now {code_identity()})"
        if progress.get("data_sha256") != self.data_sha256:
            # The same config over an edited file (a text_file dataset, a data folder replaced):
            # resumed, its record would hold epochs trained on two datasets under one data_sha256.
            return (
                f"was saved while training on other data (data_sha256 "
                f"{str(progress.get('data_sha256'))[:12]}, now {self.data_sha256[:12]})"
            )
        if progress.get("time_loop") != self.time_loop:
            # Requeued onto a node without a compiler, say: the record would name the XLA path
            # for epochs the kernel ran (the two agree to rounding, not to the bit).
            return (
                f"was saved while its LSTM layers ran on {progress.get('time_loop')}, "
                f"now on {self.time_loop}"
            )
        return None

    def _refuse(self, why: str) -> None:
        """Say in one line why the checkpoint is not used, and remove it; the chunk starts over."""
        self.log(f"checkpoint {self.directory} {why}; training this chunk from the start")
        self.close()
        self.remove()

    def save_if_due(self, state: ChunkState) -> bool:
        """Save ``state`` if ``every_seconds`` have passed since the last save; True if saved.

        A save that fails (a full disk) is reported in one line and training goes on: the
        checkpoint only saves time, the records are what counts.
        """
        if time.monotonic() - self.last_save < self.every_seconds:
            return False
        return self.save_reporting_failure(state)

    def save_finished(self, state: ChunkState) -> bool:
        """Save the finished ``state``: always with ``always_save_finished`` (chunks of the
        population still to train, before whose end no record is written), else if due."""
        if self.always_save_finished:
            return self.save_reporting_failure(state)
        return self.save_if_due(state)

    def save_if_newer(self, state: ChunkState) -> bool:
        """Save ``state`` if it holds epochs the last save does not (Ctrl-C: keep them)."""
        return state.epoch > self.saved_epoch and self.save_reporting_failure(state)

    def save_reporting_failure(self, state: ChunkState) -> bool:
        """``save``, with a failure reported in one line instead of raised; True if saved. A save
        that would not fit on the disk is not begun (``too_little_space``); one that fails
        part-way is removed, and orbax's own reports of it are dropped (``orbax_failures``)."""
        why = too_little_space(self.directory, state.arrays)
        if why is None:
            # The disk may fill up while orbax writes.
            why = failure_of(lambda: self.save(state), close=self.close)
            if why is None:
                return True
            remove_temporaries(self.directory / "orbax")  # the space is the records' next
        self.last_save = time.monotonic()
        self.log(
            f"checkpoint {self.directory} could not be saved ({why}); training goes on and "
            f"tries again in {self.every_seconds:g} s"
        )
        return False

    def save(self, state: ChunkState) -> None:
        """Save ``state`` as the next step, replacing the previous one once written."""
        progress = {
            "epoch": state.epoch,
            "finished": state.finished,
            "stopped": state.stopped,
            "curves": state.curves,
            "seconds": state.seconds,
            "code": code_identity(),
            "data_sha256": self.data_sha256,
            "time_loop": self.time_loop,
        }
        import orbax.checkpoint as ocp

        with signals_deferred(), finishing_first():
            self._open().save(
                self.saves + 1,
                args=ocp.args.Composite(
                    arrays=ocp.args.PyTreeSave(state.arrays),
                    progress=ocp.args.JsonSave(progress),
                ),
                force=True,  # orbax's own save interval is not ours
            )
            self.saves, self.saved_epoch = self.saves + 1, state.epoch
            step_files = self.directory / "orbax" / str(self.saves)
            write_json_atomic(
                self.directory / FILES, {"step": self.saves, "sha256": _file_digests(step_files)}
            )
            listing = self.population_directory / TRIALS
            if self.trials and not listing.exists():
                write_json_atomic(
                    listing, {"trials": list(self.trials), "first_saved": time.time()}
                )
        self.last_save = time.monotonic()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _open(self) -> ocp.CheckpointManager:
        import orbax.checkpoint as ocp

        if self._manager is None:
            # Synchronous: the state must be on disk before the next epoch changes it, and a
            # kill right after a save must find it.
            options = ocp.CheckpointManagerOptions(
                max_to_keep=1,
                enable_async_checkpointing=False,
                cleanup_tmp_directories=True,  # a save cut short by a kill
            )
            self._manager = ocp.CheckpointManager(self.directory / "orbax", options=options)
        return self._manager


# Room for what a save writes beside the arrays: orbax's metadata, the progress JSON, the sha256 list.
SPACE_MARGIN_BYTES = 1 << 20


def too_little_space(directory: Path, arrays: dict[str, Any]) -> str | None:
    """Why a save of ``arrays`` into ``directory`` would not fit on its disk, or None.

    Checked before orbax begins: on a full disk its writer threads fail with a thousand lines of
    tracebacks (tensorstore's writes, asyncio's futures, the logging of both) that no caller
    can catch. A save needs the arrays' bytes beside the save it replaces, which is removed only
    once the new one is written.
    """
    needed = sum(leaf.nbytes for leaf in jax.tree.leaves(arrays)) + SPACE_MARGIN_BYTES
    free = free_bytes(directory)
    if free is None or free >= needed:  # unknown: orbax tries, and its failure is reported
        return None
    return (
        f"no space left on its disk: a save needs about {needed / 2**20:.1f} MiB, "
        f"{free / 2**20:.1f} MiB is free"
    )


def code_identity() -> dict[str, Any]:
    """The versions that decide the numbers: a chunk resumes only under the code that saved it,
    so that a record's environment is the one every one of its epochs ran under. The package's
    own version as well, for code that is not a git checkout."""
    from lstm_variants.version import PACKAGE, installed

    code = {key: value for key, value in environment().items() if key in CODE_KEYS}
    return code | {"lstm_variants": installed(PACKAGE)}


def _file_digests(directory: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``directory`` (streamed: a GPU population's
    state can be gigabytes)."""
    return {
        str(path.relative_to(directory)): sha256_of(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _check_files(directory: Path, step: int) -> None:
    """Raise if a file of ``step`` changed since it was saved.

    orbax renames a step into place only when it is complete, so a kill never leaves a torn one;
    this catches what happens to the files afterwards (a broken disk, a partial copy). orbax
    itself would fail on them too, but with a storm of errors from its reading threads. A kill
    between orbax's rename and our list leaves a list of the step before: the step is trusted.
    """
    listed = json.loads((directory / FILES).read_text()) if (directory / FILES).exists() else {}
    if listed.get("step") != step:
        return
    found = _file_digests(directory / "orbax" / str(step))
    saved = listed["sha256"]
    changed = [name for name in sorted(found | saved) if found.get(name) != saved.get(name)]
    if changed:
        raise ValueError(
            f"{len(changed)} file(s) differ from when they were saved, e.g. {changed[0]}"
        )


# Ctrl-C, termination, a closed terminal, and the signals schedulers send before pre-empting a
# job (SLURM, submitit).
DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}


@contextlib.contextmanager
def signals_deferred():
    """Hold the interrupting signals until the block is done, then deliver them, once each.

    Python runs a signal's handler in the middle of whatever the main thread is doing; inside
    orbax that leaves a save half written (a later save of the same step then fails) and orbax's
    threads reporting into a closed event loop. Held back, the handler runs right after the
    block, where the epoch loop saves nothing twice and stops cleanly. (Blocking the signals
    with ``pthread_sigmask`` would not do: the kernel hands a process's signal to any thread
    that does not block it, and JAX and orbax run many.) Signals set to be ignored stay ignored.
    """
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    caught: list[int] = []
    previous = {}
    for number in DEFERRED_SIGNALS:
        handler = signal.getsignal(number)
        if handler not in (signal.SIG_IGN, None):
            previous[number] = signal.signal(number, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)
