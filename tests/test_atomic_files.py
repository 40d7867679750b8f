"""Tables, texts and figures written whole or not at all: a write that fails halfway leaves the
earlier file as it was and no temporary file beside it, and a good write reads back equal.
Records: tests/test_train.py::test_atomic_write_leaves_old_record_on_failure."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lstm_variants.atomic_files import (  # noqa: E402
    LEFTOVER_SECONDS,
    remove_leftovers,
    save_figure_atomic,
    write_table_atomic,
    write_text_atomic,
)

TABLE = pd.DataFrame({"cell": ["vanilla", "nfg"], "best_valid": [8.51, 8.73]})


class HalfWritten(pd.DataFrame):
    """A table whose writers fail after writing part of the file (a full disk, say)."""

    def to_csv(self, out, **_):
        out.write("cell,best_valid\nvan")
        raise OSError(28, "No space left on device")

    def to_parquet(self, out, **_):
        out.write(b"PAR1\x15\x04")
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("name", ["table.csv", "table.parquet"])
def test_a_table_reads_back_and_a_failed_write_keeps_the_old_one(tmp_path, name):
    path = tmp_path / name
    write_table_atomic(path, TABLE)
    read = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
    pd.testing.assert_frame_equal(read, TABLE)
    before = path.read_bytes()
    with pytest.raises(OSError, match="No space left"):
        write_table_atomic(path, HalfWritten(TABLE))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_a_text_is_replaced_whole_and_a_failed_write_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    write_text_atomic(path, "# old\n")
    write_text_atomic(path, "# new\n")
    assert path.read_text() == "# new\n"
    # A write that fails halfway: the text's second line cannot be encoded (a lone surrogate), so
    # the first line may already be written when it fails. A plain write_text would have truncated
    # the file by then; the atomic one leaves the earlier text whole and no temporary file.
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(path, "# half\n\ud800\n")
    assert path.read_text() == "# new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]

    # A write cut short after the text is out but before the rename (a kill, a full quota).
    def interrupted(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", interrupted)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(path, "# newer\n")
    assert path.read_text() == "# new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_a_figure_is_saved_in_the_format_of_its_name_or_not_at_all(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    png = save_figure_atomic(tmp_path / "curves.png", figure, dpi=20)
    pdf = save_figure_atomic(tmp_path / "curves.pdf", figure)
    assert png.read_bytes().startswith(b"\x89PNG") and pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError):  # matplotlib knows no such format: nothing is left behind
        save_figure_atomic(tmp_path / "curves.nosuchformat", figure)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.pdf", "curves.png"]


def test_a_table_is_parquet_or_csv_by_its_name(tmp_path):
    with pytest.raises(ValueError, match="written as .parquet or .csv"):
        write_table_atomic(tmp_path / "table.xlsx", TABLE)
    assert not list(tmp_path.iterdir())


def test_the_writers_and_the_analysis_command_start_without_jax():
    # Why atomic_files exists apart from records: the analyze command starts in a second, not in
    # JAX's import time, and still writes its outputs whole.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import lstm_variants.analysis.cli, lstm_variants.atomic_files, lstm_variants.records\n"
        "import lstm_variants.version\n"
        "print('jax' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_a_killed_writers_temporary_file_goes_once_it_is_old_and_a_write_in_flight_stays(tmp_path):
    """kill -9 between the write and the rename leaves ``.<name>.*.tmp``; a rerun clears it, but
    not one another process sharing the folder is writing now."""
    import os
    import time

    from test_train import config

    from lstm_variants.experiment import run_trials

    records = tmp_path / "records"
    records.mkdir()
    left = records / ".0123456789abcdef.json.k2j4h1.tmp"
    writing = records / ".fedcba9876543210.npz.q8w7e6.tmp"
    other = records / ".notes.tmp.txt"
    for path in (left, writing, other):
        path.write_text("{")
    old = time.time() - LEFTOVER_SECONDS - 60
    os.utime(left, (old, old))
    os.utime(other, (old, old))
    assert remove_leftovers(records) == [left]
    assert not left.exists() and writing.exists() and other.exists()

    os.utime(writing, (old, old))
    ((path, record),) = run_trials([config()], tmp_path, progress=False)
    assert record is not None and not writing.exists() and other.exists()


def test_text_is_written_as_utf8_whatever_the_locale(tmp_path):
    # The tables and reports hold ± and Δ; under an ASCII locale (LC_ALL=C, no UTF-8 coercion)
    # the locale's encoding would fail on them.
    import os
    import subprocess
    import sys

    path = tmp_path / "summary.md"
    code = (
        "import sys, locale\n"
        "from lstm_variants.atomic_files import write_text_atomic\n"
        "assert locale.getpreferredencoding(False).lower() != 'utf-8'\n"
        "write_text_atomic(sys.argv[1], '0.12 \\u00b1 0.03, \\u0394 = 0.4\\n')\n"
    )
    environment = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert path.read_bytes().decode("utf-8") == "0.12 ± 0.03, Δ = 0.4\n"


def test_the_umask_is_read_without_proc_too_and_left_as_it_was(tmp_path, monkeypatch):
    # Where /proc/self/status does not exist (macOS), the umask is set and put back at once.
    import os
    import pathlib
    import stat

    read_text = pathlib.Path.read_text

    def no_proc(self, *args, **kwargs):
        if str(self).startswith("/proc/"):
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", no_proc)
    previous = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "report.md", "# report\n")
        assert os.umask(0o027) == 0o027  # still the process's own
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o640
