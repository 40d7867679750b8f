"""A failed save's error in one line; orbax's own reports of it dropped, and nothing else."""

import logging
import sys
import types

import pytest

from lstm_variants.orbax_failures import LOGGERS, failure_of, remove_temporaries


def record(name, message):
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), None)


@pytest.fixture
def hooks(monkeypatch):
    """What reaches ``sys.unraisablehook``; the loggers' filters restored afterwards."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(unraisable.exc_value))
    for name in LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    return seen


def test_a_failed_save_is_its_error_in_one_line_and_its_reports_are_dropped_meanwhile(hooks):
    passed = []

    def failing_save():
        for name in LOGGERS:  # orbax's threads and asyncio's futures, as the save fails
            passed.append(logging.getLogger(name).filter(record(name, "a writer thread failed")))
        raise ValueError("RESOURCE_EXHAUSTED: Error writing x")

    def close():  # orbax's threads may still be failing until its manager is closed
        passed.extend(logging.getLogger(name).filter(record(name, "closing")) for name in LOGGERS)

    assert failure_of(failing_save, close) == "ValueError: RESOURCE_EXHAUSTED: Error writing x"
    assert passed == [False] * 4
    assert failure_of(lambda: None, close) is None
    assert len(passed) == 4  # a save that succeeds keeps its manager open
    # After the save, the loggers report again.
    assert all(logging.getLogger(name).filter(record(name, "later")) for name in LOGGERS)
    assert all(not logging.getLogger(name).filters for name in LOGGERS)


def test_only_closed_loop_callbacks_are_kept_from_the_unraisable_hook(hooks):
    failure_of(lambda: None, close=lambda: None)
    installed = sys.unraisablehook
    failure_of(lambda: None, close=lambda: None)
    assert sys.unraisablehook is installed  # once: a second save does not wrap it again

    def unraisable(error):
        return types.SimpleNamespace(exc_value=error, exc_type=type(error), exc_traceback=None)

    closed, other = RuntimeError("Event loop is closed"), RuntimeError("something else")
    sys.unraisablehook(unraisable(closed))
    sys.unraisablehook(unraisable(other))
    assert hooks == [other]


def test_a_failed_saves_files_go_and_the_completed_save_stays(tmp_path):
    for folder in (
        "1",
        "2.orbax-checkpoint-tmp/arrays.orbax-checkpoint-tmp",
        "3.orbax-checkpoint-tmp-17",
    ):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "file").write_bytes(b"x")
    remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]
    assert (tmp_path / "1" / "file").exists()
