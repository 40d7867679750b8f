"""Test-wide JAX settings (Equinox style): rank-promotion errors catch broadcasting mistakes in gate
code; two simulated CPU devices exercise multi-device code; programs compiled quickly, and one
persistent compilation cache for the CLI runs of the session. Strict dtype promotion is a fixture
(`strict_dtypes`) for our own numerics only, because optax's Adam mixes int counters and floats."""

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys

import jax
import pytest

# Nothing is written to the user's cache: this process compiles without the on-disk cache, and the
# CLI runs it starts use the session's (`session_compilation_cache`).
os.environ.setdefault("LSTM_VARIANTS_COMPILATION_CACHE", "")

# LLVM's optimisation of the machine code is off, in this process and the CLI runs it starts: it
# is about a third of compile time, and tiny tests spend most of their time compiling. XLA's own
# passes over the program still run: the tests run the programs users run, as less tuned machine
# code that may round differently in the last bit. The tests whose point is that two runs agree
# bit for bit run theirs as users do (`users_compiler`).
# XLA reads the flags when its backend starts, at the first computation, after this.
FAST_COMPILE = "--xla_backend_optimization_level=0"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()


def users_compiler(environment: dict[str, str]) -> dict[str, str]:
    """``environment`` for a CLI run that compiles as a user's does (without ``FAST_COMPILE``):
    a killed and resumed run must equal an uninterrupted one with the machine code users run."""
    flags = environment.get("XLA_FLAGS", "").replace(FAST_COMPILE, "").strip()
    return {**environment, "XLA_FLAGS": flags}


def python_path(*directories: os.PathLike | str) -> str:
    """``PYTHONPATH`` for a child process: ``directories`` first, then this process's entries,
    which a source tree run without installing (its dependencies on ``PYTHONPATH``) needs."""
    inherited = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return os.pathsep.join([*map(str, directories), *inherited])


jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_num_cpu_devices", 2)
# Float32 matrix products in float32, as the CPU always computes them: on a recent NVIDIA GPU JAX's
# default is TF32, whose rounding (about 1e-4 relative) is above the tolerances of the tests that
# compare the fast path with the reference. The CLI runs the tests start read it from the
# environment. On the CPU it changes no bit.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
jax.config.update("jax_default_matmul_precision", os.environ["JAX_DEFAULT_MATMUL_PRECISION"])


def pytest_collection_modifyitems(config, items):
    """The tests marked ``slow`` (20 s or more in CI) run first on every worker, shared out among
    them. pytest-xdist's worksteal hands each worker a contiguous share of this list and later
    steals from the end of a busy worker's share: a slow test left for last there keeps one core
    busy while the other idles. So each share starts with its part of the slow tests, a file's
    slow tests on one worker (some share a module-scoped fixture that trains a model)."""
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    by_file: dict[str, list] = {}
    for item in items:
        if item.get_closest_marker("slow"):
            by_file.setdefault(item.nodeid.split("::")[0], []).append(item)
    own_slow = [[] for _ in range(workers)]
    for group in sorted(by_file.values(), key=len, reverse=True):
        min(own_slow, key=len).extend(group)
    fast = [item for item in items if not item.get_closest_marker("slow")]
    ordered, remaining, next_fast = [], len(items), 0
    for worker in range(workers):
        share = remaining // (workers - worker)  # what worksteal first hands this worker
        remaining -= share
        count = max(share - len(own_slow[worker]), 0)
        ordered += own_slow[worker] + fast[next_fast : next_fast + count]
        next_fast += count
    items[:] = ordered + fast[next_fast:]


@pytest.fixture(scope="session", autouse=True)
def session_compilation_cache(tmp_path_factory):
    """One compilation cache for the CLI runs the session's tests start, in any worker.

    Much of the suite's time is XLA compiling the same programs again in new processes: the killed
    and the resumed run of a crash test, the tiny configs many CLI tests share. A cached program
    is the same executable, so no number changes (tests/test_compilation_cache.py checks that, in
    caches of its own). The directory is new each session, so every program is compiled at least
    once. The test processes themselves keep the cache off: they compile mostly programs no other
    process needs, and writing each one to disk costs more than it saves.
    """
    if os.environ["LSTM_VARIANTS_COMPILATION_CACHE"]:  # the caller chose one: keep it
        return
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    os.environ["LSTM_VARIANTS_COMPILATION_CACHE"] = str(shared / "xla")


@pytest.fixture(autouse=True)
def compiles_stay_off_disk():
    """Fail a test that turns the on-disk cache on in this process (an app's task run in-process
    reads the session's cache from the environment): every later test of the worker would then
    write each of its programs to disk, which made some of them ten times slower."""
    yield
    leaked = jax.config.jax_compilation_cache_dir
    if leaked:
        jax.config.update("jax_compilation_cache_dir", None)
        pytest.fail(f"this test left the compilation cache on in the test process ({leaked}); "
                    "give the app compilation_cache=null")  # fmt: skip


@pytest.fixture
def app(monkeypatch):
    """``app(*args, cwd=None, main=None)`` runs one of our Hydra apps (``lstm_variants.cli.main``
    unless ``main`` is given) in this process, as its console script would run with ``args``, and
    returns a ``subprocess.CompletedProcess`` with its exit status and what it printed.

    A run in a new process spends about 5 of its 9 s starting Python, importing JAX and compiling
    small programs (initialisers, data staging) this process has compiled already; here the same
    run takes about 4 s. The tests whose point is the process itself (a signal, the console
    script, the environment read at start, the on-disk compilation cache) start one instead.

    Left out here: the app's ``configure_devices``, since this process's JAX started with the two
    CPU devices above, and the on-disk compilation cache (``compiles_stay_off_disk``). Hydra's
    global state, the loggers, the signal handlers, the working directory and the environment are
    restored.
    """
    from hydra.core.global_hydra import GlobalHydra

    from lstm_variants import cli

    monkeypatch.setattr(cli, "configure_devices", lambda cfg: None)
    # Hydra configures logging afresh, which closes every handler made so far; absl's (imported
    # with orbax) would close the stream it was made with, pytest's capture of stderr, unless
    # that stream is the real one.
    from absl import logging as absl_logging

    monkeypatch.setattr(absl_logging.get_absl_handler().python_handler, "stream", sys.__stderr__)

    def run(*args: str, cwd=None, main=None):
        monkeypatch.setattr(sys, "argv", ["lstm-variants", *args])
        monkeypatch.setenv("LSTM_VARIANTS_COMPILATION_CACHE", "")
        root = logging.getLogger()
        handlers, level, directory = root.handlers[:], root.level, os.getcwd()
        signals = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        levels = {name: logging.getLogger(name).level for name in ("jax", "absl", "matplotlib")}
        stdout, stderr, status = io.StringIO(), io.StringIO(), 0
        try:
            if cwd is not None:
                os.chdir(cwd)
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                (main or cli.main)()
        except SystemExit as end:
            status = end.code if isinstance(end.code, int) else int(end.code is not None)
        finally:
            os.chdir(directory)
            GlobalHydra.instance().clear()
            root.handlers[:] = handlers
            root.setLevel(level)
            for number, handler in signals.items():
                signal.signal(number, handler)
            for name, was in levels.items():
                logging.getLogger(name).setLevel(was)
        return subprocess.CompletedProcess(sys.argv, status, stdout.getvalue(), stderr.getvalue())

    return run


@pytest.fixture
def strict_dtypes():
    with jax.numpy_dtype_promotion("strict"):
        yield
