"""``--version`` of the four commands, and a reader that closes the pipe early (``--help | head``):
no traceback, status 141, as a Unix tool killed by SIGPIPE."""

import os
import subprocess
import sys
from importlib import metadata

import pytest

from lstm_variants import version
from lstm_variants.analysis import cli as analysis_cli
from lstm_variants.cli import main as train_main
from lstm_variants.data import cli as data_cli
from lstm_variants.diagnostics.cli import main as diagnose_main
from lstm_variants.interrupt import BROKEN_PIPE_STATUS
from lstm_variants.records import code_version

COMMANDS = {
    "lstm-variants": lambda: train_main(),
    "lstm-variants-diagnose": lambda: diagnose_main(),
    "lstm-variants-data": lambda: data_cli.main(["--version"]),
    "lstm-variants-analyze": lambda: analysis_cli.main(["--version"]),
}


@pytest.mark.parametrize("prog", sorted(COMMANDS))
def test_version_names_the_package_its_commit_and_the_jax_stack(prog, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [prog, "--version"])
    with pytest.raises(SystemExit) as ended:
        COMMANDS[prog]()
    assert ended.value.code in (0, None)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{prog} {metadata.version('lstm-variants')}")
    for package in version.STACK:
        assert f"{package} {metadata.version(package)}" in line
    commit = code_version()["git_commit"]
    if commit:  # a checkout: the commit the records will carry
        assert f"commit {commit[:12]}" in line


def test_a_broken_pipe_that_is_not_standard_output_goes_on_as_raised():
    # stdout is a pipe whose reader stays: the BrokenPipeError came from elsewhere (a socket).
    done = subprocess.run(
        [
            sys.executable, "-c",
            "from lstm_variants.interrupt import quiet_when_reader_leaves\n"
            "with quiet_when_reader_leaves():\n"
            "    print('written')\n"
            "    raise BrokenPipeError(\"a socket's peer went away\")\n",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == "written\n"
    assert "BrokenPipeError: a socket's peer went away" in done.stderr


def test_version_leaves_out_the_commit_outside_a_checkout(monkeypatch):
    monkeypatch.setattr(
        "lstm_variants.version.code_version", lambda: {"git_commit": None, "git_dirty": None}
    )
    line = version.version_line("prog")
    assert "commit" not in line and line.startswith("prog ")


def test_version_marks_a_modified_checkout(monkeypatch):
    monkeypatch.setattr(
        "lstm_variants.version.code_version",
        lambda: {"git_commit": "0123456789abcdef", "git_dirty": True},
    )
    assert "(commit 0123456789ab, modified)" in version.version_line("prog")


def run_with_reader_gone(command: list[str], buffered: bool) -> subprocess.CompletedProcess:
    """Run ``command`` with its standard output's reader gone before it writes (``| head`` that
    has read enough): every write it makes fails with EPIPE. Buffered (Python's default for a
    pipe), the write comes at the flush as the command ends; unbuffered, at each print."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.wait(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, None, stderr)


@pytest.mark.parametrize(
    "module, arguments, buffered, status",
    [
        ("lstm_variants.cli", ["--help"], True, BROKEN_PIPE_STATUS),  # sys.exit inside Hydra
        ("lstm_variants.cli", ["--help"], False, BROKEN_PIPE_STATUS),
        ("lstm_variants.cli", ["--version"], True, BROKEN_PIPE_STATUS),
        ("lstm_variants.data.cli", ["list"], True, BROKEN_PIPE_STATUS),  # returns
        ("lstm_variants.analysis.cli", ["--version"], True, BROKEN_PIPE_STATUS),  # argparse exit
        # argparse's help swallows its own failed write: only a buffered one would reach us.
        ("lstm_variants.analysis.cli", ["--help"], False, 0),
    ],
)
def test_a_reader_that_leaves_early_ends_the_command_quietly(module, arguments, buffered, status):
    done = run_with_reader_gone([sys.executable, "-m", module, *arguments], buffered)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


def test_the_package_has_its_version_and_imports_without_jax():
    code = "import lstm_variants, sys; print(lstm_variants.__version__, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [metadata.version("lstm-variants"), "False"]
