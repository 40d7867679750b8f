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
theta_t + mu v_t (``tests/test_optimizers.py``; on JSB a few tenths of a nat apart early in
training, about 0.01 nats near convergence). Training is the same either way; ``evaluate_at``
says which point the records read (every validation, hence early stopping and the best epoch, the
best parameters kept, the test at best and the saved parameters):

- ``lookahead`` (default): optax's parameters p_t as they are;
- ``theta``: Sutskever's (and Greff et al.'s) theta_t = p_t - mu v_t = p_t + mu eta' m_t, with
  m_t optax's trace (v_t = -eta' m_t) and eta' the step size (eta, or eta (1 - mu)), recovered
  from the optimizer state (``sutskever_theta``). Only Nesterov SGD has two points to choose
  from: Adam and heavy-ball momentum hold theta_t itself.

In a population every trial has its own learning rate, momentum and clipping thresholds, so these
are not Python constants but arrays carried in the optimizer state (``optax.inject_hyperparams``),
one per member under ``jax.vmap``. Clipping that is off is a threshold of +inf, which leaves every
finite gradient exactly as it is, so one compiled program serves clipped and unclipped members.
"""

from __future__ import annotations

import dataclasses
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
# Which point of Nesterov SGD the records read (module docstring).
EVALUATION_POINTS = ("lookahead", "theta")


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


@dataclasses.dataclass(frozen=True)
class MemberOptimizer:
    """A member's optimizer: ``transform(**hyperparameters)`` is its ``optax`` transformation,
    and ``evaluation_point`` the parameters its records read (``EVALUATION_POINTS``).

    Attributes:
      transform: ``optax.inject_hyperparams`` of the factory of ``MEMBER_HYPERPARAMETERS``.
      learning_rate_scale: one of ``LEARNING_RATE_SCALES``.
      evaluate_at: one of ``EVALUATION_POINTS``.
      name: one of ``OPTIMIZERS``.
      nesterov: whether SGD's momentum is Nesterov's.
    """

    transform: Callable[..., optax.GradientTransformation]
    learning_rate_scale: str = "none"
    evaluate_at: str = "lookahead"
    name: str = "sgd"
    nesterov: bool = True

    @property
    def settings(self) -> tuple[Any, ...]:
        """What ``transform`` was made from, in a form that is the same in every process: a
        population checkpoint's identity holds it."""
        return (self.name, self.nesterov, self.learning_rate_scale, self.evaluate_at)

    def __call__(self, **hyperparameters) -> optax.GradientTransformation:
        return self.transform(**hyperparameters)

    def evaluation_point(self, params, opt_state):
        """The parameters a member's records read, from its parameters and optimizer state."""
        if self.evaluate_at == "lookahead":
            return params
        return sutskever_theta(params, opt_state, self.learning_rate_scale)


def sutskever_theta(params, opt_state, learning_rate_scale: str = "none"):
    """theta_t = p_t + mu eta' m_t: Sutskever's parameters from optax's Nesterov lookahead p_t.

    optax steps p_{t+1} = p_t - eta' (g_t + mu m_{t+1}), m_{t+1} = g_t + mu m_t, with g_t taken
    at p_t; Sutskever's form (IDSIA brainstorm's ``NesterovStep``) holds theta_t and velocity
    v_t = -eta' m_t, and takes g_t at theta_t + mu v_t = p_t. eta' is the learning rate eta, or
    eta (1 - mu) under ``learning_rate_scale: one_minus_momentum``, computed as the optimizer
    does; mu and eta are the member's, from the ``inject_hyperparams`` state.
    """
    hyper = opt_state.hyperparams
    momentum, step = hyper["momentum"], hyper["learning_rate"]
    if learning_rate_scale == "one_minus_momentum":
        step = step * (1.0 - momentum)
    trace = optax.tree_utils.tree_get(opt_state, "trace")
    return jax.tree.map(lambda p, m: p + momentum * step * m, params, trace)


def make_member_optimizer(cfg: Mapping[str, Any]) -> MemberOptimizer:
    """The optimizer of ``cfg`` with ``MEMBER_HYPERPARAMETERS`` as injectable arrays.

    Args:
      cfg: ``name`` ('sgd' or 'adam') and, for sgd, ``nesterov``, ``learning_rate_scale``
        (``LEARNING_RATE_SCALES``, default 'none') and ``evaluate_at`` (``EVALUATION_POINTS``,
        default 'lookahead'; 'theta' needs nesterov); the numbers (``learning_rate``,
        ``momentum``, ``clip_norm``, ``clip_value``) come per member from
        ``member_hyperparameters``.

    Returns:
      A ``MemberOptimizer``: call it with the member's hyperparameters (arrays or floats) to get
      a transformation whose state carries them. The same settings give the same object, by
      which compiled population programs are kept (``population._COMPILED``).

    Raises:
      ConfigError: an unknown optimizer, scale or evaluation point, or ``evaluate_at`` other
        than 'lookahead' without Nesterov SGD.
    """
    name, nesterov = cfg["name"], bool(cfg.get("nesterov", False))
    scale = cfg.get("learning_rate_scale") or "none"
    evaluate_at = cfg.get("evaluate_at") or "lookahead"
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer '{name}'; valid optimizers: {', '.join(OPTIMIZERS)}")
    if scale not in LEARNING_RATE_SCALES:
        raise ConfigError(
            f"optimizer.learning_rate_scale must be one of {', '.join(LEARNING_RATE_SCALES)}, "
            f"got {scale!r}"
        )
    if evaluate_at not in EVALUATION_POINTS:
        raise ConfigError(
            f"optimizer.evaluate_at must be one of {', '.join(EVALUATION_POINTS)}, "
            f"got {evaluate_at!r}"
        )
    if evaluate_at != "lookahead" and not (name == "sgd" and nesterov):
        raise ConfigError(
            f"optimizer.evaluate_at={evaluate_at} needs optimizer=sgd with optimizer.nesterov=true "
            "(other optimizers hold theta_t itself): drop it, or use Nesterov SGD"
        )
    return _member_optimizer(name, nesterov, scale, evaluate_at)


@functools.cache
def _member_optimizer(
    name: str, nesterov: bool, scale: str = "none", evaluate_at: str = "lookahead"
) -> MemberOptimizer:
    def factory(learning_rate, momentum, clip_norm, clip_value):
        if name == "sgd":
            if scale == "one_minus_momentum":
                learning_rate = learning_rate * (1.0 - momentum)
            # momentum 0 is exactly plain SGD: the trace is g + 0 * previous.
            core = optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)
        else:
            core = optax.adam(learning_rate)
        return optax.chain(clip_by_global_norm(clip_norm), optax.clip(clip_value), core)

    return MemberOptimizer(optax.inject_hyperparams(factory), scale, evaluate_at, name, nesterov)


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
