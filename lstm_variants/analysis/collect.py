"""Collect run records into one tidy table: one row per trial, one column per quantity.

Every ``**/records/*.json`` under the given directories is read (a sweep root, one job's output
directory, or a folder of sweeps all work). A record is one trial (DESIGN.md section 5); the
table it becomes has

- identity: ``trial_id``, ``study``, ``cell``, ``dataset`` (the last three as pandas categories;
  ``cell`` is the cell's name plus any options it was built with, ``lstm_variants.cell_label``),
  ``seed``, ``sweep`` (the input directory the record was found under), ``record_path``,
  ``params_path`` (its trained parameters, ``lstm_variants.trained.load_trial``; None if not saved
  or not beside the record),
  ``rerun_of`` (in a rerun study, ``search.rerun``: the trial it trains again with a new seed);
- every field of ``hyperparameters`` as its own column (``hidden_size``, ``learning_rate``, ...);
- every value the random search drew, from the record's ``sampled`` block (``{dotted config key:
  value}``), as ``sampled.<dotted key>`` columns (absent for records that have no such block);
- every field of ``metrics`` as its own column (``metric``, ``best_valid``, ``test_at_best``,
  ``stopped``, ``epochs_run``, ...), plus ``diverged`` (stopped == 'diverged') and ``usable``
  (a finite ``best_valid`` and ``test_at_best``: the trial has a result to compare);
- cost: ``parameters``, ``wall_seconds``, ``compile_seconds``, ``population_size``, ...;
- ``config_json`` and ``environment_json``: the resolved config and environment as JSON text, so
  the table alone is enough to write the report.

Learning curves are long, so they go to a second table (``trial_id, epoch, train_loss, valid_loss
[, valid_solved]``).

Failed and partial sweeps are normal: a record that cannot be read (truncated JSON, not an object,
missing ``cell``/``dataset``/``metrics``, a field of the wrong kind, a list for a hyperparameter,
a text where the other records have a number) is *skipped and counted* with its reason, and a
trial found twice (the same ``trial_id`` under two of the directories) is kept once and counted
as a duplicate: ``skipped.csv`` names the record kept, and says whether the two hold the same
results (a copy) or not (the same config trained again, e.g. alone instead of in a population).
``Collection.summary()`` says all of this in one line.
"""

from __future__ import annotations

import dataclasses
import json
import math
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstm_variants.atomic_files import write_table_atomic
from lstm_variants.cell_label import cell_label, cell_name
from lstm_variants.records import RECORD_GLOB, path_list, read_record_file, record_files

# Canonical order of cells in every table and figure: Greff's V and its eight variants, then
# Jozefowicz's cells and the baselines; anything else follows alphabetically.
CELL_ORDER = (
    "vanilla",
    "nig",
    "nfg",
    "nog",
    "niaf",
    "noaf",
    "np",
    "cifg",
    "fgr",
    "lstm",
    "lstm_f",
    "lstm_i",
    "lstm_o",
    "lstm_b",
    "gru",
    "gru_reset_after",
    "mut1",
    "mut2",
    "mut3",
    "mgu",
    "tanh_rnn",
)

CURVE_COLUMNS = ("trial_id", "epoch", "train_loss", "valid_loss", "valid_solved")


class AnalysisError(ValueError):
    """Bad input to the analysis (no records, unknown cell, ...): the CLI prints one line."""


@dataclasses.dataclass
class Collection:
    """The trials of one or more sweeps, and what could not be read.

    Attributes:
      trials: one row per trial (see the module docstring for the columns).
      curves: one row per (trial, epoch).
      skipped: (path, reason) for every record file that could not be used.
      duplicates: (path, reason) of records whose ``trial_id`` was already collected from another
        file; the reason names that file and whether the metrics and curve are the same.
      directories: the directories searched.
    """

    trials: pd.DataFrame
    curves: pd.DataFrame
    skipped: list[tuple[str, str]]
    duplicates: list[tuple[str, str]]
    directories: list[str]

    def summary(self) -> str:
        """One line: how many trials, from where, and what was skipped."""
        line = (
            f"{len(self.trials)} trial(s) from {len(self.directories)} director"
            f"{'y' if len(self.directories) == 1 else 'ies'}"
        )
        if len(self.trials):
            line += (
                f" ({self.trials['dataset'].nunique()} dataset(s), "
                f"{self.trials['cell'].nunique()} cell(s))"
            )
        line += f"; skipped {len(self.skipped)} unreadable record(s)"
        if self.duplicates:
            line += f", {len(self.duplicates)} duplicate(s)"
            other = self.duplicates_with_other_results()
            if other:
                line += f" ({other} with other results than the record kept: see skipped.csv)"
        return line

    def skipped_line(self) -> str | None:
        """One line naming the record files left out (the first, its reason, how many more), or
        None. ``summary`` only counts them; a table, or a cell's best trial, that lacks one
        should say which, as a sweep's rerun does before it trains them again."""
        if not self.skipped:
            return None
        path, reason = self.skipped[0]
        more = f" and {len(self.skipped) - 1} more" if len(self.skipped) > 1 else ""
        return (
            f"{len(self.skipped)} record file(s) left out, unreadable: {path} ({reason}){more}; "
            "rerunning their study's command trains them again (`lstm-variants-analyze "
            "collect` lists every one in skipped.csv)"
        )

    def duplicates_with_other_results(self) -> int:
        """How many duplicates hold other results than the record kept (trained again)."""
        return sum(reason.endswith(OTHER_RESULTS) for _, reason in self.duplicates)

    def save(self, output_dir: Path) -> dict[str, Path]:
        """Write ``trials.parquet``, ``curves.parquet`` and ``skipped.csv``; return their paths."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "trials": output_dir / "trials.parquet",
            "curves": output_dir / "curves.parquet",
            "skipped": output_dir / "skipped.csv",
        }
        write_table_atomic(paths["trials"], self.trials)
        write_table_atomic(paths["curves"], self.curves)
        rows = [*self.skipped, *self.duplicates]
        write_table_atomic(paths["skipped"], pd.DataFrame(rows, columns=["path", "reason"]))
        return paths


def trials_table(trials: pd.DataFrame | Collection, *columns: str) -> pd.DataFrame:
    """The trials table ``trials`` is (a ``Collection`` gives its ``trials``), checked to hold
    each of ``columns`` (the metric compared, the one that selects); TypeError or AnalysisError
    in one line otherwise."""
    if isinstance(trials, Collection):
        trials = trials.trials
    if not isinstance(trials, pd.DataFrame):
        raise TypeError(
            f"expected the trials table, collect(...).trials; got {type(trials).__name__}"
        )
    missing = [name for name in columns if len(trials.columns) and name not in trials.columns]
    if missing:
        numeric = trials.select_dtypes("number").columns
        shown = [name for name in ("test_at_best", "best_valid") if name in numeric]
        raise AnalysisError(
            f"unknown metric {missing[0]!r}: not a column of the trials table"
            + (f" (e.g. {', '.join(shown)})" if shown else "")
        )
    return trials


def find_record_files(directories: str | Path | Sequence[str | Path]) -> list[Path]:
    """Every ``**/records/*.json`` under ``directories`` (a directory may itself be ``records/``).

    Raises:
      AnalysisError: a directory does not exist, or none of them holds a record file.
    """
    directories = path_list(directories)
    found: dict[Path, None] = {}
    for directory in directories:
        root = Path(directory)
        if not root.is_dir():
            raise AnalysisError(f"not a directory: {root}")
        for path in record_files(root):
            found.setdefault(path.resolve(), None)
    if not found:
        where = ", ".join(str(Path(d)) for d in directories)
        raise AnalysisError(f"no run records ({RECORD_GLOB}) under {where}")
    return list(found)


def _number_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a float
        return None
    return number if math.isfinite(number) else None


def _provenance_number(record: dict[str, Any], *keys: str) -> int | float | None:
    """``record[keys[0]][keys[1]]...``: a number the app wrote (a seed, seconds, a size) or
    None where absent. Anything else is ValueError: the record was edited, and a column of
    numbers and texts cannot be written as a table."""
    value: Any = record
    for key in keys:
        value = (value or {}).get(key)
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise ValueError(f"{'.'.join(keys)} is {value!r}, not a number")


def record_row(record: dict[str, Any], path: Path, sweep: str) -> dict[str, Any]:
    """The table row of one record (the columns of the module docstring)."""
    metrics = dict(record["metrics"])
    environment = record.get("environment") or {}
    params = record.get("params_file")
    params_file = str(Path(path).parent / params["name"]) if params else None
    row: dict[str, Any] = {
        "trial_id": record.get("trial_id") or Path(path).stem,
        "study": str(record.get("study", "single")),
        "cell": cell_label(record.get("config") or {}) or record["cell"],
        "dataset": record["dataset"],
        "seed": _provenance_number(record, "seed"),
        "sweep": sweep,
        "record_path": str(path),
        "record_version": record.get("record_version"),
        # The trained parameters' file (lstm_variants.trained reads it), None where none was
        # saved or it is not beside the record (a study copied without its .npz files).
        "params_path": params_file if params_file and Path(params_file).is_file() else None,
        # The trial a rerun study (search.rerun) trained again with a new seed; None otherwise.
        "rerun_of": ((record.get("config") or {}).get("search") or {}).get("rerun_of"),
    }
    for key, value in (record.get("hyperparameters") or {}).items():
        row[key] = _single_value("hyperparameters", key, value)
    for key, value in (record.get("sampled") or {}).items():
        row[f"sampled.{key}"] = _single_value("sampled", key, value)
    for key, value in metrics.items():
        row[key] = _single_value("metrics", key, value)
    best_valid = _number_or_none(metrics.get("best_valid"))
    test = _number_or_none(metrics.get("test_at_best"))
    row["best_valid"] = best_valid
    row["test_at_best"] = test
    row["diverged"] = metrics.get("stopped") == "diverged"
    row["usable"] = best_valid is not None and test is not None
    row.update(
        parameters=_provenance_number(record, "parameters"),
        wall_seconds=_provenance_number(record, "wall_seconds"),
        compile_seconds=_provenance_number(record, "compile_seconds"),
        started_unix=_provenance_number(record, "started_unix"),
        population_size=_provenance_number(record, "population", "size"),
        population_index=_provenance_number(record, "population", "index"),
        padded_hidden_size=_provenance_number(record, "population", "padded_hidden_size"),
        device_kind=environment.get("device_kind"),
        git_commit=environment.get("git_commit"),
        config_json=json.dumps(record.get("config") or {}, sort_keys=True, default=str),
        environment_json=json.dumps(environment, sort_keys=True, default=str),
    )
    return row


def _single_value(block: str, key: str, value: Any) -> Any:
    """``value`` if it is one value (a number, a text, a truth value or null); ValueError for a
    list or an object, which no column of the table can hold next to other records' values."""
    if isinstance(value, list | dict):
        raise ValueError(f"{block}.{key} is {value!r}, not a single value")
    return value


def _kind(value: Any) -> str | None:
    """'number' or 'text' for the values a column may not mix; None for any other."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return "text" if isinstance(value, str) else None


def mixed_kind_rows(rows: list[dict[str, Any]]) -> dict[int, str]:
    """{row index: why} for the rows whose value in some column is a text where most rows have a
    number there, or the other way round (an edited record: ``"hidden_size": "big"``, a metric
    named 5). A column of both kinds cannot be written as a table, so those rows are skipped;
    where the kinds are as many, the texts are."""
    kinds: dict[str, dict[str, list[int]]] = {}
    for index, row in enumerate(rows):
        for column, value in row.items():
            kind = _kind(value)
            if kind is not None:
                kinds.setdefault(column, {}).setdefault(kind, []).append(index)
    mixed: dict[int, str] = {}
    for column, by_kind in kinds.items():
        if len(by_kind) < 2:
            continue
        numbers, texts = by_kind["number"], by_kind["text"]
        odd, usual = (texts, "numbers") if len(numbers) >= len(texts) else (numbers, "texts")
        for index in odd:
            mixed.setdefault(
                index,
                f"malformed: {column} is {rows[index][column]!r} where {len(rows) - len(odd)} "
                f"other record(s) have {usual}",
            )
    return mixed


def curve_rows(record: dict[str, Any], trial: str) -> Iterable[dict[str, Any]]:
    """The learning-curve rows of one record (epochs without a number are kept as NaN)."""
    for entry in record.get("curve") or []:
        if isinstance(entry, dict) and "epoch" in entry:
            epoch = int(entry["epoch"])
            if not 0 <= epoch < 2**31:
                raise ValueError(f"epoch {epoch} is out of range")
            yield {
                "trial_id": trial,
                "epoch": epoch,
                "train_loss": _as_float(entry.get("train_loss")),
                "valid_loss": _as_float(entry.get("valid_loss")),
                "valid_solved": _as_float(entry.get("valid_solved")),
            }


def _as_float(value: Any) -> float:
    """``value`` as a float (NaN and infinities kept: a diverging curve shows them); else NaN."""
    try:
        return float(value)
    except OverflowError:  # an integer beyond a float's range: infinite, as a diverged loss is
        return math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        return math.nan


def ordered_cells(cells: Iterable[str], reference: str | None = None) -> list[str]:
    """``cells`` in the canonical order (``CELL_ORDER``; a cell built with options right after
    its plain self), with ``reference`` first if present."""
    unique = list(dict.fromkeys(cells))
    rank = {name: i for i, name in enumerate(CELL_ORDER)}
    ordered = sorted(unique, key=lambda label: (rank.get(cell_name(label), len(rank)), label))
    if reference in ordered:
        ordered.remove(reference)
        ordered.insert(0, reference)
    return ordered


def tidy(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The trials table with ``study``, ``cell`` and ``dataset`` as categories (cells ordered)."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Float even where every trial lacks a result (a column of None would be 'object', which
    # nsmallest and the statistics refuse).
    frame[["best_valid", "test_at_best"]] = frame[["best_valid", "test_at_best"]].astype(float)
    frame["cell"] = pd.Categorical(frame["cell"], categories=ordered_cells(frame["cell"]))
    for column in ("study", "dataset"):
        frame[column] = pd.Categorical(frame[column], categories=sorted(frame[column].unique()))
    return canonical_order(frame)


def canonical_order(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` sorted by dataset, cell and trial id (where it has them): the order of
    ``collect``'s table, and the one ``compare`` puts a table in, so that trials that tie exactly
    on the selection value are picked, and resampled, the same way whatever order the records
    were read in."""
    keys = [key for key in ("dataset", "cell", "trial_id") if key in trials.columns]
    return trials.sort_values(keys, kind="stable", ignore_index=True) if keys else trials


def require_trials(collection: Collection) -> pd.DataFrame:
    """``collection.trials``, or AnalysisError in one line where no record could be read (a
    folder of other JSON files): the line names the folders and the first file's reason."""
    if not collection.trials.empty:
        return collection.trials
    skipped = collection.skipped + collection.duplicates
    example = f"; e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
    raise AnalysisError(
        f"no readable records under {', '.join(collection.directories)} "
        f"({len(collection.skipped)} skipped{example})"
    )


SAME_RESULTS = "same results"
OTHER_RESULTS = "other results"


def collect(directories: str | Path | Sequence[str | Path], progress: bool = False) -> Collection:
    """Read every record under ``directories`` into a ``Collection``.

    Args:
      directories: sweep roots, job output directories or ``records/`` folders (one or several).
      progress: show a progress bar while reading (many thousands of records take seconds).

    Returns:
      The trials and curves tables, the skipped files with reasons and the duplicates.

    Raises:
      AnalysisError: a directory is missing, or no record file exists under any of them.
    """
    directories = [str(d) for d in path_list(directories)]
    roots = [(Path(d).resolve(), d) for d in directories]
    paths = find_record_files(directories)
    rows, skipped, duplicates, seen = [], [], [], {}
    # Column by column, numbers as C arrays: a dict and three float objects per epoch took
    # hundreds of MiB at 5,400 records of 150 epochs.
    curves = {"trial_id": [], "epoch": array("q")} | {n: array("d") for n in CURVE_COLUMNS[2:]}
    for path in _maybe_progress(paths, progress, "reading records"):
        record, reason = read_record_file(path)
        if record is None:
            skipped.append((str(path), reason))
            continue
        sweep = next((name for root, name in roots if path.is_relative_to(root)), str(path.parent))
        try:  # a field of the wrong kind (a list for an object, an epoch 'abc') skips the record
            row = record_row(record, path, sweep)
            curve = list(curve_rows(record, row["trial_id"]))
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as error:
            skipped.append((str(path), f"malformed: {type(error).__name__}: {error}"))
            continue
        if row["trial_id"] in seen:
            # A copy, or the same config trained again (alone instead of in a population). The
            # kept record is read again: duplicates are rare, and holding every record's curve
            # for them raised the peak from 524 to 669 MiB at 5,400 records.
            kept = seen[row["trial_id"]]
            kept_record = read_record_file(Path(kept))[0] or {}
            kept_results = (kept_record.get("metrics"), kept_record.get("curve"))
            # As JSON text: an older record's NaN would not equal itself as a float.
            results = (record.get("metrics"), record.get("curve"))
            same = json.dumps(results, sort_keys=True) == json.dumps(kept_results, sort_keys=True)
            duplicates.append(
                (
                    str(path),
                    f"duplicate trial_id of {kept}, {SAME_RESULTS if same else OTHER_RESULTS}",
                )
            )
            continue
        seen[row["trial_id"]] = str(path)
        rows.append(row)
        for name, column in curves.items():
            column.extend(entry[name] for entry in curve)
    mixed = mixed_kind_rows(rows)
    skipped += [(rows[index]["record_path"], why) for index, why in mixed.items()]
    dropped = {rows[index]["trial_id"] for index in mixed}
    rows = [row for index, row in enumerate(rows) if index not in mixed]
    # Typed columns even when no record has a curve (int64 epochs, float64 losses).
    numbers = {name: np.asarray(column) for name, column in curves.items() if name != "trial_id"}
    trial_ids = pd.Series(curves["trial_id"], dtype=object)
    curve_frame = pd.DataFrame({"trial_id": trial_ids} | numbers, columns=list(CURVE_COLUMNS))
    if dropped:
        curve_frame = curve_frame[~curve_frame["trial_id"].isin(dropped)].reset_index(drop=True)
    return Collection(tidy(rows), curve_frame, skipped, duplicates, directories)


def select_studies(
    collection: Collection, studies: Sequence[str] | None = None, pool: bool = False
) -> Collection:
    """The trials of the named ``studies`` (all if None), refusing to pool studies unasked.

    A study is one search (``study=...``): its cells share a search space, a budget and, in a
    paired search, its draws. Two studies on one dataset (a study and its smoke run, a random search
    and its rerun with fresh seeds) answer different questions, so their trials are compared within
    one study unless ``pool`` says otherwise.

    Raises:
      AnalysisError: a name in ``studies`` has no records here (the line lists those that do), or
        two studies share a dataset and ``pool`` is false.
    """
    trials = collection.trials
    found = sorted(trials["study"].astype(str).unique()) if len(trials) else []
    if studies:
        unknown = [name for name in studies if name not in found]
        if unknown:
            raise AnalysisError(
                f"no records of study {', '.join(map(repr, unknown))} here; "
                f"the studies found are: {', '.join(found)}"
            )
        kept = trials["study"].astype(str).isin(studies)
        trials = trials[kept].reset_index(drop=True)
        for column in ("study", "dataset", "cell"):
            trials[column] = trials[column].cat.remove_unused_categories()
        curves = collection.curves[collection.curves["trial_id"].isin(trials["trial_id"])]
        collection = dataclasses.replace(
            collection, trials=trials, curves=curves.reset_index(drop=True)
        )
    if not pool and len(trials):
        per_dataset = trials.groupby("dataset", observed=True)["study"].unique()
        mixed = [
            f"{len(names)} studies on {dataset} ({', '.join(sorted(map(str, names)))})"
            for dataset, names in per_dataset.items()
            if len(names) > 1
        ]
        if mixed:  # every dataset at once: fixing the first must not reveal the next
            raise AnalysisError(
                f"records of {'; '.join(mixed)}: analyse one with --study NAME (or pass its "
                "directory alone), or compare them as one with --pool-studies"
            )
    return collection


def _maybe_progress(items: Sequence[Any], enabled: bool, description: str) -> Iterable[Any]:
    if not enabled or len(items) < 200:
        return items
    from rich.progress import track

    return track(items, description=description, transient=True)
