"""Ctrl-C: one line and exit status 130 even where Python would drop the interrupt (inside a
garbage-collection callback, as JAX's), where a library swallows it, and on a second Ctrl-C;
a SIGINT the process was started to ignore stays ignored; SIGTERM the same way, with status 143,
and SIGHUP with 129.
The command itself:
tests/test_train.py::test_ctrl_c_is_one_line_and_exit_status_130_and_no_record."""

import contextlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

LINE = "prog: interrupted; what to do"
PRELUDE = f"""
import gc, os, signal, time
from lstm_variants.interrupt import ending_interrupts
LINE = {LINE!r}
"""


def run(body: str, handled: bool = True):
    # Python's own SIGINT handler, as a command started from a terminal has; or SIGINT ignored,
    # as a child of a background job inherits it. Set in the child: no preexec_fn, which would
    # fork this multithreaded (JAX) process.
    sigint = "signal.default_int_handler" if handled else "signal.SIG_IGN"
    started = time.time()
    done = subprocess.run(
        [
            sys.executable, "-c",
            f"import signal; signal.signal(signal.SIGINT, {sigint})\n"
            + PRELUDE + textwrap.dedent(body),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done, time.time() - started


def assert_ended_by_ctrl_c(done):
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [LINE]
    assert "went on" not in done.stdout


def test_an_interrupt_dropped_in_a_gc_callback_still_ends_the_command():
    done, _ = run("""
        def collect_callback(phase, info):
            raise KeyboardInterrupt  # where Ctrl-C lands when it arrives during a collection

        with ending_interrupts(LINE, grace_seconds=60):
            gc.callbacks.append(collect_callback)
            gc.collect()
            time.sleep(5)
            print("went on")
    """)
    assert_ended_by_ctrl_c(done)


def test_an_interrupt_a_library_swallows_ends_the_command_after_the_grace_period():
    done, seconds = run("""
        with ending_interrupts(LINE, grace_seconds=0.5):
            sent, deadline = False, time.time() + 30
            while time.time() < deadline:
                try:  # a library that catches KeyboardInterrupt and carries on
                    if not sent:
                        sent = True
                        os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.05)
                except KeyboardInterrupt:
                    pass
            print("went on")
    """)
    assert_ended_by_ctrl_c(done)
    assert seconds < 25


def test_the_watchdog_lets_a_checkpoint_being_saved_finish():
    done, seconds = run("""
        from lstm_variants.interrupt import finishing_first

        with ending_interrupts(LINE, grace_seconds=0.3):
            try:  # a library that catches KeyboardInterrupt and carries on...
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                pass
            with finishing_first():  # ...into a save that outlasts the grace period
                time.sleep(1.5)
                print("saved", flush=True)
            time.sleep(30)
            print("went on")
    """)
    assert_ended_by_ctrl_c(done)
    assert "saved" in done.stdout and seconds < 20


def test_a_second_ctrl_c_ends_the_command_at_once():
    done, seconds = run("""
        with ending_interrupts(LINE, grace_seconds=60):
            for _ in range(2):  # both interrupts swallowed: only the second's own exit ends it
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(1)
                except KeyboardInterrupt:
                    time.sleep(2)  # so the next is a second Ctrl-C, not the first delivered twice
            time.sleep(15)
            print("went on")
    """)
    assert_ended_by_ctrl_c(done)
    assert seconds < 25


def test_one_ctrl_c_delivered_twice_lets_the_clean_up_finish_and_exit_quietly():
    done, _ = run("""
        import atexit

        def interrupt_while_exiting():  # a late copy, while Python runs its exit handlers
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)

        atexit.register(interrupt_while_exiting)
        with ending_interrupts(LINE, grace_seconds=60):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                os.kill(os.getpid(), signal.SIGINT)  # the same Ctrl-C again, as uv forwards it
                time.sleep(0.3)  # clean-up, such as saving a checkpoint
                print("cleaned up")
                raise
    """)
    assert_ended_by_ctrl_c(done)
    assert "cleaned up" in done.stdout


@pytest.mark.parametrize("name, status", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_end_the_command_like_ctrl_c_even_in_the_background(name, status):
    # SIGHUP: the terminal closed or the ssh connection dropped under a long run.
    done, _ = run(
        f"""
        signal.signal(signal.{name}, signal.SIG_DFL)  # as a shell starts a command
        with ending_interrupts(LINE, grace_seconds=60):
            try:
                os.kill(os.getpid(), signal.{name})
                time.sleep(5)
            except KeyboardInterrupt:
                print("cleaned up")  # the code interrupted keeps its work, as for Ctrl-C
                raise
            print("went on")
        """,
        handled=False,  # SIGINT ignored, as in a background job: SIGTERM is still handled
    )
    assert done.returncode == status, done.stderr
    assert done.stderr.strip().splitlines() == [LINE]
    assert "cleaned up" in done.stdout and "went on" not in done.stdout


@pytest.mark.parametrize("handled", [True, False])
def test_a_plain_interrupt_ends_the_block_and_an_ignored_one_stays_ignored(handled):
    done, _ = run(
        """
        with ending_interrupts(LINE):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
            print("went on")
        """,
        handled=handled,
    )
    if handled:
        assert_ended_by_ctrl_c(done)
    else:
        assert done.returncode == 0 and "went on" in done.stdout and done.stderr == ""


@pytest.mark.parametrize("ending", [None, SystemExit(2), ValueError("a bug")])
def test_the_handlers_are_the_defaults_again_however_the_block_ends(ending):
    # An error line ends the app with SystemExit; after it the handlers must not be the app's.
    from lstm_variants.interrupt import ending_interrupts

    defaults = (signal.default_int_handler, signal.SIG_DFL)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, defaults[0])
    signal.signal(signal.SIGTERM, defaults[1])
    try:
        with contextlib.suppress(SystemExit, ValueError), ending_interrupts(LINE):
            assert signal.getsignal(signal.SIGINT) not in defaults
            if ending is not None:
                raise ending
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == defaults
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


@pytest.mark.parametrize(
    "module, argv, line",
    [
        (
            "lstm_variants.analysis.cli",
            ["collect", "."],
            "lstm-variants-analyze: interrupted; run the command again to write its output",
        ),
        (
            "lstm_variants.data.cli",
            ["list"],
            "lstm-variants-data: interrupted; run the same command again (a download resumes "
            "from its .part file)",
        ),
    ],
)
def test_the_argparse_commands_end_a_ctrl_c_with_one_line_too(module, argv, line):
    done, _ = run(f"""
        import importlib
        cli = importlib.import_module({module!r})

        def interrupted(*args, **kwargs):  # Ctrl-C while the command works
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            print("went on")

        cli.run = interrupted
        cli.main({argv!r})
    """)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [line]


def test_a_ctrl_c_while_a_command_starts_is_one_line(tmp_path, monkeypatch, capsys):
    # The first second of a command imports JAX, Hydra and pandas, before any handler is in place.
    from lstm_variants import entry_points

    (tmp_path / "slow_to_import.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SystemExit) as ended:
        entry_points.start("prog", "slow_to_import")
    assert ended.value.code == 130
    assert capsys.readouterr().err.strip() == "prog: interrupted while starting; nothing was run"


def test_every_console_script_starts_its_own_command(monkeypatch):
    import importlib
    import tomllib
    from pathlib import Path

    from lstm_variants import entry_points

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    started = []
    monkeypatch.setattr(entry_points, "start", lambda *args: started.append(args))
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert module == "lstm_variants.entry_points", name
        getattr(entry_points, function)()
    assert started == [
        ("lstm-variants", "lstm_variants.cli"),
        ("lstm-variants-data", "lstm_variants.data.cli"),
        ("lstm-variants-analyze", "lstm_variants.analysis.cli"),
        ("lstm-variants-diagnose", "lstm_variants.diagnostics.cli"),
    ]
    for _, module in started:  # each names a module with a main
        assert callable(importlib.import_module(module).main)


def test_every_console_script_exits_with_its_commands_status(tmp_path):
    """The installed scripts, run as a user runs them: an error line is status 2, as the commands'
    own ``main`` returns it (a script that dropped it exited 0, and `fetch && sbatch` went on)."""
    import subprocess
    from pathlib import Path

    scripts = Path(sys.executable).parent
    empty = tmp_path / "empty"
    empty.mkdir()
    for script, arguments in [
        ("lstm-variants-analyze", ["compare", str(empty)]),
        ("lstm-variants-data", ["describe", "no_such_dataset"]),
        ("lstm-variants-analyze", ["--version"]),
    ]:
        done = subprocess.run(
            [str(scripts / script), *arguments], capture_output=True, text=True, timeout=120
        )
        expected = 0 if arguments == ["--version"] else 2
        assert done.returncode == expected, (script, arguments, done.stderr)
