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


def test_a_bfloat16_model_initialises_and_its_fast_path_matches_the_reference():
    # The orthogonal initialiser's QR has no bfloat16 kernel on CPU, and float32 inputs used to
    # promote the scanned carry away from its bfloat16 type.
    import jax.numpy as jnp

    from lstm_variants.model import SequenceModel

    x = jax.random.normal(jax.random.key(0), (2, 5, 3), jnp.float32)
    lengths = jnp.array([5, 3])
    outputs = {}
    for recurrence in ("fast", "reference"):
        model = SequenceModel("vanilla", 4, 2, param_dtype=jnp.bfloat16, recurrence=recurrence)
        params = model.init(jax.random.key(1), x, lengths)
        assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}
        outputs[recurrence] = np.asarray(model.apply(params, x, lengths), np.float32)
    np.testing.assert_allclose(outputs["fast"], outputs["reference"], rtol=2e-2, atol=2e-2)
    orthogonal = make_initializer("orthogonal")
    in_float32 = orthogonal(jax.random.key(2), (6, 6), jnp.float32)
    np.testing.assert_array_equal(
        in_float32, nn.initializers.orthogonal()(jax.random.key(2), (6, 6))
    )
    narrow = orthogonal(jax.random.key(2), (6, 6), jnp.bfloat16)
    np.testing.assert_array_equal(narrow, in_float32.astype(jnp.bfloat16))
