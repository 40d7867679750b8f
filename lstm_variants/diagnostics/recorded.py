"""Gradient flow and gates of recorded trials: the networks a study actually trained.

``diagnose.records`` names record files or study directories. From a directory, the
``records_per_cell`` trials of each cell with the best validation result (and saved parameters)
are taken; a record file is taken as it is. Each trial is measured twice, with the diagnose
config's ``states``:

- ``fresh``: the parameters it started from, initialised again from its config and seed exactly
  as its training initialised them;
- ``trained``: the parameters it ended with (``<trial_id>.npz``, checked against its record).

Every trial is measured on its own dataset, so all of them must share one (their records' dataset
sections must be equal): a rate is a property of a network *on* data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstm_variants.analysis.best import ranked_by_validation
from lstm_variants.analysis.collect import AnalysisError, collect, require_trials
from lstm_variants.diagnostics.gradient_flow import average_note, measured_sequences
from lstm_variants.diagnostics.studies import fresh_variables, measure
from lstm_variants.errors import ConfigError
from lstm_variants.records import path_list
from lstm_variants.trained import TrainedTrial, load_trial


def record_files(sources: str | Path | Sequence[str | Path], per_cell: int) -> list[Path]:
    """The record files ``sources`` name (one path or several): files as given, directories as
    their ``per_cell`` best trials per cell by validation result, among those with saved
    parameters."""
    files: list[Path] = []
    for source in path_list(sources):
        if source.is_file():
            files.append(source)
            continue
        if not source.is_dir():
            raise ConfigError(
                f"diagnose.records: {source} is neither a record file nor a directory"
            )
        collection = collect([source])
        try:
            trials = require_trials(collection)
        except AnalysisError as error:
            raise ConfigError(f"diagnose.records: {error}") from None
        if collection.skipped_line() is not None:  # its cell's best trial may be the one left out
            print(
                f"lstm-variants-diagnose: warning: diagnose.records: {collection.skipped_line()}",
                file=sys.stderr,
            )
        usable = ranked_by_validation(trials[trials["params_path"].notna()])
        if usable.empty:
            raise ConfigError(
                f"diagnose.records: no trial under {source} has both a validation result and "
                "saved parameters (trials that diverged before their first validation have "
                "neither; records written with save_params=false need save_params=true "
                "overwrite=true)"
            )
        best = usable.groupby("cell", observed=True, sort=True).head(per_cell)
        files += [Path(path) for path in best.sort_values("cell", kind="stable")["record_path"]]
    return list(dict.fromkeys(files))


def load_trials(
    sources: str | Path | Sequence[str | Path], per_cell: int, data_dir=None
) -> list[TrainedTrial]:
    """The trials of ``record_files``, loaded; ConfigError unless they share one dataset."""
    trials = [load_trial(path, data_dir) for path in record_files(sources, per_cell)]
    for trial in trials:
        if trial.record["metrics"].get("best_valid") is None:  # an older record's untrained file
            raise ConfigError(
                f"diagnose.records: {trial.record_path} stopped "
                f"({trial.record['metrics'].get('stopped')}) before its first validation: "
                "there is no trained network to diagnose"
            )
    datasets = {json.dumps(t.record["config"]["dataset"], sort_keys=True) for t in trials}
    if len(datasets) > 1:
        names = sorted({t.record["dataset"] for t in trials})
        raise ConfigError(
            f"diagnose.records: the trials use {len(datasets)} different datasets or dataset "
            f"options ({', '.join(names)}); diagnose the trials of one dataset at a time"
        )
    return trials


def trial_label(trial: TrainedTrial) -> str:
    """'vanilla 3f2a1c': the cell and the start of the trial id."""
    return f"{trial.record['cell']} {trial.record['trial_id'][:6]}"


def recorded_study(
    diagnose: Mapping[str, Any], trials: Sequence[TrainedTrial]
) -> list[dict[str, Any]]:
    """The rows of ``studies.cell_study`` for recorded trials: one per (trial, state)."""
    rows = []
    for trial in trials:
        for state in diagnose["states"]:
            if state == "fresh":
                variables = fresh_variables(trial.model, trial.data, int(trial.record["seed"]))
                metrics = None
            elif state == "trained":
                variables, metrics = trial.variables, trial.record["metrics"]
            else:
                raise ConfigError(f"unknown model state '{state}'; valid: fresh, trained")
            flow, gates = measure(diagnose, trial.model, variables, trial.data)
            rows.append(
                {
                    "cell": trial_label(trial),
                    "state": state,
                    "flow": flow,
                    "gates": gates,
                    "metrics": metrics,
                }
            )
    return rows


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory where it lies below it (a report committed
    from a checkout names no one's home directory), else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def trials_header(diagnose: Mapping[str, Any], trials: Sequence[TrainedTrial]) -> str:
    """The report's heading for recorded trials: the dataset, and each trial with its record."""
    dataset = trials[0].record["config"]["dataset"]
    options = " ".join(f"{k}={v}" for k, v in (dataset.get("options") or {}).items())
    split = diagnose["split"]
    sequences = measured_sequences(trials[0].data, split, int(diagnose["num_sequences"]))
    lines = [
        f"# Diagnostics of {len(trials)} recorded trial(s): {dataset['name']} {options}".rstrip()
        + f", {sequences} {split} sequences"
        + f"{average_note(diagnose.get('average', 'arithmetic'))}\n",
        "| trial | hidden size | learning rate | best valid | stopped | record |",
        "|---|--:|--:|--:|---|---|",
    ]
    for trial in trials:
        record = trial.record
        hyper, metrics = record["hyperparameters"], record["metrics"]
        best = "-" if metrics.get("best_valid") is None else f"{metrics['best_valid']:.4g}"
        lines.append(
            f"| {trial_label(trial)} | {hyper['hidden_size']} | {hyper['learning_rate']:.3g} | "
            f"{best} | {metrics['stopped']} | {shown_path(trial.record_path)} |"
        )
    return "\n".join(lines) + "\n"
