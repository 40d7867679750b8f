"""Optimisers from config: optax SGD with Nesterov momentum (Greff et al.) or Adam, with optional
gradient clipping by global norm or per value, as one ``optax.chain``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optax

from lstm_variants.errors import ConfigError

OPTIMIZERS = ("sgd", "adam")


def make_optimizer(cfg: Mapping[str, Any]) -> optax.GradientTransformation:
    """Build the optimiser described by ``cfg``.

    Args:
      cfg: ``name`` ('sgd' or 'adam'), ``learning_rate``; for sgd ``momentum`` and ``nesterov``;
        optional ``clip_norm`` (global-norm clipping) and ``clip_value`` (per-value clipping).

    Returns:
      The optax transformation, clipping first.
    """
    name = cfg["name"]
    if name == "sgd":
        core = optax.sgd(
            cfg["learning_rate"],
            momentum=cfg.get("momentum") or None,
            nesterov=cfg.get("nesterov", False),
        )
    elif name == "adam":
        core = optax.adam(cfg["learning_rate"])
    else:
        raise ConfigError(f"unknown optimizer '{name}'; valid optimizers: {', '.join(OPTIMIZERS)}")
    clipping = []
    if cfg.get("clip_norm") is not None:
        clipping.append(optax.clip_by_global_norm(cfg["clip_norm"]))
    if cfg.get("clip_value") is not None:
        clipping.append(optax.clip(cfg["clip_value"]))
    return optax.chain(*clipping, core)
