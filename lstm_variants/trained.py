"""A recorded trial rebuilt from its record and its saved parameters.

    trial = load_trial("multirun/greff_jsb/records/0123456789abcdef.json")
    trial.layer(0)["b_f"]           # the learned forget-gate bias, by the paper's name
    trial.evaluate("test")          # the record's test metric, recomputed from the saved file

The model and the data come from the record's config, the parameters from ``<trial_id>.npz``
beside the record (``params_file``), checked against the sha256 the record holds.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lstm_variants.data import SequenceDataset, availability, load_dataset
from lstm_variants.errors import RecordError
from lstm_variants.experiment import build_model, train_settings
from lstm_variants.losses import metric_value
from lstm_variants.model import SequenceModel
from lstm_variants.params_file import load_params
from lstm_variants.records import read_record
from lstm_variants.train import make_eval_fn, split_arrays

SPLITS = ("train", "valid", "test")


class ParameterNameError(KeyError):
    """A parameter name the layer does not have (e.g. ``b_f`` of CIFG, whose f is 1 - i)."""

    def __str__(self) -> str:  # KeyError's own quotes the whole message
        return str(self.args[0])


class LayerParams(dict):
    """One layer's parameters by name; a name it lacks says which names it has."""

    def __init__(self, params, description: str):
        super().__init__(params)
        self.description = description

    def __missing__(self, name):
        raise ParameterNameError(
            f"{self.description} has no parameter '{name}'; it has: {', '.join(sorted(self))}"
        )


@dataclasses.dataclass(frozen=True)
class TrainedTrial:
    """A recorded trial with its trained parameters, its model and its data.

    Attributes:
      record_path, record: the record file and what it holds.
      variables: the model's variables as Flax takes them, ``{"params": {...}}``:
        ``trial.model.apply(trial.variables, inputs, lengths)`` runs the trained network.
      model: the ``SequenceModel`` the record's config builds.
      data: the dataset it was trained on (checked against the record's ``data_sha256``).
    """

    record_path: Path
    record: dict[str, Any]
    variables: dict[str, Any]
    model: SequenceModel
    data: SequenceDataset

    @property
    def params(self) -> dict[str, Any]:
        """The old name of ``variables``, kept for code written against it."""
        warnings.warn(
            "TrainedTrial.params is TrainedTrial.variables (Flax's {'params': ...})",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.variables

    def layer(self, index: int = 0) -> dict[str, np.ndarray]:
        """Layer ``index``'s parameters by the papers' names (``W_z``, ``R_i``, ``b_f``, ``p_o``...)."""
        layers = self.variables["params"]
        count = sum(name.startswith("layer_") for name in layers)
        if not 0 <= index < count:
            raise RecordError(
                f"no layer {index}: this trial has {count} layer(s), 0 to {count - 1}"
            )
        cell = self.record["config"]["cell"]["name"]
        return LayerParams(
            layers[f"layer_{index}"], description=f"layer {index} of this {cell} trial"
        )

    def evaluate(self, split: str = "test") -> dict[str, float]:
        """The mean frame loss, the dataset's metric and (where the task has a criterion) the
        solved fraction of ``split``, computed from the saved parameters."""
        if split not in SPLITS:
            raise RecordError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
        batch_size = train_settings(self.record["config"]).eval_batch_size
        evaluate = jax.jit(make_eval_fn(self.model, self.data, batch_size))
        loss, solved = evaluate(self.variables, *split_arrays(getattr(self.data, split)))
        metric = self.data.metric
        result = {"loss": float(loss), metric: metric_value(float(loss), metric)}
        if not np.isnan(solved):
            result["solved_fraction"] = float(solved)
        return result


def recorded_data_dir(cfg: dict[str, Any]) -> str | None:
    """The record's data directory where it holds every file its dataset reads (``availability``
    says 'local'); else None, which looks where a run would ($LSTM_VARIANTS_DATA_DIR, or the
    cache). A directory that exists but lacks the files (another machine's layout) is not where
    they are, nor where to download them."""
    recorded = cfg.get("data_dir")
    if recorded and availability(cfg["dataset"]["name"], recorded).startswith("local "):
        return recorded
    return None


def load_trial(record_path: str | Path, data_dir: str | Path | None = None) -> TrainedTrial:
    """The trial of the record at ``record_path``: its model and data rebuilt from the record's
    config, and its trained parameters checked against the record.

    Args:
      record_path: a record written by ``lstm-variants`` (``records/<trial_id>.json``).
      data_dir: where the dataset's files are. Default: the record's data directory where it
        holds them, else ``$LSTM_VARIANTS_DATA_DIR`` or the cache, as for a run (a record copied
        from another machine).

    Raises:
      RecordError: the record or its parameter file cannot be used (``params_file.load_params``),
        or the data rebuilt here is not the data the trial was trained on (``data_sha256``).
      DataError: the dataset's files are not found.
    """
    record_path = Path(record_path)
    record = read_record(record_path)
    params = load_params(record_path, record)
    cfg = record["config"]
    if data_dir is None:
        data_dir = recorded_data_dir(cfg)
    data = load_dataset(
        cfg["dataset"]["name"], data_dir=data_dir, **(cfg["dataset"].get("options") or {})
    )
    recorded = record.get("data_sha256")  # absent in records written before it was kept
    if recorded and data.fingerprint() != recorded:
        raise RecordError(
            f"{record_path}: the {cfg['dataset']['name']} data found here is not the data this "
            "trial was trained on (its splits' sha256 differs from the record's data_sha256): "
            "an edited or different file, or another version of its generator"
        )
    model = build_model(cfg, data)
    return TrainedTrial(
        record_path=record_path, record=record, variables=params, model=model, data=data
    )
