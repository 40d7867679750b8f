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


# A large draw, so that its spread pins the distribution: fan_in 300, fan_out 200.
WIDE, GAIN = (300, 200), 0.5


def lies_within_and_reaches_both_ends(draw, bound):
    """All of ``draw`` in [-bound, bound], its extremes within 2 % of either end, mean near 0:
    a range shifted or halved (U(0, s), say) fails one of these."""
    assert np.abs(draw).max() <= bound
    assert draw.min() < -0.98 * bound and draw.max() > 0.98 * bound
    assert abs(draw.mean()) < 0.01 * bound


def check_glorot_uniform(draw):
    lies_within_and_reaches_both_ends(draw, GAIN * np.sqrt(6 / sum(WIDE)))


def check_orthogonal(draw):
    # gain * Q with orthonormal columns: Q^T Q = I, so draw^T draw = gain^2 I, and the draw is
    # exactly the gain times the unit-gain draw of the same key. A small matrix: each new shape
    # compiles its own QR (seconds).
    np.testing.assert_allclose(draw.T @ draw, GAIN**2 * np.eye(SHAPE[1]), atol=1e-6)
    unit = np.asarray(make_initializer("orthogonal")(KEY, SHAPE))
    np.testing.assert_allclose(draw, GAIN * unit, rtol=1e-6, atol=1e-7)


def check_uniform(draw):
    lies_within_and_reaches_both_ends(draw, GAIN)  # U(-scale, scale): scale is a half-width
    np.testing.assert_allclose(draw.std(), GAIN / np.sqrt(3), rtol=0.02)


def check_normal(draw):
    assert abs(draw.mean()) < 0.01 * GAIN
    np.testing.assert_allclose(draw.std(), GAIN, rtol=0.02)  # scale is the standard deviation
    assert (draw < 0).mean() == pytest.approx(0.5, abs=0.01)


def check_lecun_normal(draw):
    # Truncated at two standard deviations of the underlying normal, rescaled so that the draw's
    # own standard deviation is gain / sqrt(fan_in).
    std = GAIN / np.sqrt(WIDE[0])
    np.testing.assert_allclose(draw.std(), std, rtol=0.02)
    assert abs(draw.mean()) < 0.01 * std
    assert np.abs(draw).max() <= 2 * std / 0.8796 * 1.001


def check_zeros(draw):
    assert not draw.any()


CHECKS = {
    "glorot_uniform": check_glorot_uniform,
    "orthogonal": check_orthogonal,
    "uniform": check_uniform,
    "normal": check_normal,
    "lecun_normal": check_lecun_normal,
    "zeros": check_zeros,
}


def test_every_initialiser_the_config_offers_is_checked_here():
    assert set(CHECKS) == set(INITIALIZER_NAMES)


@pytest.mark.parametrize("name", INITIALIZER_NAMES)
def test_each_initialiser_draws_the_distribution_its_name_and_scale_say(name):
    scale = 1.0 if name == "zeros" else GAIN
    shape = SHAPE if name == "orthogonal" else WIDE
    draw = np.asarray(make_initializer(name, scale)(KEY, shape), np.float64)
    assert draw.shape == shape
    CHECKS[name](draw)


def test_zeros_refuses_a_scale_it_would_ignore():
    np.testing.assert_array_equal(make_initializer("zeros")(KEY, SHAPE), np.zeros(SHAPE))
    with pytest.raises(ConfigError, match="the zeros initialiser takes no scale, got 0.5"):
        make_initializer("zeros", 0.5)


@pytest.mark.parametrize("name", sorted(set(INITIALIZER_NAMES) - {"zeros"}))
@pytest.mark.parametrize("scale", [-0.1, float("nan"), float("inf")])
def test_a_negative_or_non_finite_scale_is_refused_not_drawn(name, scale):
    # jax.random.uniform clips to minval: U(0.1, -0.1) was every weight exactly 0.1.
    with pytest.raises(ConfigError, match=f"the {name} initialiser's scale .* must be a finite"):
        make_initializer(name, scale)


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


def test_one_initialiser_object_per_name_and_scale_however_the_scale_is_given():
    """Equal models find the programs compiled for each other only with the same objects: the
    cache keyed make_initializer('uniform') apart from make_initializer('uniform', 1.0)."""
    assert make_initializer("uniform") is make_initializer("uniform", 1.0)
    assert make_initializer("orthogonal", scale=2) is make_initializer("orthogonal", 2.0)
    assert make_initializer("uniform", 0.1) is not make_initializer("uniform")
