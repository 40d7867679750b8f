"""Realistic synthetic run records with planted effects, for tests, demos and sanity checks.

A synthetic study draws each trial's hyperparameters from a search space (Greff's by default),
computes its test metric from a known ``response`` function plus the cell's planted offset plus
Gaussian noise, and wraps it in a record of the current schema (``experiment.make_record``):
hyperparameters, ``sampled``, metrics, a learning curve, population, config and environment. So
the analysis can be checked against a truth nobody had to train for.

Example::

    records = synthetic_study({"vanilla": 0.0, "nfg": 0.5, "cifg": 0.0}, trials=40, seed=0)
    write_records(records, tmp_path / "sweep")   # -> tmp_path/sweep/<cell>/records/<id>.json
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# Greff et al. (2017): (distribution, low, high) per dotted config key.
GREFF_SPACE: dict[str, tuple[str, float, float]] = {
    "optimizer.learning_rate": ("log_uniform", 1e-6, 1e-2),
    "model.hidden_size": ("log_uniform_int", 20, 200),
    "optimizer.momentum": ("one_minus_log_uniform", 0.01, 1.0),
    "train.input_noise": ("uniform", 0.0, 1.0),
}

Response = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def sample_space(
    space: Mapping[str, tuple[str, float, float]], count: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """``count`` draws of every key of ``space``.

    Distributions: ``uniform`` U[low, high]; ``log_uniform`` exp U[log low, log high];
    ``log_uniform_int`` the same rounded to an integer; ``one_minus_log_uniform`` 1 - log_uniform
    (Greff's momentum).
    """
    draws = {}
    for key, (kind, low, high) in space.items():
        if kind == "uniform":
            draws[key] = rng.uniform(low, high, count)
        elif kind in ("log_uniform", "log_uniform_int", "one_minus_log_uniform"):
            value = np.exp(rng.uniform(np.log(low), np.log(high), count))
            if kind == "log_uniform_int":
                value = np.round(value).astype(int)
            draws[key] = 1.0 - value if kind == "one_minus_log_uniform" else value
        else:
            raise ValueError(f"unknown distribution {kind!r}")
    return draws


def greff_like_response(sampled: Mapping[str, np.ndarray]) -> np.ndarray:
    """JSB-like NLL per step: a learning-rate valley (best near 1e-2.5), bigger is better, the
    rest barely matters; around 8.5 at the best settings, as Greff's best 10 %."""
    log_lr = np.log10(sampled["optimizer.learning_rate"])
    hidden = sampled["model.hidden_size"]
    return (
        8.5
        + 0.25 * (log_lr + 2.5) ** 2
        + 1.2 * np.log10(200.0 / hidden)
        + 0.05 * sampled["train.input_noise"]
    )


def _trial_id(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _curve(best_valid: float, best_epoch: int, epochs: int, rng: np.random.Generator) -> list:
    """A plausible curve: exponential decay to ``best_valid`` at ``best_epoch``, then a slow rise."""
    curve = []
    for epoch in range(1, epochs + 1):
        gap = 3.0 * np.exp(-4.0 * epoch / max(best_epoch, 1))
        rise = 0.01 * max(epoch - best_epoch, 0)
        valid = best_valid + gap + rise - 3.0 * np.exp(-4.0)
        valid = max(valid, best_valid) if epoch != best_epoch else best_valid
        train = valid - 0.1 * epoch / epochs + rng.normal(0, 0.01)
        curve.append({"epoch": epoch, "train_loss": float(train), "valid_loss": float(valid)})
    return curve


def synthetic_study(
    cell_offsets: Mapping[str, float],
    trials: int = 50,
    seed: int = 0,
    dataset: str = "jsb_chorales",
    study: str = "synthetic",
    space: Mapping[str, tuple[str, float, float]] | None = None,
    response: Response = greff_like_response,
    noise: float = 0.05,
    valid_noise: float = 0.02,
    diverge_above_learning_rate: float | None = 5e-3,
    diverge_probability: float = 0.5,
    with_sampled: bool = True,
    max_epochs: int = 20,
    paired: bool = False,
    cell_options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Records of a random-search study with known effects.

    Each trial's test metric is ``response(sampled) + cell_offsets[cell] + N(0, noise^2)``; its
    best validation metric is the test metric plus ``N(0, valid_noise^2)``. Trials with a learning
    rate above ``diverge_above_learning_rate`` diverge with ``diverge_probability`` (stopped =
    'diverged', no valid epoch), as large learning rates do.

    Args:
      cell_offsets: planted offset of each cell's metric (lower is better), e.g. ``{'vanilla': 0,
        'nfg': 0.5}``.
      trials: trials per cell.
      seed: the only source of randomness.
      dataset, study: the record's names.
      space: the search space (default ``GREFF_SPACE``); keys are dotted config keys.
      response: the noiseless metric as a function of the sampled values.
      noise, valid_noise: standard deviations of the test noise and of valid - test.
      diverge_above_learning_rate: None turns divergence off.
      diverge_probability: chance that a trial above that learning rate diverges.
      with_sampled: write the ``sampled`` block (issue 5); without it, only ``hyperparameters``.
      max_epochs: length of the longest curve.
      paired: every cell gets the same draws and seeds (``search.paired``), else its own.
      cell_options: the options every cell is built with (``+cell.options.KEY=VALUE``).

    Returns:
      One record (a dict of the current schema) per trial, cells in ``cell_offsets`` order.
    """
    space = dict(GREFF_SPACE if space is None else space)
    rng = np.random.default_rng(seed)
    records = []
    shared = sample_space(space, trials, rng) if paired else None
    for cell, offset in cell_offsets.items():
        sampled = shared if paired else sample_space(space, trials, rng)
        test = response(sampled) + offset + rng.normal(0.0, noise, trials)
        valid = test + rng.normal(0.0, valid_noise, trials)
        learning_rate = sampled.get("optimizer.learning_rate", np.full(trials, 1e-3))
        diverges = (
            np.zeros(trials, bool)
            if diverge_above_learning_rate is None
            else (learning_rate > diverge_above_learning_rate)
            & (rng.random(trials) < diverge_probability)
        )
        for index in range(trials):
            values = {key: _python(array[index]) for key, array in sampled.items()}
            records.append(
                _record(
                    cell=cell,
                    dataset=dataset,
                    study=study,
                    seed=seed * 100_000 + (index if paired else len(records)),
                    values=values,
                    test=float(test[index]),
                    valid=float(valid[index]),
                    diverged=bool(diverges[index]),
                    with_sampled=with_sampled,
                    max_epochs=max_epochs,
                    rng=rng,
                    index=index,
                    population=trials,
                    search=search_config(space),
                    cell_options=dict(cell_options or {}),
                )
            )
    return records


def search_config(space: Mapping[str, tuple[str, float, float]]) -> dict[str, Any]:
    """``space`` in the config layout of issue 5 (``conf/search/*.yaml``: ``{'space': {key:
    {'distribution', 'low', 'high'[, 'integer']}}}``)."""
    specs = {}
    for key, (kind, low, high) in space.items():
        spec = {"distribution": kind.removesuffix("_int"), "low": low, "high": high}
        if kind.endswith("_int"):
            spec["integer"] = True
        specs[key] = spec
    return {"space": specs}


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _record(
    *,
    cell: str,
    dataset: str,
    study: str,
    seed: int,
    values: dict[str, Any],
    test: float,
    valid: float,
    diverged: bool,
    with_sampled: bool,
    max_epochs: int,
    rng: np.random.Generator,
    index: int,
    population: int,
    search: dict[str, Any],
    cell_options: dict[str, Any],
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cell": {"name": cell, "options": cell_options},
        "dataset": {"name": dataset, "options": {}},
        "model": {"hidden_size": 100, "num_layers": 1, "recurrence": "fast"},
        "optimizer": {"name": "sgd", "learning_rate": 1e-3, "momentum": 0.9, "nesterov": True},
        "train": {"batch_size": 1, "input_noise": 0.0, "max_epochs": max_epochs, "patience": 5},
        "seed": seed,
        "study": study,
        "search": search | {"sampled": values},
    }
    for key, value in values.items():
        _set_dotted(config, key, value)
    best_epoch = int(rng.integers(max(2, max_epochs // 3), max_epochs + 1))
    if diverged:
        epochs = int(rng.integers(1, 4))
        curve = [
            {"epoch": e, "train_loss": float("nan"), "valid_loss": float("nan")}
            for e in range(1, epochs + 1)
        ]
        metrics = {
            "metric": "nll_per_step",
            "epochs_run": epochs,
            "best_epoch": 0,
            "stopped": "diverged",
            "best_valid": None,
            "test_at_best": None,
        }
    else:
        epochs = min(max_epochs, best_epoch + 5)
        curve = _curve(valid, best_epoch, epochs, rng)
        metrics = {
            "metric": "nll_per_step",
            "epochs_run": epochs,
            "best_epoch": best_epoch,
            "stopped": "early" if epochs < max_epochs else "max_epochs",
            "best_valid": valid,
            "test_at_best": test,
            "best_valid_loss": valid,
            "test_loss": test,
        }
    hidden = int(config["model"]["hidden_size"])
    record = {
        "record_version": 1,
        "trial_id": _trial_id(config),
        "study": study,
        "cell": cell,
        "dataset": dataset,
        "seed": seed,
        "hyperparameters": {
            "hidden_size": hidden,
            "num_layers": 1,
            "optimizer": "sgd",
            "learning_rate": config["optimizer"]["learning_rate"],
            "momentum": config["optimizer"]["momentum"],
            "clip_norm": None,
            "clip_value": None,
            "batch_size": 1,
            "input_noise": config["train"]["input_noise"],
            "forget_bias": None,
        },
        "parameters": 4 * hidden * (88 + hidden + 1) + 3 * hidden + 88 * (hidden + 1),
        "metrics": metrics,
        "curve": curve,
        "wall_seconds": float(10 + epochs * 0.5),
        "compile_seconds": 2.0,
        "population": {
            "size": population,
            "index": index,
            "padded_hidden_size": hidden,
            "devices": 1,
            "init_seconds": 0.5,
            "epochs_seconds": float(epochs * 0.5),
        },
        "started_unix": 1.8e9,
        "config": config,
        "environment": {"jax": "synthetic", "device_kind": "cpu", "git_commit": None},
    }
    if with_sampled:
        record["sampled"] = values
    return record


def write_records(records: list[dict[str, Any]], directory: Path) -> list[Path]:
    """Write each record to ``directory/<dataset>/<cell>/records/<trial_id>.json``."""
    paths = []
    for record in records:
        path = Path(directory) / record["dataset"] / record["cell"] / "records"
        path.mkdir(parents=True, exist_ok=True)
        path = path / f"{record['trial_id']}.json"
        path.write_text(json.dumps(record, indent=1, allow_nan=True))
        paths.append(path)
    return paths
