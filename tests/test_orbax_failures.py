"""A failed save's error in one line; orbax's own reports of it dropped, and nothing else."""

import asyncio
import logging
import sys
import threading
import time
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
    assert not logging.getLogger("absl").filters


def test_orbax_tasks_collected_after_the_save_stay_dropped_and_nothing_else(hooks):
    """A failed write's task may be collected after failure_of returned (a busy machine)."""

    def failing_save():
        raise ValueError("OUT_OF_RANGE: Error writing x")

    failure_of(failing_save, lambda: None)
    asyncio_logger = logging.getLogger("asyncio")
    orbax_task = (
        "Task exception was never retrieved\nfuture: <Task finished coro=<write_fragment() "
        "defined at /x/site-packages/orbax/checkpoint/_src/serialization/serialization.py:188>>"
    )
    users_task = (
        "Task exception was never retrieved\nfuture: <Task finished coro=<mine() at a.py:3>>"
    )
    assert not asyncio_logger.filter(record("asyncio", orbax_task))
    assert asyncio_logger.filter(record("asyncio", users_task))
    assert asyncio_logger.filter(record("asyncio", "Executing <Task ...> took 0.2 seconds"))
    failure_of(failing_save, lambda: None)
    assert len(asyncio_logger.filters) == 1  # installed once


def test_only_native_callbacks_into_a_closed_loop_are_kept_from_the_unraisable_hook(hooks):
    loop = asyncio.new_event_loop()
    loop.close()
    try:
        loop.call_soon_threadsafe(print)
    except RuntimeError as error:
        closed = error
    # tensorstore's thread calls it from native code: no Python frame above call_soon_threadsafe.
    native = types.SimpleNamespace(exc_value=closed, exc_traceback=closed.__traceback__.tb_next)
    from_python = types.SimpleNamespace(exc_value=closed, exc_traceback=closed.__traceback__)
    other = types.SimpleNamespace(exc_value=RuntimeError("something else"), exc_traceback=None)
    failure_of(lambda: None, close=lambda: None)
    installed = sys.unraisablehook
    failure_of(lambda: None, close=lambda: None)
    assert sys.unraisablehook is installed  # once: a second save does not wrap it again
    for unraisable in (native, from_python, other):
        sys.unraisablehook(unraisable)
    assert hooks == [closed, other.exc_value]


def test_the_reports_stay_dropped_until_the_threads_the_failed_save_started_have_ended(hooks):
    # On a busy machine orbax's writer threads go on failing, and logging, after the save raised.
    absl = logging.getLogger("absl")
    passed, started = [], threading.Event()

    def writer():
        started.wait()
        time.sleep(0.2)
        passed.append(absl.filter(record("absl", "_SignalingThread.run() raised an exception")))

    def failing_save():
        threading.Thread(target=writer).start()
        started.set()
        raise ValueError("OUT_OF_RANGE: Error writing x")

    assert (
        failure_of(failing_save, close=lambda: None) == "ValueError: OUT_OF_RANGE: Error writing x"
    )
    assert passed == [False]


def test_a_thread_still_starting_as_the_save_fails_is_no_error(hooks, monkeypatch):
    # threading.enumerate lists a thread between start() and its first instruction, which
    # cannot be joined yet (a CI run met one).
    starting, listed = [], threading.enumerate
    monkeypatch.setattr(threading, "enumerate", lambda: [*listed(), *starting])

    def failing_save():
        starting.append(threading.Thread(target=lambda: None))  # listed from now on
        raise OSError(28, "No space left on device")

    assert failure_of(failing_save, close=lambda: None).startswith("OSError: [Errno 28]")


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
