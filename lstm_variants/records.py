"""Run records: one JSON document per trial, named by a stable trial id, written atomically.

The trial id is a hash of the resolved config (which includes the seed), so a rerun of the same
config finds its record and skips the trial, and a changed config never reuses a stale record. A
record is written to a temporary file in the same directory and renamed into place, so a crash
leaves either the whole record or none of it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lstm_variants.atomic_files import atomic_file
from lstm_variants.errors import RecordError

RECORD_VERSION = 1
RECORD_GLOB = "**/records/*.json"  # a study's records, wherever its jobs' folders put them


def trial_id(resolved_config: dict[str, Any]) -> str:
    """Stable 16-hex-digit id of a resolved config (key order does not matter)."""
    canonical = json.dumps(resolved_config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically (``atomic_file``), as strict JSON: a non-finite
    number (a diverged epoch's loss) is written as null (``json_safe``)."""
    with atomic_file(path) as out:
        json.dump(json_safe(document), out, indent=2, sort_keys=True, allow_nan=False)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity as None: JSON (RFC 8259) has no such numbers, and
    strict parsers (JavaScript's ``JSON.parse``, ``jq``) refuse Python's ``NaN`` token."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


# The fields every record has; analysis.collect builds its rows from them.
REQUIRED_FIELDS = ("cell", "dataset", "metrics")
# Fields that are objects where present (null allowed): the table reads keys out of them.
OBJECT_FIELDS = ("config", "hyperparameters", "sampled", "population", "environment", "params_file")


def read_record_file(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a record the results table can use, else (None, why it is not one).

    One test for the trainer (a record found means its trial is done) and for
    ``analysis.collect`` (a record found is a row), so that no record counts as done and is
    left out of the table.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, f"unreadable: {error}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"invalid JSON: {error.msg} (line {error.lineno})"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    missing = [field for field in REQUIRED_FIELDS if field not in record]
    if missing:
        return None, f"missing field(s): {', '.join(missing)}"
    if not isinstance(record["metrics"], dict):
        return None, "metrics is not an object"
    for field in OBJECT_FIELDS:
        if record.get(field) is not None and not isinstance(record[field], dict):
            return None, f"{field} is not an object: {record[field]!r}"
    for key in ("best_valid", "test_at_best"):  # compared and tabled as numbers; null: none
        value = record["metrics"].get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return None, f"metrics.{key} is not a number: {value!r}"
    params = record.get("params_file")
    if params and not isinstance(params.get("name"), str):
        return None, f"params_file has no file name: {params!r}"
    curve = record.get("curve")
    if curve is not None and not isinstance(curve, list):
        return None, f"curve is not a list: {curve!r}"
    for entry in curve or []:
        if not isinstance(entry, dict) or "epoch" not in entry:
            continue
        epoch = entry["epoch"]
        # An int first: a study's records hold millions of epochs, nearly all ints.
        if type(epoch) is not int and not _whole_number(epoch):
            return None, f"curve has an epoch that is not a whole number: {epoch!r}"
    # Names become table categories and ids set keys: a list or null there breaks the table. A
    # study named by a number (study=2024, which Hydra reads as an int) is a name all the same.
    for field in ("cell", "dataset", "study", "trial_id"):
        value = record.get(field)
        numbered = field == "study" and isinstance(value, int) and not isinstance(value, bool)
        if (field in REQUIRED_FIELDS or field in record) and not (
            (isinstance(value, str) and value) or numbered
        ):
            return None, f"{field} is not a name: {value!r}"
    return record, None


def path_list(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """``sources`` as a list of paths: one path (a string is one path, not its characters) or
    several."""
    if isinstance(sources, str | os.PathLike):
        return [Path(sources)]
    return [Path(source) for source in sources]


def record_files(directory: Path) -> list[Path]:
    """The record files under ``directory`` (``**/records/*.json``; a directory may itself be
    ``records/``), sorted."""
    root = Path(directory)
    candidates = list(root.glob(RECORD_GLOB))
    if root.name == "records":
        candidates += list(root.glob("*.json"))
    return sorted(candidates)


@functools.lru_cache(maxsize=8)  # Hydra resolves a run folder more than once per command
def recorded_names(sources: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(studies, datasets) of the records at ``sources`` (record files, or folders as
    ``record_files`` finds them), each sorted; files that are not records are passed over."""
    studies, datasets = set(), set()
    for source in sources:
        path = Path(source).expanduser()
        for file in record_files(path) if path.is_dir() else [path]:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                record = json.loads(file.read_text(encoding="utf-8"))
                study, dataset = record.get("study"), record.get("dataset")
                if isinstance(study, str | int) and isinstance(dataset, str):
                    studies.add(str(study))
                    datasets.add(dataset)
    return tuple(sorted(studies)), tuple(sorted(datasets))


def keys_drawn_everywhere(directory: Path) -> set[str]:
    """The config keys the search drew (``sampled``) in every record under ``directory`` with a
    validation result: those a rerun of any of its draws sets (``search.best_draws`` picks
    among them). Empty when no record has a result."""
    drawn = [
        set(record.get("sampled") or {})
        for record, _ in map(read_record_file, record_files(directory))
        if record is not None and record["metrics"].get("best_valid") is not None
    ]
    return set.intersection(*drawn) if drawn else set()


def _whole_number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    )


def read_record(path: Path) -> dict[str, Any]:
    """The record at ``path``, or RecordError in one line if it is missing or not a record.

    A record here passes ``read_record_file`` (the test the results table and the trainer use) and
    holds the config it was trained with."""
    if not Path(path).exists():
        raise RecordError(f"{path}: no such record")
    record, why = read_record_file(path)
    if record is None:
        raise RecordError(f"{path}: not a run record of lstm-variants ({why})")
    if not isinstance(record.get("config"), dict):
        raise RecordError(f"{path}: not a run record of lstm-variants (it has no 'config')")
    return record


@functools.cache
def code_version() -> dict[str, Any]:
    """The commit of the checkout this package runs from and whether its tracked files differ.

    Read once per process, when the first trials start (``experiment.run_trials``): the code
    that trains is the code imported at start, so a commit made while a long run or sweep trains
    must not be credited with its records.
    """
    return git_state(Path(__file__).resolve().parent)


def git_state(directory: Path) -> dict[str, Any]:
    """{'git_commit': HEAD or None, 'git_dirty': tracked files changed, or None} of ``directory``."""

    def git(*arguments: str) -> str | None:
        # --no-optional-locks: reading the state never writes the index. A git killed part-way
        # (the timeout, a file-size limit) would otherwise leave .git/index.lock, and every later
        # git command in that checkout would fail.
        try:
            out = subprocess.run(
                ["git", "--no-optional-locks", *arguments],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=5,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD") or None
    changes = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": None if changes is None else bool(changes)}


def environment() -> dict[str, Any]:
    """Versions and devices that decide whether two runs are comparable."""
    import flax
    import jax
    import jaxlib
    import optax

    devices = jax.devices()
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        # JAX's own numeric settings, set by JAX_ENABLE_X64 / JAX_DEFAULT_MATMUL_PRECISION or in
        # code: the same config and seed train to other numbers under them (float64 sums; TF32
        # or bfloat16 products on a GPU), and the trial id does not change.
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "matmul_precision": jax.config.jax_default_matmul_precision,
        **code_version(),
        "host": platform.node(),
        # The cores this process ran on: a job that asked for cpu_pinning and found every core
        # held runs unpinned, with other float rounding (XLA's thread pool differs).
        "cpu_cores": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
