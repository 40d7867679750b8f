"""Initialisers per weight kind, chosen by name so that configs and run records can name them.

Greff et al. (2017) and Jozefowicz et al. (2015) differ in how they initialise each kind of weight
(input, recurrent, peephole, bias), and comparisons between cells are only fair when that choice is
explicit. This module maps a recorded name (plus an optional scale) to a Flax initialiser.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from lstm_variants.config_values import INITIALIZER_NAMES
from lstm_variants.errors import ConfigError

Initializer = Callable[[jax.Array, tuple[int, ...], jnp.dtype], jax.Array]


def scaled_uniform(scale: float) -> Initializer:
    """U(-scale, scale), the 'scaled uniform' initialiser."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, minval=-scale, maxval=scale)

    return init


def in_float32(init: Initializer) -> Initializer:
    """``init`` computed in float32 and cast, for dtypes narrower than float32: the QR of the
    orthogonal initialiser has no bfloat16 or float16 kernel on CPU. float32 and float64 draws
    are left exactly as they are."""

    def init_as(key, shape, dtype=jnp.float32):
        if jnp.finfo(dtype).bits >= 32:
            return init(key, shape, dtype)
        return init(key, shape, jnp.float32).astype(dtype)

    return init_as


def make_initializer(name: str, scale: float = 1.0) -> Initializer:
    """Return the initialiser called ``name``; the same object for the same name and scale, so
    that models built from equal configs are equal and find the population programs compiled
    for them earlier in the process (``population._COMPILED``). The scale is one key however it
    is given (``make_initializer("uniform")`` is ``make_initializer("uniform", 1.0)``).

    Args:
      name: one of ``INITIALIZER_NAMES``.
      scale: gain of ``orthogonal``, ``glorot_uniform`` and ``lecun_normal`` (their weights times
        ``scale``; at 1.0 exactly Flax's initialisers), half-width of ``uniform``, standard
        deviation of ``normal``. ``zeros`` takes none: a scale other than 1.0 is an error, as it
        would be recorded while changing nothing. A negative or non-finite scale is an error:
        ``jax.random.uniform`` clips its draws to ``minval``, so U(0.1, -0.1) would fill every
        weight with 0.1, and a negative gain or deviation only flips signs.

    Returns:
      A Flax initialiser ``(key, shape, dtype) -> array``.
    """
    scale = float(scale)
    if not (math.isfinite(scale) and scale >= 0) and name in SCALE_MEANINGS:
        raise ConfigError(
            f"the {name} initialiser's scale ({SCALE_MEANINGS[name]}) must be a finite number "
            f">= 0, got {scale}: set the model.init.*_scale of that weight kind to one"
        )
    return _initializer(name, scale)


SCALE_MEANINGS = {
    "glorot_uniform": "a gain",
    "orthogonal": "a gain",
    "lecun_normal": "a gain",
    "uniform": "the half-width of U(-scale, scale)",
    "normal": "a standard deviation",
}


@functools.cache
def _initializer(name: str, scale: float) -> Initializer:
    return named(_unnamed_initializer(name, scale), f"{name}(scale={scale!r})")


def named(init: Initializer, name: str) -> Initializer:
    """``init`` under ``name``, e.g. ``orthogonal(scale=1.5)``: a population checkpoint's identity
    names a model's initialisers so (``population.model_description``), where the closures'
    own names (``init``, ``init_as``) tell neither the kind nor the scale apart."""

    def initializer(key, shape, dtype=jnp.float32):
        return init(key, shape, dtype)

    initializer.__name__ = initializer.__qualname__ = name
    return initializer


def _unnamed_initializer(name: str, scale: float) -> Initializer:
    match name:
        case "glorot_uniform":  # Flax's glorot_uniform is variance_scaling(1.0, "fan_avg", ...)
            return nn.initializers.variance_scaling(scale**2, "fan_avg", "uniform")
        case "orthogonal":
            return in_float32(nn.initializers.orthogonal(scale))
        case "uniform":
            return scaled_uniform(scale)
        case "normal":
            return nn.initializers.normal(scale)
        case "lecun_normal":
            return nn.initializers.variance_scaling(scale**2, "fan_in", "truncated_normal")
        case "zeros":
            if scale != 1.0:
                raise ConfigError(
                    f"the zeros initialiser takes no scale, got {scale}: give scale 1.0, "
                    "or choose uniform or normal"
                )
            return nn.initializers.zeros_init()
    raise ConfigError(
        f"unknown initialiser '{name}'; valid initialisers: {', '.join(INITIALIZER_NAMES)}"
    )
