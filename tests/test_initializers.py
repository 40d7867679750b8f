"""Initialisers by name: each recorded scale changes the weights it says it changes."""

import jax
import numpy as np
import pytest
from flax import linen as nn

from lstm_variants.config_values import INITIALIZER_NAMES, VECTOR_INITIALIZER_NAMES
from lstm_variants.errors import ConfigError
from lstm_variants.initializers import make_initializer

KEY, SHAPE = jax.random.key(3), (6, 4)


@pytest.mark.parametrize(
    "name, flax_init",
    [
        ("glorot_uniform", nn.initializers.glorot_uniform()),
        ("lecun_normal", nn.initializers.lecun_normal()),
    ],
)
def test_scale_is_a_gain_and_one_is_flax_exactly(name, flax_init):
    plain = make_initializer(name)(KEY, SHAPE)
    np.testing.assert_array_equal(
        plain, flax_init(KEY, SHAPE)
    )  # committed records stay as they are
    np.testing.assert_allclose(make_initializer(name, 0.5)(KEY, SHAPE), 0.5 * plain, rtol=1e-6)


def test_zeros_refuses_a_scale_it_would_ignore():
    np.testing.assert_array_equal(make_initializer("zeros")(KEY, SHAPE), np.zeros(SHAPE))
    with pytest.raises(ConfigError, match="the zeros initialiser takes no scale, got 0.5"):
        make_initializer("zeros", 0.5)


@pytest.mark.parametrize("name", INITIALIZER_NAMES)
def test_the_vector_initialisers_are_those_that_can_fill_a_vector(name):
    """config_values refuses the others for peepholes and biases before anything is built."""
    assert make_initializer(name)(KEY, SHAPE).shape == SHAPE
    if name in VECTOR_INITIALIZER_NAMES:
        assert make_initializer(name)(KEY, (4,)).shape == (4,)
    else:
        with pytest.raises(ValueError):
            make_initializer(name)(KEY, (4,))
