"""Optimisers from config: optax SGD with Nesterov momentum (Greff et al.) or Adam, after gradient
clipping by global norm and per value, as one ``optax.chain``.

SGD's step size is the learning rate eta, or with ``learning_rate_scale: one_minus_momentum``
eta (1 - mu), as Greff et al. (2017) describe their training: with momentum mu a constant
gradient g moves the parameters by eta g / (1 - mu) a step in the long run, and the rescaling
makes that eta g whatever the momentum, so that the learning rate and the momentum drawn by a
search do not stand in for each other.

Nesterov SGD here is optax's (Bengio et al. 2013's form of Sutskever's), which takes the same
gradients at the same points as Greff et al.'s library (IDSIA brainstorm's ``NesterovStep``:
v <- mu v, theta <- theta + v, g at that point, v <- v - eta g, theta <- theta - eta g). The two
differ in the point they hold between updates: brainstorm's theta_t, optax's lookahead
theta_t + mu v_t, so validation, test and saved parameters are read at the lookahead point
(``tests/test_optimizers.py``; on JSB a few tenths of a nat apart early in training, about
0.01 nats near convergence).

In a population every trial has its own learning rate, momentum and clipping thresholds, so these
are not Python constants but arrays carried in the optimizer state (``optax.inject_hyperparams``),
one per member under ``jax.vmap``. Clipping that is off is a threshold of +inf, which leaves every
finite gradient exactly as it is, so one compiled program serves clipped and unclipped members.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from lstm_variants.errors import ConfigError

OPTIMIZERS = ("sgd", "adam")
# What SGD's learning rate is multiplied by (module docstring).
LEARNING_RATE_SCALES = ("none", "one_minus_momentum")


MEMBER_HYPERPARAMETERS = ("learning_rate", "momentum", "clip_norm", "clip_value")


def member_hyperparameters(cfg: Mapping[str, Any]) -> dict[str, float]:
    """The per-trial numbers of an optimizer config, as floats (clipping off is +inf).

    Raises:
      ConfigError: the optimizer is unknown.
    """
    if cfg["name"] not in OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer '{cfg['name']}'; valid optimizers: {', '.join(OPTIMIZERS)}"
        )

    def threshold(key: str) -> float:
        return math.inf if cfg.get(key) is None else float(cfg[key])

    return {
        "learning_rate": float(cfg["learning_rate"]),
        "momentum": float(cfg.get("momentum") or 0.0),
        "clip_norm": threshold("clip_norm"),
        "clip_value": threshold("clip_value"),
    }


def make_member_optimizer(cfg: Mapping[str, Any]) -> Callable[..., optax.GradientTransformation]:
    """The optimizer of ``cfg`` with ``MEMBER_HYPERPARAMETERS`` as injectable arrays.

    Args:
      cfg: ``name`` ('sgd' or 'adam') and, for sgd, ``nesterov`` and ``learning_rate_scale``
        (``LEARNING_RATE_SCALES``, default 'none'); the numbers (``learning_rate``, ``momentum``,
        ``clip_norm``, ``clip_value``) come per member from ``member_hyperparameters``.

    Returns:
      ``optax.inject_hyperparams`` of a factory: call it with the member's hyperparameters
      (arrays or floats) to get a transformation whose state carries them. The same settings
      give the same object, by which compiled population programs are kept
      (``population._COMPILED``).
    """
    name, nesterov = cfg["name"], bool(cfg.get("nesterov", False))
    scale = cfg.get("learning_rate_scale") or "none"
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer '{name}'; valid optimizers: {', '.join(OPTIMIZERS)}")
    if scale not in LEARNING_RATE_SCALES:
        raise ConfigError(
            f"optimizer.learning_rate_scale must be one of {', '.join(LEARNING_RATE_SCALES)}, "
            f"got {scale!r}"
        )
    return _member_optimizer(name, nesterov, scale)


@functools.cache
def _member_optimizer(
    name: str, nesterov: bool, scale: str = "none"
) -> Callable[..., optax.GradientTransformation]:
    def factory(learning_rate, momentum, clip_norm, clip_value):
        if name == "sgd":
            if scale == "one_minus_momentum":
                learning_rate = learning_rate * (1.0 - momentum)
            # momentum 0 is exactly plain SGD: the trace is g + 0 * previous.
            core = optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)
        else:
            core = optax.adam(learning_rate)
        return optax.chain(clip_by_global_norm(clip_norm), optax.clip(clip_value), core)

    return optax.inject_hyperparams(factory)


def clip_by_global_norm(max_norm) -> optax.GradientTransformation:
    """optax's ``clip_by_global_norm``, except that ``max_norm`` = +inf passes updates through.

    optax scales by max_norm / ||g|| whenever ||g|| >= max_norm; a finite gradient whose squared
    norm overflows float32 has ||g|| = inf, and inf / inf made it NaN although clipping was off.
    """
    inner = optax.clip_by_global_norm(max_norm)

    def update(updates, state, params=None):
        clipped, state = inner.update(updates, state, params)
        off = jnp.isinf(max_norm)
        return jax.tree.map(lambda c, u: jnp.where(off, u, c), clipped, updates), state

    return optax.GradientTransformation(inner.init, update)
