"""A population killed mid-training resumes from its checkpoint with the same numbers."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import python_path, users_compiler
from test_population import ADDING, assert_same_run, model_for
from test_train import TINY, config

from lstm_variants import native_lstm, population
from lstm_variants.data import load_dataset
from lstm_variants.initializers import make_initializer
from lstm_variants.optimizers import make_member_optimizer
from lstm_variants.population import Member, train_population
from lstm_variants.population_checkpoint import CheckpointSettings, ChunkCheckpoint, ChunkState
from lstm_variants.train import TrainSettings

SETTINGS = TrainSettings(max_epochs=6, patience=2, batch_size=8, eval_batch_size=16)
# Two hidden-size buckets (10 alone, 4 and 5 padded to 5), one member that diverges and one that
# learns nothing and so stops early: every way a member's loop can end is in the saved state.
MEMBERS = [
    Member(hidden_size=10, seed=0, learning_rate=0.02),
    Member(hidden_size=4, seed=1, learning_rate=0.02),
    Member(hidden_size=5, seed=2, learning_rate=1e6, momentum=0.9),
    Member(hidden_size=5, seed=3, learning_rate=1e-12),
]


@pytest.fixture(scope="module")
def adding():
    return load_dataset("adding", **ADDING)


# One optimizer object for every run here: the compiled population programs are reused by it.
OPTIMIZER = make_member_optimizer({"name": "sgd", "nesterov": True})


def train(data, members, **kwargs):
    return train_population(
        model_for(data), OPTIMIZER, data, SETTINGS, members, progress=False, log=None, **kwargs
    )


class Killed(BaseException):
    """Stands for a kill right after a checkpoint was written (nothing catches it)."""


def kill_after_saves(monkeypatch, count):
    """Make the ``count``-th save (after it is on disk) end the process, as a kill would."""
    save, saves = ChunkCheckpoint.save, []

    def save_then_kill(self, state):
        save(self, state)
        saves.append(state.epoch)
        if len(saves) == count:
            raise Killed

    monkeypatch.setattr(ChunkCheckpoint, "save", save_then_kill)
    return saves


@pytest.mark.slow
def test_a_killed_population_resumes_with_the_same_curves_and_parameters(
    adding, tmp_path, monkeypatch
):
    uninterrupted = train(adding, MEMBERS)
    assert {r.metrics["stopped"] for r in uninterrupted} == {"max_epochs", "diverged", "early"}
    checkpoint = CheckpointSettings(tmp_path, every_seconds=0)
    with monkeypatch.context() as patch:
        saves = kill_after_saves(patch, 8)
        with pytest.raises(Killed):
            train(adding, MEMBERS, checkpoint=checkpoint)
    # Bucket 10 after epochs 1 to 5 and when finished (after 6); bucket 5 after epochs 1 and 2,
    # when one member has diverged and one will stop early after the resume.
    assert saves == [1, 2, 3, 4, 5, 6, 1, 2]
    resumed = train(adding, MEMBERS, checkpoint=checkpoint)
    assert [r.population["resumed_after_epoch"] for r in resumed] == [6, 2, 2, 2]
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert_same_run(a, b, rtol=0)  # bitwise: the epochs' randomness does not depend on when
        assert a.metrics == b.metrics


# Ctrl-C, and submitit's requeue of a pre-empted SLURM job (sys.exit in its signal handler).
@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_saves_the_last_whole_epoch_even_when_no_save_is_due(
    adding, tmp_path, monkeypatch, interrupt
):
    import lstm_variants.population as population

    members = [MEMBERS[0], Member(hidden_size=9, seed=5, learning_rate=0.02)]  # one bucket
    uninterrupted = train(adding, members)
    train_epochs, validations = population.train_epochs, []

    def interrupted_in_epoch_4(state, epoch_fn, evaluate_valid, *args):
        def validate(*arrays):  # after epoch 4's update, before its curves: mid-epoch
            validations.append(1)
            if len(validations) == 4:
                raise interrupt
            return evaluate_valid(*arrays)

        return train_epochs(state, epoch_fn, validate, *args)

    checkpoint = CheckpointSettings(tmp_path, every_seconds=3600)
    with monkeypatch.context() as patch:
        patch.setattr(population, "train_epochs", interrupted_in_epoch_4)
        with pytest.raises(interrupt):
            train(adding, members, checkpoint=checkpoint)
    resumed = train(adding, members, checkpoint=checkpoint)
    assert [r.population["resumed_after_epoch"] for r in resumed] == [3, 3]
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert_same_run(a, b, rtol=0)


def test_ctrl_c_during_a_save_lets_the_save_finish_then_stops(adding, tmp_path, monkeypatch):
    import lstm_variants.population_checkpoint as population_checkpoint

    file_digests = population_checkpoint._file_digests

    def interrupted_while_saving(directory):
        os.kill(os.getpid(), signal.SIGINT)
        return file_digests(directory)

    monkeypatch.setattr(population_checkpoint, "_file_digests", interrupted_while_saving)
    checkpoint = CheckpointSettings(tmp_path, every_seconds=0)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(KeyboardInterrupt):
            train(adding, MEMBERS[:1], checkpoint=checkpoint)
    finally:
        signal.signal(signal.SIGINT, handler)
    monkeypatch.undo()
    (files,) = tmp_path.glob("*/files.json")  # the save the interrupt landed in was finished
    assert json.loads(files.read_text())["step"] == 1
    (resumed,) = train(adding, MEMBERS[:1], checkpoint=checkpoint)
    assert resumed.population["resumed_after_epoch"] == 1
    (alone,) = train(adding, MEMBERS[:1])
    assert_same_run(resumed, alone, rtol=0)


def test_a_saved_chunk_state_restores_as_saved_seconds_included(tmp_path):
    # The seconds spent before a kill are part of the state: a resumed record's wall and epoch
    # seconds add them to its own, so a restore that dropped them would undercount its cost.
    arrays = {
        "params": {"w": jnp.arange(3.0)},
        "opt_state": {"momentum": jnp.full(3, 0.5)},
        "best_params": {"w": jnp.arange(3.0) - 1.0},
        "best_valid": np.array([0.25, np.inf]),
        "best_epoch": np.array([2, 0]),
        "active": np.array([True, False]),
    }
    curves = [[{"epoch": e, "train_loss": 1.0 / e, "valid_loss": 0.5 / e} for e in (1, 2, 3)]] * 2
    state = ChunkState(3, False, arrays, ["max_epochs", "diverged"], curves, seconds=1234.5)
    with ChunkCheckpoint(CheckpointSettings(tmp_path, every_seconds=0), ["chunk"]) as saver:
        saver.save(state)
    template = {**arrays, "best_valid": np.zeros(2), "active": np.zeros(2, bool)}
    with ChunkCheckpoint(CheckpointSettings(tmp_path), ["chunk"]) as reader:
        restored = reader.restore(template)
    assert restored.seconds == 1234.5
    assert (restored.epoch, restored.finished) == (3, False)
    assert restored.stopped == state.stopped and restored.curves == curves
    jax.tree.map(np.testing.assert_array_equal, restored.arrays, arrays)


def test_a_resumed_chunk_counts_the_seconds_spent_before_the_kill(adding, tmp_path, monkeypatch):
    # Planted: every save says 1000 s more were spent than were, so the resumed run's epoch and
    # wall seconds must hold at least those 1000 s (its own epochs take well under a second).
    save = ChunkCheckpoint.save

    def save_with_1000_more_seconds(self, state):
        save(self, dataclasses.replace(state, seconds=state.seconds + 1000.0))

    checkpoint = CheckpointSettings(tmp_path, every_seconds=0)
    with monkeypatch.context() as patch:
        patch.setattr(ChunkCheckpoint, "save", save_with_1000_more_seconds)
        kill_after_saves(patch, 2)
        with pytest.raises(Killed):
            train(adding, MEMBERS[:1], checkpoint=checkpoint)
    (resumed,) = train(adding, MEMBERS[:1], checkpoint=checkpoint)
    assert resumed.population["resumed_after_epoch"] == 2
    assert 1000.0 < resumed.population["epochs_seconds"] < resumed.wall_seconds


def test_a_checkpoint_is_only_read_by_its_own_chunk(adding, tmp_path, monkeypatch):
    checkpoint = CheckpointSettings(tmp_path, every_seconds=0)
    members = MEMBERS[:1]
    with monkeypatch.context() as patch:
        kill_after_saves(patch, 2)
        with pytest.raises(Killed):
            train(adding, members, checkpoint=checkpoint)
    other_seed = [Member(**{**members[0].__dict__, "seed": 7})]
    (result,) = train(adding, other_seed, checkpoint=checkpoint)
    assert "resumed_after_epoch" not in result.population
    (alone,) = train(adding, other_seed)
    assert_same_run(result, alone, rtol=0)


def test_a_checkpoint_is_not_read_by_another_cell_or_optimizer(adding, tmp_path, monkeypatch):
    # lstm and lstm_b have the same shapes, as do Nesterov and heavy-ball SGD's states, and models
    # that differ in an initialiser's kind or scale: a caller reusing one folder for either
    # resumed the other's run as its own (initialisers were all named 'init' or 'init_as').
    heavy_ball = make_member_optimizer({"name": "sgd", "nesterov": False})

    def with_init(name, scale):
        return model_for(adding, "lstm", recurrent_kernel_init=make_initializer(name, scale))

    lstm = with_init("orthogonal", 1.0)
    for name, other in (
        ("cell", {"model": model_for(adding, "lstm_b")}),
        ("optimizer", {"optimizer": heavy_ball}),
        ("init scale", {"model": with_init("orthogonal", 2.0)}),
        ("init kind", {"model": with_init("glorot_uniform", 1.0)}),
    ):
        checkpoint = CheckpointSettings(tmp_path / name, every_seconds=0)
        with monkeypatch.context() as patch:
            kill_after_saves(patch, 2)
            with pytest.raises(Killed):
                train_population(lstm, OPTIMIZER, adding, SETTINGS,
                                 MEMBERS[:1], progress=False, log=None, checkpoint=checkpoint)  # fmt: skip
        run = {"model": lstm, "optimizer": OPTIMIZER} | other
        (result,) = train_population(run["model"], run["optimizer"], adding, SETTINGS, MEMBERS[:1],
                                     progress=False, log=None, checkpoint=checkpoint)  # fmt: skip
        assert "resumed_after_epoch" not in result.population


def refused_checkpoint_line(adding, tmp_path, monkeypatch, while_saving=None, after_kill=None):
    """Save three epochs (``while_saving`` patches in force), kill, ``after_kill``, rerun: the
    checkpoint must be refused in one line and the chunk trained afresh. Returns the line."""
    lines = []
    checkpoint = CheckpointSettings(tmp_path, every_seconds=0, log=lines.append)
    with monkeypatch.context() as patch:
        if while_saving:
            while_saving(patch)
        kill_after_saves(patch, 3)
        with pytest.raises(Killed):
            train(adding, MEMBERS[:1], checkpoint=checkpoint)
    if after_kill:
        after_kill()
    (result,) = train(adding, MEMBERS[:1], checkpoint=checkpoint)
    assert "resumed_after_epoch" not in result.population
    (alone,) = train(adding, MEMBERS[:1])
    assert_same_run(result, alone, rtol=0)
    assert len(lines) == 1
    return lines[0]


def test_an_unreadable_checkpoint_is_one_line_and_the_chunk_trains_afresh(
    adding, tmp_path, monkeypatch
):
    def damage_the_arrays():
        for path in tmp_path.rglob("*"):
            if path.is_file() and "ocdbt" in str(path):
                path.write_bytes(b"not a checkpoint")

    line = refused_checkpoint_line(adding, tmp_path, monkeypatch, after_kill=damage_the_arrays)
    assert "could not be read" in line and "from the start" in line
    assert "differ from when they were saved" in line  # found before orbax reads a byte


def test_a_checkpoint_saved_by_other_code_is_one_line_and_the_chunk_trains_afresh(
    adding, tmp_path, monkeypatch
):
    import lstm_variants.population_checkpoint as population_checkpoint

    def other_code(patch):
        patch.setattr(population_checkpoint, "code_identity", lambda: {"jax": "0.0.1"})

    line = refused_checkpoint_line(adding, tmp_path, monkeypatch, while_saving=other_code)
    assert "saved by other code" in line and "'0.0.1'" in line and "from the start" in line


def test_a_checkpoint_saved_on_the_other_time_loop_is_one_line_and_the_chunk_trains_afresh(
    adding, tmp_path, monkeypatch
):
    """Saved where the kernel could not be built (a requeued job's node without a compiler),
    resumed where it runs: the record would name the kernel for epochs that XLA ran."""

    def no_kernel(patch):
        patch.setattr(native_lstm, "used_by", lambda *args: "unavailable: no C++ compiler")

    line = refused_checkpoint_line(adding, tmp_path, monkeypatch, while_saving=no_kernel)
    assert "was saved while its LSTM layers ran on xla, now on native kernel" in line


def test_a_checkpoint_saved_on_other_data_is_one_line_and_the_chunk_trains_afresh(
    adding, tmp_path, monkeypatch
):
    # The same config over an edited file: resumed, one record would mix epochs of both datasets.
    def other_data(patch):
        patch.setattr(type(adding), "fingerprint", lambda self: "e" * 64)

    line = refused_checkpoint_line(adding, tmp_path, monkeypatch, while_saving=other_data)
    assert "saved while training on other data (data_sha256 eeeeeeeeeeee, now " in line
    assert line.endswith("training this chunk from the start")


def test_a_failing_save_is_one_line_and_training_goes_on(adding, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk)
    lines = []
    checkpoint = CheckpointSettings(tmp_path, every_seconds=0, log=lines.append)
    (result,) = train(adding, MEMBERS[:1], checkpoint=checkpoint)
    assert len(lines) == SETTINGS.max_epochs  # tried after every epoch, one line each time
    assert all("could not be saved" in line and "No space left" in line for line in lines)
    (alone,) = train(adding, MEMBERS[:1])
    assert_same_run(result, alone, rtol=0)


# Saves that fail part-way, as when the disk fills up after the free-space check. A file-size
# limit makes orbax's writes fail the same way; it applies to files only, so the output is piped.
FAILING_WRITES = """
import resource
import signal
import sys
from pathlib import Path

import jax

from test_population_checkpoint import ADDING, MEMBERS, train

from lstm_variants import native_lstm, population
from lstm_variants.data import load_dataset
from lstm_variants.initializers import make_initializer
from lstm_variants.population_checkpoint import CheckpointSettings

jax.config.update("jax_enable_compilation_cache", False)  # its writes would meet the limit too
data = load_dataset("adding", **ADDING)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))
saves = Path(sys.argv[1])
train(data, MEMBERS[:1], checkpoint=CheckpointSettings(saves, every_seconds=0, log=print))
"""


def test_saves_failing_part_way_are_one_line_each(tmp_path):
    """orbax's threads, asyncio, Python's warnings and tensorstore's callbacks printed 2,954
    lines for these six failed saves."""
    # The child finds the native kernel built: compiling it there would meet the file-size limit.
    native_lstm.available()
    out = subprocess.run(
        [sys.executable, "-c", FAILING_WRITES, str(tmp_path / "saves")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")},
            "PYTHONPATH": python_path(Path(__file__).parent),
            "JAX_PLATFORMS": "cpu",  # a GPU's compiler writes temporary files too
        },
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr == ""
    failed = out.stdout.splitlines()
    assert len(failed) == SETTINGS.max_epochs
    assert all("could not be saved (ValueError: " in line and "File too large" in line
               for line in failed)  # fmt: skip


def test_a_manager_that_fails_to_close_is_not_used_again(tmp_path):
    # Kept, every later save went to it, and the chunk's exit raised after all its epochs.
    from lstm_variants.population_checkpoint import ChunkCheckpoint

    class Broken:
        def close(self):
            raise OSError(5, "Input/output error")

    checkpoint = ChunkCheckpoint(CheckpointSettings(tmp_path), ["chunk"])
    checkpoint._manager = Broken()
    with pytest.raises(OSError):
        checkpoint.close()
    assert checkpoint._manager is None
    checkpoint.close()  # nothing left to close


def test_a_save_that_would_not_fit_on_the_disk_is_not_begun(adding, tmp_path, monkeypatch):
    """On a full disk orbax's writer threads fail with about 1,400 lines of tracebacks that no
    caller can catch (measured on a 300 KiB tmpfs): the save is not begun, and one line says
    how much it needs and how much is free."""
    from lstm_variants import population_checkpoint

    def not_begun(*args, **kwargs):
        raise AssertionError("orbax was asked to save")

    monkeypatch.setattr(ocp.CheckpointManager, "save", not_begun)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        population_checkpoint.shutil, "disk_usage", lambda path: usage._replace(free=300 * 1024)
    )
    lines = []
    checkpoint = CheckpointSettings(tmp_path / "new", every_seconds=0, log=lines.append)
    (result,) = train(adding, MEMBERS[:1], checkpoint=checkpoint)
    assert len(lines) == SETTINGS.max_epochs
    assert all(
        "could not be saved (no space left on its disk: a save needs about 1." in line
        and "MiB, 0.3 MiB is free); training goes on" in line
        for line in lines
    )
    (alone,) = train(adding, MEMBERS[:1])
    assert_same_run(result, alone, rtol=0)
    # With the room it needs, it saves: the bar is the arrays' bytes and a margin, not more.
    needed = population_checkpoint.SPACE_MARGIN_BYTES + 200 * 1024
    monkeypatch.setattr(
        population_checkpoint.shutil, "disk_usage", lambda path: usage._replace(free=needed)
    )
    arrays = {"w": np.zeros(200 * 1024 // 4, np.float32)}
    assert population_checkpoint.too_little_space(tmp_path / "new", arrays) is None
    arrays["b"] = np.zeros(1, np.float32)
    assert population_checkpoint.too_little_space(tmp_path / "new", arrays) is not None


def test_nothing_is_saved_before_it_is_due_but_a_finished_chunk_that_others_follow(
    adding, tmp_path
):
    checkpoint = CheckpointSettings(tmp_path / "one", every_seconds=3600)
    train(adding, MEMBERS[:1], checkpoint=checkpoint)
    assert not (tmp_path / "one").exists()
    # Two hidden-size buckets: the first chunk's end is saved, the last one's is not.
    checkpoint = CheckpointSettings(tmp_path / "two", every_seconds=3600)
    train(adding, MEMBERS[:2], checkpoint=checkpoint)
    assert len(list((tmp_path / "two").glob("*/orbax"))) == 1


def run_cli(*args, cache=None, log=None):
    """The command in a subprocess; its output goes to ``log`` (a pipe could fill up and stall it).
    It uses the compilation cache ``cache``, or the test session's (conftest.py) when None, and
    compiles as a user's run does (``users_compiler``): these runs are compared bit for bit."""
    output = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "lstm_variants.cli", *args],
        stdout=output,
        stderr=subprocess.STDOUT if log else subprocess.PIPE,
        text=True,
        env=users_compiler(
            dict(os.environ)
            | ({} if cache is None else {"LSTM_VARIANTS_COMPILATION_CACHE": str(cache)})
        ),
    )


def wait_for_a_saved_step(directory, step, process, timeout=240):
    """Wait until a chunk's checkpoint under ``directory`` has reached orbax step ``step``."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        steps = [int(p.name) for p in directory.glob("checkpoints/*/*/orbax/*") if p.name.isdigit()]
        if steps and max(steps) >= step:
            return
        time.sleep(0.05)
    pytest.fail(f"no checkpoint step {step} under {directory} (exit status {process.poll()})")


def only_record(directory):
    (record,) = (json.loads(p.read_text()) for p in directory.glob("records/*.json"))
    return record


ARGS = [*TINY, "train.max_epochs=12", "train.patience=20", "checkpoint_minutes=0", "cpu_devices=1"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted run, and the compilation cache it filled for the runs compared with it."""
    directory = tmp_path_factory.mktemp("reference")
    out = run_cli(*ARGS, f"hydra.run.dir={directory}", cache=directory / "xla")
    assert out.wait(timeout=300) == 0, out.stderr.read()
    assert not (directory / "checkpoints").exists()  # removed once the record was written
    return only_record(directory), directory / "xla"


def assert_same_record(got, expected):
    assert got["curve"] == expected["curve"] and got["metrics"] == expected["metrics"]


@pytest.mark.slow
def test_the_command_killed_mid_training_resumes_and_writes_the_same_record(
    tmp_path, reference_run
):
    expected, cache = reference_run
    process = run_cli(*ARGS, f"hydra.run.dir={tmp_path}", cache=cache, log=tmp_path / "1.log")
    wait_for_a_saved_step(tmp_path, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not list(tmp_path.glob("records/*.json"))

    resumed = run_cli(*ARGS, f"hydra.run.dir={tmp_path}", cache=cache, log=tmp_path / "2.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "2.log").read_text()[-2000:]
    assert "resumed after epoch" in (tmp_path / "2.log").read_text()
    assert not (tmp_path / "checkpoints").exists()
    got = only_record(tmp_path)
    assert got["trial_id"] == expected["trial_id"]
    assert_same_record(got, expected)
    assert got["population"]["resumed_after_epoch"] >= 3


def processes_running(fragment):
    """Ids of the processes whose command line holds ``fragment`` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and fragment in command:
            yield int(entry.name)


@pytest.mark.slow
def test_a_preempted_slurm_style_job_is_requeued_and_resumes_to_the_same_record(
    tmp_path, reference_run
):
    # submitit's local executor handles pre-emption as on SLURM: SIGUSR2 to the task, which
    # requeues itself (sys.exit); the executor then starts the task again.
    expected, cache = reference_run
    sweep = tmp_path / "sweep"
    overrides = ["-m", "launcher=submitit_local", *ARGS, "sweep_report=false"]
    process = run_cli(*overrides, f"hydra.sweep.dir={sweep}", cache=cache, log=tmp_path / "log")
    wait_for_a_saved_step(sweep, 3, process)
    (task,) = processes_running(f"submitit.core._submit {sweep}")
    os.kill(task, signal.SIGUSR2)
    assert process.wait(timeout=300) == 0, (tmp_path / "log").read_text()[-2000:]
    task_log = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))
    assert "this job is preempted" in task_log and "Requeued job" in task_log
    assert "resumed after epoch" in task_log
    got = only_record(sweep)
    assert_same_record(got, expected)
    assert got["population"]["resumed_after_epoch"] >= 3


def test_checkpoint_minutes_does_not_change_the_trial_id():
    from lstm_variants.experiment import trial_identity

    assert trial_identity(config("checkpoint_minutes=0")) == trial_identity(config())
    assert trial_identity(config("checkpoint_minutes=null")) == trial_identity(config())


def test_a_bad_checkpoint_minutes_is_one_error_line(tmp_path, app):
    out = app(*TINY, "checkpoint_minutes=-1", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "lstm-variants: error: checkpoint_minutes must be a number >= 0 (or null: off), got -1; "
        "set it with checkpoint_minutes=VALUE"
    ]


def test_no_checkpoint_directory_is_left_behind_by_a_finished_run(tmp_path):
    from lstm_variants.experiment import run_trial

    _, record = run_trial(config("checkpoint_minutes=0"), Path(tmp_path), progress=False)
    assert record is not None and not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_the_checkpoint_of_a_regrouped_population_goes_once_all_its_trials_are_recorded(
    tmp_path, monkeypatch, capsys
):
    from lstm_variants.experiment import record_path, remove_stale_checkpoints, run_trials

    pair = [config("checkpoint_minutes=0", f"seed={seed}") for seed in (0, 1)]
    with monkeypatch.context() as patch:
        kill_after_saves(patch, 1)
        with pytest.raises(Killed):
            run_trials(pair, tmp_path, progress=False)
    (listing,) = tmp_path.glob("checkpoints/*/trials.json")
    ids = sorted(record_path(cfg, tmp_path).stem for cfg in pair)
    assert sorted(json.loads(listing.read_text())["trials"]) == ids

    # Rerun one trial per population: the pair's checkpoint is never read again, but it goes only
    # when both of its trials are recorded.
    alone = [cfg | {"population_size": 1} for cfg in pair]
    run_trials(alone[:1], tmp_path, progress=False)
    assert listing.exists()
    run_trials(alone, tmp_path, progress=False)
    assert not (tmp_path / "checkpoints").exists()
    assert "the checkpoint of a population regrouped since" in capsys.readouterr().err

    # A population retrained with overwrite=true is in flight while its trials' records, written
    # before its first save, exist: another job's cleanup must leave its checkpoint alone.
    in_flight = tmp_path / "checkpoints" / "in_flight" / "trials.json"
    in_flight.parent.mkdir(parents=True)
    in_flight.write_text(json.dumps({"trials": ids, "first_saved": time.time()}))
    assert remove_stale_checkpoints(tmp_path) == [] and in_flight.exists()


@pytest.mark.slow
def test_a_kill_between_a_populations_records_resumes_it_and_writes_the_rest(tmp_path, monkeypatch):
    """The rest of the records come from the saved population, not from a regrouped one."""
    from lstm_variants import experiment

    trio = [config("checkpoint_minutes=0", f"seed={seed}") for seed in (0, 1, 2)]
    uninterrupted = experiment.run_trials(trio, tmp_path / "reference", progress=False)
    write, written = experiment.write_json_atomic, []

    def write_then_kill(path, record):
        write(path, record)
        written.append(path)
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(experiment, "write_json_atomic", write_then_kill)
        with pytest.raises(Killed):
            experiment.run_trials(trio, tmp_path / "killed", progress=False)
    assert len(written) == 1 and list((tmp_path / "killed").glob("checkpoints/*/trials.json"))

    resumed = experiment.run_trials(trio, tmp_path / "killed", progress=False)
    assert [record is None for _, record in resumed] == [True, False, False]
    for (_, record), (_, expected) in zip(resumed[1:], uninterrupted[1:], strict=True):
        assert record["population"]["size"] == 3  # the saved population, whole
        assert record["population"]["resumed_after_epoch"] == 3  # finished: only evaluated
        assert_same_record(record, expected)
        assert record["params_file"] == expected["params_file"]  # the same parameters, bitwise
    assert not (tmp_path / "killed" / "checkpoints").exists()


def tiny_state(epoch, seconds=0.0):
    """A chunk state of one member with ``epoch`` epochs done, its parameters marked by it."""
    arrays = {
        "params": {"w": jnp.full(3, float(epoch))},
        "opt_state": {"momentum": jnp.zeros(3)},
        "best_params": {"w": jnp.full(3, float(epoch))},
        "best_valid": np.array([1.0 / epoch]),
        "best_epoch": np.array([epoch]),
        "active": np.array([True]),
    }
    curve = [
        {"epoch": e, "train_loss": 1.0 / e, "valid_loss": 1.0 / e} for e in range(1, epoch + 1)
    ]
    return ChunkState(epoch, False, arrays, ["max_epochs"], [curve], seconds=seconds)


def restored_epoch(directory, log=None):
    """The epoch of what a fresh process restores from ``directory`` (None: nothing)."""
    settings = CheckpointSettings(directory, log=log or (lambda line: None))
    with ChunkCheckpoint(settings, ["chunk"]) as reader:
        state = reader.restore(tiny_state(1).arrays)
    return None if state is None else state.epoch


def test_a_resumed_chunk_saves_after_its_restored_step_and_a_second_kill_resumes_from_it(tmp_path):
    # Killed after epoch 3 (orbax steps 1..3); resumed, it trains epoch 4 and saves; killed again,
    # the next run must resume after epoch 4, not after 3: a resumed chunk numbers its saves on
    # from the restored step.
    settings = CheckpointSettings(tmp_path, every_seconds=0)
    with ChunkCheckpoint(settings, ["chunk"]) as first:
        for epoch in (1, 2, 3):
            first.save(tiny_state(epoch))
    with ChunkCheckpoint(settings, ["chunk"]) as resumed:
        assert resumed.restore(tiny_state(1).arrays).epoch == 3
        assert not resumed.save_if_newer(tiny_state(3))  # nothing new since the restore
        resumed.save(tiny_state(4))
    assert restored_epoch(tmp_path) == 4


def test_a_refused_checkpoint_is_removed_so_the_fresh_saves_are_what_a_rerun_reads(
    tmp_path, monkeypatch
):
    import lstm_variants.population_checkpoint as population_checkpoint

    settings = CheckpointSettings(tmp_path, every_seconds=0)
    with monkeypatch.context() as patch:
        patch.setattr(population_checkpoint, "code_identity", lambda: {"jax": "0.0.1"})
        with ChunkCheckpoint(settings, ["chunk"]) as old:
            for epoch in (1, 2, 3):
                old.save(tiny_state(epoch))
    lines = []
    assert restored_epoch(tmp_path, lines.append) is None  # refused: trained from the start
    assert len(lines) == 1 and "saved by other code" in lines[0]
    # Removed at once, not left (gigabytes, for a GPU population) until the chunk's next save.
    assert not list(tmp_path.glob("*/orbax"))
    with ChunkCheckpoint(settings, ["chunk"]) as fresh:
        assert fresh.restore(tiny_state(1).arrays) is None
        fresh.save(tiny_state(1))
    assert restored_epoch(tmp_path) == 1


def test_a_checkpoint_saved_under_uncommitted_changes_is_not_resumed_by_clean_code(
    tmp_path, monkeypatch
):
    """Its epochs ran under code that the commit does not name: a record resumed from it would
    say the code was clean. Other code with another state tree is refused for that, in one line
    (orbax, reading the arrays first, printed its whole tree diff)."""
    import lstm_variants.population_checkpoint as population_checkpoint

    real = population_checkpoint.environment
    settings = CheckpointSettings(tmp_path, every_seconds=0)
    with monkeypatch.context() as patch:
        patch.setattr(population_checkpoint, "environment", lambda: real() | {"git_dirty": True})
        with ChunkCheckpoint(settings, ["chunk"]) as dirty:
            dirty.save(tiny_state(2))
            other_tree = tiny_state(2)
            other_tree.arrays["opt_state"] = {"nu": jnp.zeros(3), "mu": jnp.zeros(3)}
    monkeypatch.setattr(population_checkpoint, "environment", lambda: real() | {"git_dirty": False})
    lines = []
    assert restored_epoch(tmp_path, lines.append) is None
    assert len(lines) == 1 and "saved by other code" in lines[0] and "'git_dirty': True" in lines[0]
    with monkeypatch.context() as patch:
        patch.setattr(population_checkpoint, "environment", lambda: real() | {"git_dirty": True})
        with ChunkCheckpoint(settings, ["chunk"]) as dirty:
            dirty.save(other_tree)
    lines = []
    assert restored_epoch(tmp_path, lines.append) is None
    assert len(lines) == 1 and "saved by other code" in lines[0] and "\n" not in lines[0]


@pytest.mark.parametrize(
    "progress, reason",
    [({"epoch": 3}, "KeyError: 'finished'"), ([1, 2], "its progress is not a JSON object")],
)
def test_a_checkpoint_whose_progress_is_damaged_is_one_line(tmp_path, progress, reason):
    settings = CheckpointSettings(tmp_path, every_seconds=0)
    with ChunkCheckpoint(settings, ["chunk"]) as first:
        first.save(tiny_state(3))
    (saved,) = tmp_path.glob("*/orbax/*/progress/metadata")  # orbax's JSON item
    if isinstance(progress, dict):  # a progress without the key that says if it finished
        written = json.loads(saved.read_text())
        progress = {key: value for key, value in (written | progress).items() if key != "finished"}
    saved.write_text(json.dumps(progress))
    (listing,) = tmp_path.glob("*/files.json")
    listing.unlink()  # as a kill between orbax's rename and the list leaves it: not checked
    lines = []
    assert restored_epoch(tmp_path, lines.append) is None
    assert len(lines) == 1 and reason in lines[0] and "from the start" in lines[0]


def test_a_finished_chunk_is_saved_when_chunks_follow_and_not_retrained_after_a_kill(
    adding, tmp_path, monkeypatch
):
    """Records are written once the population's last chunk is done: a kill in the second chunk
    must not cost the first one's training, however recently it saved (every 10 minutes)."""
    members = MEMBERS[:2]  # hidden sizes 10 and 4: two buckets, two chunks
    checkpoint = CheckpointSettings(tmp_path, every_seconds=600)
    started = []
    real_train_chunk = population._train_chunk

    def kill_in_the_second_chunk(*args, **kwargs):
        started.append(1)
        if len(started) == 2:
            raise Killed
        return real_train_chunk(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(population, "_train_chunk", kill_in_the_second_chunk)
        with pytest.raises(Killed):
            train(adding, members, checkpoint=checkpoint)
    results = train(adding, members, checkpoint=checkpoint)
    first, second = (result.population.get("resumed_after_epoch") for result in results)
    assert first == results[0].metrics["epochs_run"] and second is None
    for result, alone in zip(results, train(adding, members), strict=True):
        assert_same_run(result, alone, rtol=0)


def test_the_population_listing_keeps_the_time_of_its_first_save(tmp_path):
    # remove_stale_checkpoints compares records with the first save: a listing rewritten by every
    # save would make records written since the first save look older than the checkpoint.
    settings = CheckpointSettings(tmp_path, every_seconds=0, trials=("a", "b"))
    with ChunkCheckpoint(settings, ["chunk"]) as saver:
        saver.save(tiny_state(1))
        listing = json.loads((tmp_path / "trials.json").read_text())
        time.sleep(0.01)
        saver.save(tiny_state(2))
    assert listing["trials"] == ["a", "b"]
    assert json.loads((tmp_path / "trials.json").read_text()) == listing
