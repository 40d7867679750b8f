"""The on-disk compilation cache: where it goes, that a warm cache compiles nothing new and changes
no number, that each job reports its own programs, that diagnose uses it, that it can be turned
off, that an unusable directory is one error line (the default place: one warning line), and that
a program whose writing a killed run cut short is compiled again, without warnings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest
from test_train import TINY, config

from lstm_variants.compilation_cache import enable_compilation_cache
from lstm_variants.errors import ConfigError
from lstm_variants.experiment import trial_identity

TINY_DIAGNOSE = [
    "dataset.options.T=11", "dataset.options.n_train=16", "dataset.options.n_valid=8",
    "dataset.options.n_test=8", "model.hidden_size=4", "train.max_epochs=1",
    "diagnose.num_sequences=8", "diagnose.cells=[vanilla]", "diagnose.states=[fresh]",
    "diagnose.init_study.enabled=false", "diagnose.clipping_study.enabled=false",
]  # fmt: skip


def cli(tmp_path: Path, *args: str, env: dict[str, str]):
    environment = {k: v for k, v in os.environ.items() if k != "LSTM_VARIANTS_COMPILATION_CACHE"}
    return subprocess.run(
        [
            sys.executable, "-m", "lstm_variants.cli", *TINY, "overwrite=true",
            f"hydra.run.dir={tmp_path / 'run'}", *args,
        ],
        capture_output=True, text=True, timeout=300, env=environment | env,
    )  # fmt: skip


def programs_per_job(out) -> list[tuple[int, int]]:
    """(loaded, compiled) from each job's 'compilation cache: N programs loaded, M compiled' line."""
    lines = [line for line in out.stdout.splitlines() if line.startswith("compilation cache: ")]
    return [(int(line.split()[2]), int(line.split()[5])) for line in lines]


def programs(out) -> tuple[int, int]:
    (only,) = programs_per_job(out)
    return only


def record_of(out) -> dict:
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("record: "))
    return json.loads(Path(line.removeprefix("record: ")).read_text())


def entries(directory: Path) -> set[str]:
    """The compiled programs JAX keeps (each with an '-atime' file for eviction beside it)."""
    return {p.name for p in directory.glob("*-cache")} if directory.exists() else set()


@pytest.mark.slow
def test_warm_cache_compiles_nothing_new_and_changes_no_number(tmp_path):
    xdg = tmp_path / "xdg"
    cache = xdg / "lstm_variants" / "xla"  # the default place, under $XDG_CACHE_HOME
    first = cli(tmp_path, env={"XDG_CACHE_HOME": str(xdg)})
    cold = record_of(first)
    written = entries(cache)
    loaded, compiled = programs(first)  # loaded: the same program compiled twice in one run
    assert compiled == len(written) > 0
    second = cli(tmp_path, env={"XDG_CACHE_HOME": str(xdg)})
    warm = record_of(second)
    assert programs(second) == (loaded + compiled, 0)  # every program came from the cache
    assert entries(cache) == written
    assert (cache / ".lockfile").exists()  # reads and writes are locked: parallel jobs are safe
    assert warm["trial_id"] == cold["trial_id"]
    assert warm["metrics"] == cold["metrics"] and warm["curve"] == cold["curve"]


@pytest.mark.slow
def test_each_job_of_a_multirun_reports_its_own_programs(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "LSTM_VARIANTS_COMPILATION_CACHE"}
    out = subprocess.run(
        [
            sys.executable, "-m", "lstm_variants.cli", "-m", *TINY, "seed=0,1",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", f"compilation_cache={tmp_path / 'xla'}",
            "sweep_report=false",
        ],
        capture_output=True, text=True, timeout=300, env=environment,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    first, second = programs_per_job(out)
    assert first[1] > 0
    # The basic launcher runs both jobs in one process: the second finds the first's programs in
    # memory or on disk, and must not be credited with the first one's compilations.
    assert second[1] == 0 and second[0] < first[1]


def test_diagnose_keeps_its_programs_too(tmp_path):
    cache = tmp_path / "xla"
    environment = {k: v for k, v in os.environ.items() if k != "LSTM_VARIANTS_COMPILATION_CACHE"}
    out = subprocess.run(
        [
            sys.executable, "-m", "lstm_variants.diagnostics.cli", *TINY_DIAGNOSE,
            f"out_dir={tmp_path / 'out'}", f"compilation_cache={cache}",
        ],
        capture_output=True, text=True, timeout=300, env=environment,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    _, compiled = programs(out)
    assert compiled == len(entries(cache)) > 0


@pytest.mark.slow
def test_null_turns_the_cache_off(tmp_path):
    xdg = tmp_path / "xdg"
    record_of(cli(tmp_path, "compilation_cache=null", env={"XDG_CACHE_HOME": str(xdg)}))
    # The native LSTM kernel's library is the only thing kept there (native_build).
    kept = {p.relative_to(xdg).parts[:2] for p in xdg.rglob("*") if p.is_file()}
    assert kept <= {("lstm_variants", "native")}, kept


def test_unusable_directory_is_one_error_line_and_no_record(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = cli(tmp_path, f"compilation_cache={blocker / 'xla'}", env={})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstm-variants: error: compilation_cache:")
    assert "compilation_cache=null" in lines[0]
    assert not list((tmp_path / "run").glob("records/*.json"))


def test_unusable_default_place_is_one_warning_and_the_run_goes_on(tmp_path):
    blocker = tmp_path / "a_file"  # $XDG_CACHE_HOME is a file: a home where nothing can be made
    blocker.write_text("not a directory")
    out = cli(tmp_path, env={"XDG_CACHE_HOME": str(blocker)})
    record_of(out)
    lines = [line for line in out.stderr.strip().splitlines() if not line.startswith("memory: ")]
    assert len(lines) == 1 and lines[0].startswith("lstm-variants: warning: compilation_cache:")
    assert "going on without it" in lines[0]
    assert programs_per_job(out) == []


@pytest.mark.parametrize("off", [None, "", "null", "off"])
def test_off_values_leave_jax_alone(off):
    before = jax.config.jax_compilation_cache_dir
    assert enable_compilation_cache(off) is None
    assert jax.config.jax_compilation_cache_dir == before


def test_the_cache_place_is_not_part_of_a_trial():
    ids = {trial_identity(config(f"compilation_cache={place}")) for place in ("null", "/a", "/b")}
    assert len(ids) == 1


def test_unusable_directory_raises_config_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot create"):
        enable_compilation_cache(blocker / "xla")
    # The file itself: mkdir said "File exists", which reads as if the folder were fine.
    with pytest.raises(ConfigError, match="'.*a_file' is a file, not a directory; choose a"):
        enable_compilation_cache(blocker)


SMALL_PROGRAM = """
import sys
import jax.numpy as jnp, jax
from lstm_variants.compilation_cache import enable_compilation_cache
enable_compilation_cache(sys.argv[1])
print(float(jax.jit(lambda x: jnp.tanh(x) @ x.T)(jnp.ones((3, 3))).sum()))
"""


def run_small_program(directory: Path):
    return subprocess.run(
        [sys.executable, "-c", SMALL_PROGRAM, str(directory)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


def access_time_file(program: Path) -> Path:
    return program.with_name(program.name.removesuffix("-cache") + "-atime")


def test_a_program_cut_short_by_a_killed_run_is_compiled_again_without_warnings(tmp_path):
    cache = tmp_path / "xla"
    first = run_small_program(cache)
    # The layout the clean-up relies on: every program file has its access-time file beside it.
    programs = sorted(cache.glob("*-cache"))
    assert programs and all(access_time_file(p).exists() for p in programs)
    # A run killed while JAX wrote the program: half the file, and no access-time file yet.
    (torn,) = [p for p in programs if p.name.startswith("jit__lambda")]
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    access_time_file(torn).unlink()

    healed = run_small_program(cache)
    assert healed.stdout == first.stdout
    assert "removed 1 program(s)" in healed.stderr
    assert "Error" not in healed.stderr and "Warning" not in healed.stderr
    assert torn.stat().st_size > 0 and access_time_file(torn).exists()

    again = run_small_program(cache)  # the program saved again is read back cleanly
    assert again.stdout == first.stdout and again.stderr == ""


@pytest.mark.parametrize("config_name", ["config", "diagnose"])
def test_an_empty_xdg_cache_home_is_ignored_not_taken_as_the_root(monkeypatch, config_name):
    # The XDG spec: an empty $XDG_CACHE_HOME counts as unset. oc.env read it as '', which put the
    # cache at /lstm_variants/xla.
    from hydra import compose, initialize_config_dir

    from lstm_variants.cli import CONFIG_DIR
    from lstm_variants.data.cache import resolve_data_dir

    monkeypatch.delenv("LSTM_VARIANTS_COMPILATION_CACHE", raising=False)
    monkeypatch.delenv("LSTM_VARIANTS_DATA_DIR", raising=False)
    home_cache = Path.home() / ".cache" / "lstm_variants"
    for value, expected in [("", home_cache), ("/elsewhere", Path("/elsewhere/lstm_variants"))]:
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name)
        assert cfg.compilation_cache == str(expected / "xla")
        assert resolve_data_dir() == expected


CACHE_GONE_MIDWAY = """
import shutil, sys
from pathlib import Path
import jax.numpy as jnp, jax
from lstm_variants.compilation_cache import cache_use, enable_compilation_cache
cache = Path(sys.argv[1])
enable_compilation_cache(cache)
jax.jit(lambda x: jnp.tanh(x) @ x.T)(jnp.ones((3, 3))).block_until_ready()
saved = len(list(cache.glob("*-atime")))
shutil.rmtree(cache)
cache.write_text("")  # the folder is gone, as a cleaned ~/.cache or a full disk: no save works
for n in range(2, 6):
    jax.jit(lambda x: jnp.sin(x) * n)(jnp.ones((n,))).block_until_ready()
print(saved, *cache_use())
"""


def test_programs_that_cannot_be_saved_are_one_warning_line_and_counted_as_not_saved(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CACHE_GONE_MIDWAY, str(tmp_path / "xla")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    on_disk, loaded, saved, unsaved = map(int, done.stdout.split())
    # JAX warns (two lines) for each program it could not read or save: 4 programs and more.
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"compilation cache: warning: cannot use {tmp_path / 'xla'} (")
    assert line.endswith("); the run goes on, compiling what it cannot load")
    assert (loaded, saved) == (0, on_disk) and unsaved >= 4
