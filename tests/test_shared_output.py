"""Two processes given the same trials and output folder: one trains, the other waits for it."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from test_train import config

from lstm_variants import experiment
from lstm_variants.experiment import record_path, run_trials
from lstm_variants.params_file import params_path
from lstm_variants.population_lock import lock_path, population_lock

# A process holding the population lock of the trial ids in argv[3:] for folder argv[1]. Once it
# holds it, it says so in argv[2]; then it copies the record files listed on its stdin (one
# "source destination" pair a line) into place, and ends when stdin closes.
HOLDER = textwrap.dedent(
    """
    import shutil, sys
    from pathlib import Path
    from lstm_variants.population_lock import population_lock
    with population_lock(Path(sys.argv[1]), sys.argv[3:]):
        Path(sys.argv[2]).write_text("held")
        for line in sys.stdin:
            source, destination = line.split()
            Path(destination).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)  # with the source's time: older than the waiter
    """
)


def hold(folder, trials, tmp_path):
    """Start a process holding the lock of ``trials`` in ``folder``; return it once it holds it."""
    held = tmp_path / f"held-{time.monotonic_ns()}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), str(held), *trials],
        stdin=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not held.exists():
        assert holder.poll() is None and time.monotonic() < deadline, "the holder did not start"
        time.sleep(0.05)
    return holder


def release_later(holder, copies, seconds=1.5):
    """Let ``holder`` copy ``copies`` and end ``seconds`` from now, while this process waits."""
    import threading

    def finish():
        time.sleep(seconds)
        holder.communicate("".join(f"{source} {destination}\n" for source, destination in copies))

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory):
    """Two trials trained as one population, and their (record path, record) pairs."""
    pair = [config(f"seed={seed}") for seed in (0, 1)]
    return pair, run_trials(pair, tmp_path_factory.mktemp("reference"), progress=False)


@pytest.mark.parametrize("recorded_by_other", [2, 1])
def test_a_population_held_by_another_process_is_waited_for_and_what_it_recorded_is_kept(
    tmp_path, capsys, recorded_by_other, trained_pair
):
    """The other process records both trials: nothing trains here. It records one (it was
    killed between its records): the population trains here, and only the other record is
    written; the first stays byte for byte as the other process wrote it."""
    pair, reference = trained_pair
    folder = tmp_path / "shared"
    trials = [record_path(cfg, folder).stem for cfg in pair]
    copies = [(path, folder / "records" / path.name) for path, _ in reference[:recorded_by_other]]
    for source, destination in list(copies):  # each record comes with its parameter file
        copies.append((params_path(source), params_path(destination)))
    for source, _ in copies:  # written "before" the waiter began, by the other host's clock
        older = source.stat().st_mtime - 60
        os.utime(source, (older, older))
    assert all(source.exists() for source, _ in copies)

    capsys.readouterr()
    finisher = release_later(hold(folder, trials, tmp_path), copies)
    results = run_trials(pair, folder, progress=False)
    finisher.join()

    err = capsys.readouterr().err
    assert "waiting for another process training the same 2 trial(s)" in err
    assert f"(pid {os.getpid()} on " not in err and str(lock_path(folder, trials)) in err
    assert [record is None for _, record in results] == [True, recorded_by_other == 2]
    for (path, _), (source, _) in zip(results[:recorded_by_other], reference, strict=False):
        assert path.read_bytes() == source.read_bytes()
    if recorded_by_other == 2:
        assert "skipped 2 trial(s): another process" in err
    else:  # trained here, in the same population of two as the reference
        retrained, expected = results[1][1], reference[1][1]
        assert retrained["curve"] == expected["curve"]
        assert retrained["metrics"] == expected["metrics"]


def test_a_population_alone_in_its_folder_does_not_wait(tmp_path, capsys, monkeypatch):
    """Another population's lock (another job of the same sweep) is not waited for."""
    cfg = config()
    other = hold(tmp_path, ["another-trial"], tmp_path)
    try:
        ((_, record),) = run_trials([cfg], tmp_path, progress=False)
    finally:
        other.communicate("")
    assert record is not None and "waiting" not in capsys.readouterr().err


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    """The kernel drops a killed process's lock: the next process does not wait (a marker-file
    lock would be left behind and waited on for ever)."""
    holder = hold(tmp_path, ["a", "b"], tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lines = []
    note = lock_path(tmp_path, ["a", "b"]).with_suffix(".holder")
    with population_lock(tmp_path, ["b", "a"], log=lines.append) as waited:
        assert not waited and lines == []
        assert note.read_text().startswith(f"pid {os.getpid()} on ")
    # The note goes with the lock: a process that waits next never names a holder long gone.
    assert not note.exists()
    holder = hold(tmp_path, ["a", "b"], tmp_path)  # and the lock is still a lock
    try:
        finisher = release_later(holder, [], seconds=0.5)
        with population_lock(tmp_path, ["a", "b"], log=lines.append) as waited:
            assert waited and len(lines) == 1 and f"(pid {holder.pid} on " in lines[0]
    finally:
        finisher.join()
    assert not note.exists()


def test_records_written_here_are_not_taken_for_another_process(tmp_path, monkeypatch):
    """A rerun with overwrite=true retrains a recorded trial; the record it finds at the lock is
    the file it found when it began, so it is not counted as recorded by another process, even
    with a file clock far ahead of this host's."""
    import os

    cfg = config("overwrite=true")
    first_path, first = run_trials([cfg], tmp_path, progress=False)[0]
    ahead = first_path.stat().st_mtime + 3600
    os.utime(first_path, (ahead, ahead))
    seen = []
    recorded_elsewhere = experiment._recorded_elsewhere
    monkeypatch.setattr(
        experiment,
        "_recorded_elsewhere",
        lambda *a: seen.append(recorded_elsewhere(*a)) or seen[-1],
    )
    _, second = run_trials([cfg], tmp_path, progress=False)[0]
    assert seen == [set()] and second is not None
    assert second["started_unix"] > first["started_unix"] and first_path.exists()


def test_a_file_system_without_flock_trains_unlocked_with_one_warning(tmp_path, monkeypatch):
    """filelock would fall back to a marker file, which a killed holder leaves behind for every
    later run to wait on for ever."""
    import errno

    import filelock

    from lstm_variants import population_lock as module

    class NoFlock(filelock.FileLock):
        def acquire(self, *args, **kwargs):
            raise OSError(errno.ENOSYS, "Function not implemented")

    made = []
    monkeypatch.setattr(
        module.filelock, "FileLock", lambda *a, **kw: made.append(kw) or NoFlock(*a)
    )
    lines = []
    with population_lock(tmp_path, ["a"], log=lines.append) as waited:
        assert not waited
    assert made == [{"fallback_to_soft": False}]
    assert len(lines) == 1 and lines[0].startswith("lstm-variants: warning: cannot lock ")
    assert "trained unlocked" in lines[0]


def test_the_cli_says_which_records_another_process_wrote_under_overwrite(
    app, tmp_path, monkeypatch
):
    """A record skipped under overwrite=true was written by another process while this one
    waited; "already done (... overwrite=true retrains)" said the opposite."""
    import lstm_variants.experiment

    path = tmp_path / "records" / "0123456789abcdef.json"
    monkeypatch.setattr(lstm_variants.experiment, "run_trials", lambda *a, **kw: [(path, None)])
    tiny = ["train.max_epochs=1", "model.hidden_size=4", "progress=false"]
    out = app(*tiny, "overwrite=true", f"hydra.run.dir={tmp_path}")
    assert f"recorded by another process while this one waited: {path}" in out.stdout
    out = app(*tiny, f"hydra.run.dir={tmp_path}")
    assert f"already done (record exists; overwrite=true retrains): {path}" in out.stdout
