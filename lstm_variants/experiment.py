"""From a resolved config (plain dict) to a trained run and its record.

This is the seam between configuration and code: the Hydra entry point (``cli``), tests and
notebooks all call ``run_trial`` with the same dict, so a run is reproducible from (config, seed)
alone and its record says everything needed to repeat it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lstm_variants.data import SequenceDataset, load_dataset
from lstm_variants.errors import ConfigError
from lstm_variants.initializers import make_initializer
from lstm_variants.model import SequenceModel
from lstm_variants.optimizers import make_optimizer
from lstm_variants.records import RECORD_VERSION, environment, trial_id, write_json_atomic
from lstm_variants.train import TrainSettings, parameter_count, train_run


def cell_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Cell attributes from ``cfg['cell']['options']`` and the initialisers in ``cfg['model']['init']``."""
    init = cfg["model"]["init"]
    options = {
        "kernel_init": make_initializer(init["input"], init.get("input_scale", 1.0)),
        "recurrent_kernel_init": make_initializer(
            init["recurrent"], init.get("recurrent_scale", 1.0)
        ),
        "peephole_init": make_initializer(init["peephole"], init.get("peephole_scale", 0.1)),
        "bias_init": make_initializer(init["bias"], init.get("bias_scale", 1.0)),
    }
    return options | dict(cfg["cell"].get("options") or {})


def build_model(cfg: Mapping[str, Any], data: SequenceDataset) -> SequenceModel:
    """The sequence model of ``cfg`` sized for ``data``."""
    name = cfg["cell"]["name"]
    model_cfg = cfg["model"]
    model = SequenceModel(
        cell=name,
        hidden_size=int(model_cfg["hidden_size"]),
        output_size=data.output_size,
        num_layers=int(model_cfg.get("num_layers", 1)),
        readout_at=data.target_at,
        cell_options=tuple(sorted(cell_options(cfg).items())),
        recurrence=model_cfg.get("recurrence", "fast"),
        unroll=int(model_cfg.get("unroll", 1)),
    )
    # Fail now, with the cell's own message, rather than inside the compiled program.
    try:
        model.cell_template()
    except TypeError as error:
        raise ConfigError(f"invalid option for cell '{name}': {error}") from None
    return model


def train_settings(cfg: Mapping[str, Any]) -> TrainSettings:
    known = {field for field in TrainSettings.__dataclass_fields__}
    unknown = set(cfg["train"]) - known
    if unknown:
        raise ConfigError(f"unknown train option(s) {sorted(unknown)}; valid: {sorted(known)}")
    return TrainSettings(**cfg["train"])


def hyperparameters(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The values a comparison table groups and regresses on, flat."""
    optimizer = cfg["optimizer"]
    return {
        "hidden_size": cfg["model"]["hidden_size"],
        "num_layers": cfg["model"].get("num_layers", 1),
        "optimizer": optimizer["name"],
        "learning_rate": optimizer["learning_rate"],
        "momentum": optimizer.get("momentum"),
        "clip_norm": optimizer.get("clip_norm"),
        "clip_value": optimizer.get("clip_value"),
        "batch_size": cfg["train"]["batch_size"],
        "input_noise": cfg["train"].get("input_noise", 0.0),
        "forget_bias": (cfg["cell"].get("options") or {}).get("forget_bias"),
    }


def run_trial(
    cfg: Mapping[str, Any], output_dir: Path, progress: bool = True
) -> tuple[Path, dict | None]:
    """Train the trial ``cfg`` describes unless its record exists; return (record path, record).

    The record is ``output_dir/records/<trial_id>.json``. When it exists already (and
    ``cfg['overwrite']`` is false) nothing is trained and the record returned is None.
    """
    tid = trial_id(dict(cfg))
    path = Path(output_dir) / "records" / f"{tid}.json"
    if path.exists() and not cfg.get("overwrite", False):
        return path, None

    data = load_dataset(
        cfg["dataset"]["name"],
        data_dir=cfg.get("data_dir"),
        **(cfg["dataset"].get("options") or {}),
    )
    model = build_model(cfg, data)
    optimizer = make_optimizer(cfg["optimizer"])
    settings = train_settings(cfg)
    started = time.time()
    result = train_run(model, optimizer, data, settings, seed=int(cfg["seed"]), progress=progress)
    record = {
        "record_version": RECORD_VERSION,
        "trial_id": tid,
        "study": cfg.get("study", "single"),
        "cell": cfg["cell"]["name"],
        "dataset": cfg["dataset"]["name"],
        "seed": int(cfg["seed"]),
        "hyperparameters": hyperparameters(cfg),
        "parameters": parameter_count(result.params),
        "metrics": result.metrics,
        "curve": result.curve,
        "wall_seconds": result.wall_seconds,
        "compile_seconds": result.compile_seconds,
        "started_unix": started,
        "config": dict(cfg),
        "environment": environment(),
    }
    write_json_atomic(path, record)
    return path, record
