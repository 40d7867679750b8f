"""Initialisers per weight kind, chosen by name so that configs and run records can name them.

Greff et al. (2017) and Jozefowicz et al. (2015) differ in how they initialise each kind of weight
(input, recurrent, peephole, bias), and comparisons between cells are only fair when that choice is
explicit. This module maps a recorded name (plus an optional scale) to a Flax initialiser.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from lstm_variants.errors import ConfigError

Initializer = Callable[[jax.Array, tuple[int, ...], jnp.dtype], jax.Array]

INITIALIZER_NAMES = ("glorot_uniform", "orthogonal", "uniform", "normal", "lecun_normal", "zeros")


def scaled_uniform(scale: float) -> Initializer:
    """U(-scale, scale), the 'scaled uniform' initialiser."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, minval=-scale, maxval=scale)

    return init


def make_initializer(name: str, scale: float = 1.0) -> Initializer:
    """Return the initialiser called ``name``.

    Args:
      name: one of ``INITIALIZER_NAMES``.
      scale: gain of ``orthogonal``, half-width of ``uniform``, standard deviation of ``normal``;
        ignored by the others.

    Returns:
      A Flax initialiser ``(key, shape, dtype) -> array``.
    """
    match name:
        case "glorot_uniform":
            return nn.initializers.glorot_uniform()
        case "orthogonal":
            return nn.initializers.orthogonal(scale)
        case "uniform":
            return scaled_uniform(scale)
        case "normal":
            return nn.initializers.normal(scale)
        case "lecun_normal":
            return nn.initializers.lecun_normal()
        case "zeros":
            return nn.initializers.zeros_init()
    raise ConfigError(
        f"unknown initialiser '{name}'; valid initialisers: {', '.join(INITIALIZER_NAMES)}"
    )
