"""The measurements for several cells, initialisers, recurrent gains and clipping thresholds.

Every study starts from a resolved config (a plain dict, the ``lstm-variants-diagnose`` config: the
usual cell/model/dataset/optimizer/train sections plus ``diagnose``) and returns plain rows, so the
CLI, tests and notebooks share them. A model is either *fresh* (initialised exactly as training would
initialise it, from the config's seed) or *trained* briefly by the harness's own trainer
(``population.train_run``, with the config's optimizer and train settings).

Initialisers are compared at equal *gain* s, chosen so that the spectral radius of an H x H recurrent
matrix is about s for each of them:

    orthogonal      Q s                 (every singular value s)
    glorot_uniform  s U(-sqrt(3/H), sqrt(3/H))   (variance 1/H: radius about 1 by the circular law)
    normal          N(0, s^2 / H)       ("scaled normal")

so a tanh RNN with s > 1 is in the exploding regime and one with s < 1 in the vanishing one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lstm_variants.data import SequenceDataset, load_dataset
from lstm_variants.diagnostics.gate_stats import GateReport, gate_report
from lstm_variants.diagnostics.gradient_flow import FlowProfile, gradient_flow
from lstm_variants.errors import ConfigError
from lstm_variants.experiment import build_model, member_of, train_settings
from lstm_variants.initializers import Initializer, make_initializer
from lstm_variants.model import SequenceModel
from lstm_variants.optimizers import make_member_optimizer
from lstm_variants.population import train_run

STUDY_INITIALIZERS = ("glorot_uniform", "orthogonal", "normal")


def recurrent_initializer(name: str, gain: float, hidden_size: int) -> Initializer:
    """The recurrent initialiser ``name`` at spectral gain ``gain`` (see the module docstring).

    Raises:
      ConfigError: ``name`` is not one of ``STUDY_INITIALIZERS``.
    """
    if name == "orthogonal":
        return make_initializer("orthogonal", gain)
    if name == "normal":
        return make_initializer("normal", gain / math.sqrt(hidden_size))
    if name == "glorot_uniform":
        glorot = make_initializer("glorot_uniform")

        def scaled(key, shape, dtype=jnp.float32):
            return gain * glorot(key, shape, dtype)

        return scaled
    raise ConfigError(f"unknown study initialiser '{name}'; valid: {', '.join(STUDY_INITIALIZERS)}")


def with_recurrent_init(model: SequenceModel, name: str, gain: float) -> SequenceModel:
    """``model`` whose recurrent weights are initialised by ``recurrent_initializer``."""
    options = dict(model.cell_options)
    options["recurrent_kernel_init"] = recurrent_initializer(name, gain, model.hidden_size)
    return model.clone(cell_options=tuple(sorted(options.items(), key=lambda kv: kv[0])))


def cell_entry(entry: str | Mapping[str, Any]) -> tuple[str, dict[str, Any], str]:
    """(cell name, cell options, label) of a ``diagnose.cells`` entry.

    An entry is a cell name (``vanilla``) or a mapping ``{name: vanilla, options: {forget_bias: 3.0},
    label: "V, b_f = 3"}``; the label defaults to the name.
    """
    if isinstance(entry, str):
        return entry, {}, entry
    name = entry["name"]
    return name, dict(entry.get("options") or {}), str(entry.get("label") or name)


def config_for_cell(cfg: Mapping[str, Any], entry: str | Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` with its cell replaced by the ``diagnose.cells`` entry ``entry``.

    The config's own ``cell.options`` apply only when the entry names the config's cell.
    """
    name, options, _ = cell_entry(entry)
    out = copy.deepcopy(dict(cfg))
    inherited = (cfg["cell"].get("options") or {}) if cfg["cell"]["name"] == name else {}
    out["cell"] = {"name": name, "options": dict(inherited) | options}
    return out


def study_dataset(cfg: Mapping[str, Any]) -> SequenceDataset:
    """The config's dataset."""
    return load_dataset(
        cfg["dataset"]["name"],
        data_dir=cfg.get("data_dir"),
        **(cfg["dataset"].get("options") or {}),
    )


def fresh_variables(model: SequenceModel, data: SequenceDataset, seed: int):
    """The parameters training with ``seed`` starts from (the same key split as the trainer's)."""
    init_key, _ = jax.random.split(jax.random.key(seed))
    sample = jnp.asarray(data.train.inputs[:1, :1]), jnp.ones((1,), jnp.int32)
    return model.init(init_key, *sample, parameters_only=True)


def train_briefly(
    cfg: Mapping[str, Any], model: SequenceModel, data: SequenceDataset, progress: bool
):
    """(trained parameters, metrics) of ``model`` trained as ``cfg`` says (``population.train_run``)."""
    result = train_run(
        model,
        make_member_optimizer(cfg["optimizer"]),
        data,
        train_settings(cfg),
        member_of(cfg),
        progress=progress,
    )
    return result.params, result.metrics


def measure(
    diagnose: Mapping[str, Any], model: SequenceModel, variables, data: SequenceDataset
) -> tuple[FlowProfile, GateReport]:
    """Gradient flow and gate statistics of one model with the ``diagnose`` settings."""
    settings = flow_settings(diagnose)
    flow = gradient_flow(model, variables, data, **settings)
    common = {k: settings[k] for k in ("num_sequences", "split", "layer")}
    gates = gate_report(
        model, variables, data, mostly=float(diagnose["long_memory_mostly"]), **common
    )
    return flow, gates


def flow_settings(diagnose: Mapping[str, Any]) -> dict[str, Any]:
    """``gradient_flow``'s keyword arguments from the ``diagnose`` settings."""
    return {
        "num_sequences": int(diagnose["num_sequences"]),
        "split": diagnose["split"],
        "layer": diagnose.get("layer"),
        "first_lag": int(diagnose["first_lag"]),
        "last_lag": diagnose.get("last_lag"),
        "average": diagnose.get("average", "arithmetic"),
    }


def cell_study(
    cfg: Mapping[str, Any], data: SequenceDataset, progress: bool = True
) -> list[dict[str, Any]]:
    """Gradient flow and gates of every cell in ``cfg['diagnose']['cells']``, fresh and/or trained.

    Returns:
      One row per (cell, state): cell (the entry's label), state ('fresh' or 'trained'), flow (``FlowProfile``), gates
      (``GateReport``), metrics (the training metrics, None when fresh).
    """
    diagnose = cfg["diagnose"]
    cells = diagnose.get("cells") or [cfg["cell"]["name"]]
    rows = []
    for entry in cells:
        cell = cell_entry(entry)[2]
        cell_cfg = config_for_cell(cfg, entry)
        model = build_model(cell_cfg, data)
        for state in diagnose["states"]:
            if state == "fresh":
                variables, metrics = fresh_variables(model, data, int(cfg["seed"])), None
            elif state == "trained":
                variables, metrics = train_briefly(cell_cfg, model, data, progress)
            else:
                raise ConfigError(f"unknown model state '{state}'; valid: fresh, trained")
            flow, gates = measure(diagnose, model, variables, data)
            rows.append(
                {"cell": cell, "state": state, "flow": flow, "gates": gates, "metrics": metrics}
            )
    return rows


def init_study(cfg: Mapping[str, Any], data: SequenceDataset) -> list[dict[str, Any]]:
    """Fitted rates of freshly initialised models across cells, initialisers and recurrent gains.

    Reads ``cfg['diagnose']['init_study']``: ``cells``, ``initializers`` (``STUDY_INITIALIZERS``),
    ``gains``.

    Returns:
      One row per (cell, initializer, gain): the 'h' and 'c' rates (NaN without a cell state).
    """
    diagnose, study = cfg["diagnose"], cfg["diagnose"]["init_study"]
    rows = []
    for entry in study["cells"]:
        cell = cell_entry(entry)[2]
        model = build_model(config_for_cell(cfg, entry), data)
        for name in study["initializers"]:
            for gain in study["gains"]:
                variables = fresh_variables(
                    with_recurrent_init(model, name, float(gain)), data, int(cfg["seed"])
                )
                # The forward pass does not depend on the initialiser: measuring with ``model``
                # reuses one compiled program per cell.
                flow = gradient_flow(model, variables, data, **flow_settings(diagnose))
                rows.append(
                    {
                        "cell": cell,
                        "initializer": name,
                        "gain": float(gain),
                        **{f"rate_{k}": _rate(flow, k) for k in ("h", "c")},
                        "profile_h": flow.profiles["h"],
                    }
                )
    return rows


def clipping_study(
    cfg: Mapping[str, Any], data: SequenceDataset, progress: bool = True
) -> list[dict[str, Any]]:
    """Brief training at one initialiser and several gains, without and with gradient clipping.

    Reads ``cfg['diagnose']['clipping_study']``: ``cells``, ``initializer``, ``gains``, ``clip_norms``
    (null is no clipping) and ``optimizer`` (an optimizer section replacing the config's; null
    keeps it). Clipping changes training, not the measurement, so each row reports the rates before
    and after training and how training went.

    Returns:
      One row per (cell, gain, clip_norm): fresh and trained 'h' rates (NaN when every g(k), k >= 1,
      is 0: saturated units pass no gradient at all), the validation metric, how the run stopped
      ('early', 'max_epochs' or 'diverged').
    """
    diagnose, study = cfg["diagnose"], cfg["diagnose"]["clipping_study"]
    settings = flow_settings(diagnose)
    rows = []
    for entry in study["cells"]:
        cell = cell_entry(entry)[2]
        for gain in study["gains"]:
            for clip_norm in study["clip_norms"]:
                cell_cfg = config_for_cell(cfg, entry)
                # The study's own optimizer (if any) replaces the config's: with Adam, whose steps
                # do not scale with the gradient, an exploding gradient shows less than with SGD.
                optimizer = dict(study.get("optimizer") or cell_cfg["optimizer"])
                cell_cfg["optimizer"] = optimizer | {"clip_norm": clip_norm}
                base = build_model(cell_cfg, data)
                model = with_recurrent_init(base, study["initializer"], float(gain))
                fresh = fresh_variables(model, data, int(cfg["seed"]))
                trained, metrics = train_briefly(cell_cfg, model, data, progress)
                # ``base`` measures both: the forward pass does not depend on the initialiser.
                before = gradient_flow(base, fresh, data, **settings)
                after = gradient_flow(base, trained, data, **settings)
                rows.append(
                    {
                        "cell": cell,
                        "gain": float(gain),
                        "clip_norm": clip_norm,
                        "rate_h_fresh": _rate(before, "h"),
                        "rate_h_trained": _rate(after, "h"),
                        "metric": metrics["metric"],
                        "best_valid": metrics["best_valid"],
                        "stopped": metrics["stopped"],
                        "epochs_run": metrics["epochs_run"],
                    }
                )
    return rows


def _rate(flow: FlowProfile, name: str) -> float:
    fit = flow.fits.get(name)
    return float("nan") if fit is None else fit.rate


def rate_table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The decay-rate table of ``cell_study`` rows: rate per step and decades per 100 steps, h and c."""
    table = []
    for row in rows:
        entry = {"cell": row["cell"], "state": row["state"]}
        for name in ("h", "c"):
            fit = row["flow"].fits.get(name)
            entry[f"rate_{name}"] = np.nan if fit is None else fit.rate
            entry[f"decades_{name}"] = np.nan if fit is None else fit.decades_per_100_steps
            profile = row["flow"].profiles.get(name)
            entry[f"ratio_100_{name}"] = np.nan if profile is None else lag_ratio(profile, 1, 100)
        if row["metrics"] is not None:
            entry["valid_metric"] = row["metrics"]["best_valid"]
            entry["metric"] = row["metrics"].get("metric")
            entry["stopped"] = row["metrics"].get("stopped")
        table.append(entry)
    return table


def lag_ratio(profile: np.ndarray, start: int, stop: int) -> float:
    """g(stop) / g(start), measured rather than fitted (NaN when ``stop`` is beyond the profile)."""
    if stop >= len(profile) or not profile[start] > 0:
        return float("nan")
    return float(profile[stop] / profile[start])
