"""A population killed mid-training resumes from its checkpoint with the same numbers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orbax.checkpoint as ocp
import pytest
from test_population import ADDING, assert_same_run, model_for
from test_train import TINY, config

from lstm_variants.data import load_dataset
from lstm_variants.optimizers import make_member_optimizer
from lstm_variants.population import Member, train_population
from lstm_variants.population_checkpoint import CheckpointSettings, ChunkCheckpoint
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


def test_an_unreadable_checkpoint_is_one_line_and_the_chunk_trains_afresh(
    adding, tmp_path, monkeypatch
):
    lines = []
    checkpoint = CheckpointSettings(tmp_path, every_seconds=0, log=lines.append)
    with monkeypatch.context() as patch:
        kill_after_saves(patch, 3)
        with pytest.raises(Killed):
            train(adding, MEMBERS[:1], checkpoint=checkpoint)
    for path in tmp_path.rglob("*"):
        if path.is_file() and "ocdbt" in str(path):
            path.write_bytes(b"not a checkpoint")
    (result,) = train(adding, MEMBERS[:1], checkpoint=checkpoint)
    assert len(lines) == 1 and "could not be read" in lines[0] and "from the start" in lines[0]
    assert "differ from when they were saved" in lines[0]  # found before orbax reads a byte
    assert "resumed_after_epoch" not in result.population
    (alone,) = train(adding, MEMBERS[:1])
    assert_same_run(result, alone, rtol=0)


def test_a_checkpoint_saved_by_other_code_is_one_line_and_the_chunk_trains_afresh(
    adding, tmp_path, monkeypatch
):
    import lstm_variants.population_checkpoint as population_checkpoint

    lines = []
    checkpoint = CheckpointSettings(tmp_path, every_seconds=0, log=lines.append)
    with monkeypatch.context() as patch:
        patch.setattr(population_checkpoint, "code_identity", lambda: {"jax": "0.0.1"})
        kill_after_saves(patch, 3)
        with pytest.raises(Killed):
            train(adding, MEMBERS[:1], checkpoint=checkpoint)
    (result,) = train(adding, MEMBERS[:1], checkpoint=checkpoint)
    assert len(lines) == 1 and "saved by other code" in lines[0] and "'0.0.1'" in lines[0]
    assert "resumed_after_epoch" not in result.population
    (alone,) = train(adding, MEMBERS[:1])
    assert_same_run(result, alone, rtol=0)


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


def test_nothing_is_saved_before_it_is_due(adding, tmp_path):
    checkpoint = CheckpointSettings(tmp_path / "checkpoints", every_seconds=3600)
    train(adding, MEMBERS[:2], checkpoint=checkpoint)
    assert not (tmp_path / "checkpoints").exists()


def run_cli(*args, cache=""):
    return subprocess.Popen(
        [sys.executable, "-m", "lstm_variants.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ) | {"LSTM_VARIANTS_COMPILATION_CACHE": str(cache)},
    )


def test_the_command_killed_mid_training_resumes_and_writes_the_same_record(tmp_path):
    args = [*TINY, "train.max_epochs=20", "train.patience=20", "checkpoint_minutes=0"]
    cache = tmp_path / "xla"  # shared, as by default: the second and third runs load, not compile
    reference = tmp_path / "reference"
    out = run_cli(*args, f"hydra.run.dir={reference}", cache=cache)
    assert out.wait(timeout=300) == 0, out.stderr.read()
    assert not (reference / "checkpoints").exists()  # removed once the record was written

    killed = tmp_path / "killed"
    process = run_cli(*args, f"hydra.run.dir={killed}", cache=cache)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        steps = [p for p in killed.glob("checkpoints/*/*/orbax/*") if p.name.isdigit()]
        if steps and int(max(steps, key=lambda p: int(p.name)).name) >= 3:
            break
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.fail(f"the run ended before it was killed:\n{process.stderr.read()[-2000:]}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not list(killed.glob("records/*.json"))

    resumed = run_cli(*args, f"hydra.run.dir={killed}", cache=cache)
    assert resumed.wait(timeout=300) == 0
    stderr = resumed.stderr.read()
    assert "resumed after epoch" in stderr, stderr
    assert not (killed / "checkpoints").exists()
    (expected,) = (json.loads(p.read_text()) for p in reference.glob("records/*.json"))
    (got,) = (json.loads(p.read_text()) for p in killed.glob("records/*.json"))
    assert got["trial_id"] == expected["trial_id"]
    assert got["curve"] == expected["curve"] and got["metrics"] == expected["metrics"]
    assert got["population"]["resumed_after_epoch"] >= 2


def test_checkpoint_minutes_does_not_change_the_trial_id():
    from lstm_variants.experiment import trial_identity

    assert trial_identity(config("checkpoint_minutes=0")) == trial_identity(config())
    assert trial_identity(config("checkpoint_minutes=null")) == trial_identity(config())


def test_a_bad_checkpoint_minutes_is_one_error_line(tmp_path):
    out = run_cli(*TINY, "checkpoint_minutes=-1", f"hydra.run.dir={tmp_path}")
    assert out.wait(timeout=120) == 2
    lines = out.stderr.read().strip().splitlines()
    assert lines == [
        "lstm-variants: error: checkpoint_minutes must be a number >= 0 (or null: off), got -1; "
        "set it with checkpoint_minutes=VALUE"
    ]


def test_no_checkpoint_directory_is_left_behind_by_a_finished_run(tmp_path):
    from lstm_variants.experiment import run_trial

    _, record = run_trial(config("checkpoint_minutes=0"), Path(tmp_path), progress=False)
    assert record is not None and not (tmp_path / "checkpoints").exists()
