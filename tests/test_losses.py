"""Per-frame losses against their formulas, written here in NumPy: the music NLL per time step is
the binary cross-entropy summed over the 88 notes (Greff et al.), not averaged; the regression
loss is the squared error averaged over a frame's outputs (MSE)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_variants.errors import ConfigError
from lstm_variants.losses import IGNORE, frame_losses, frame_weights, metric_value

NOTES = 88


def binary_cross_entropy(logits, targets):
    """-[t ln sigma(x) + (1 - t) ln(1 - sigma(x))] per note, in float64."""
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    return -(targets * np.log(p) + (1 - targets) * np.log1p(-p))


def test_a_music_frames_loss_is_the_cross_entropy_summed_over_its_88_notes():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(2, 3, NOTES))  # (B, T, notes)
    targets = np.zeros((2, 3, NOTES))
    targets[..., [39, 43, 46, 51]] = 1.0  # a C major chord (MIDI 60, 64, 67, 72) in every frame
    targets[1, 2] = 0.0  # a silent frame
    got = frame_losses(
        jnp.asarray(logits, jnp.float32), jnp.asarray(targets, jnp.float32), "multilabel"
    )
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, binary_cross_entropy(logits, targets).sum(-1), rtol=1e-5)


def test_undecided_predictions_cost_88_ln_2_per_frame():
    # sigma(0) = 1/2 for every note: ln 2 nats a note, whatever the notes played.
    targets = (np.random.default_rng(1).random((4, NOTES)) < 0.05).astype(np.float32)
    got = frame_losses(jnp.zeros((4, NOTES)), jnp.asarray(targets), "multilabel")
    np.testing.assert_allclose(got, NOTES * math.log(2.0), rtol=1e-6)


def test_a_regression_frames_loss_is_the_squared_error_averaged_over_its_outputs():
    # Temporal order has 4 or 8 outputs a frame: its MSE is the mean over them, not the sum.
    rng = np.random.default_rng(2)
    predictions = rng.normal(size=(3, 2, 4))  # (B, T, O)
    targets = rng.normal(size=(3, 2, 4))
    got = frame_losses(
        jnp.asarray(predictions, jnp.float32), jnp.asarray(targets, jnp.float32), "regression"
    )
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, ((predictions - targets) ** 2).mean(-1), rtol=1e-5)


def test_frame_weights_mark_valid_steps_and_every_last_step_target():
    lengths = jnp.asarray([1, 4, 6])
    np.testing.assert_array_equal(
        frame_weights(lengths, 6, "every_step"),
        [[1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]],
    )
    # A last-step target is one frame per sequence, whatever its length.
    np.testing.assert_array_equal(frame_weights(lengths, 6, "last_step"), [1.0, 1.0, 1.0])
    # Class ids: an IGNORE step weighs 0 (class 0 is a real class); real-valued targets are
    # never read as class ids.
    targets = jnp.asarray([[0, IGNORE, 2], [IGNORE, 1, 0]])
    np.testing.assert_array_equal(
        frame_weights(jnp.asarray([3, 2]), 3, "every_step", targets), [[1, 0, 1], [0, 1, 0]]
    )
    values = jnp.full((2, 3), -1.0)
    np.testing.assert_array_equal(
        frame_weights(jnp.asarray([3, 2]), 3, "every_step", values), [[1, 1, 1], [1, 1, 0]]
    )


def test_metric_value_converts_nats_to_the_reported_metric():
    nats = 2.0
    assert metric_value(nats, "bits_per_char") == pytest.approx(2.0 / math.log(2.0))
    assert metric_value(math.log(2.0), "bits_per_char") == pytest.approx(1.0)
    assert metric_value(nats, "perplexity") == pytest.approx(math.exp(2.0))
    assert metric_value(800.0, "perplexity") == math.inf
    for metric in ("nll_per_step", "mse", "cross_entropy"):
        assert metric_value(nats, metric) == nats


def test_an_unknown_target_kind_is_a_config_error_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown target kind 'ordinal'; valid: multilabel, "):
        frame_losses(jnp.zeros((2, 3)), jnp.zeros((2, 3)), "ordinal")


@pytest.mark.parametrize("jit", [False, True])
def test_a_class_id_outside_ignore_to_c_scores_nan_not_a_real_class(jit):
    # -3 was scored as class 0 (a clamp to IGNORE's stand-in class): a plausible, wrong loss.
    logits = jnp.tile(jnp.asarray([1.0, 2.0, 3.0]), (5, 1))
    targets = jnp.asarray([-3, IGNORE, 0, 2, 3])
    score = jax.jit(frame_losses, static_argnums=2) if jit else frame_losses
    got = np.asarray(score(logits, targets, "categorical"))
    log_z = math.log(sum(math.exp(x) for x in (1.0, 2.0, 3.0)))
    # IGNORE stays finite (its weight 0 must zero it, which NaN * 0 would not).
    np.testing.assert_allclose(got[1:4], [log_z - 1.0, log_z - 1.0, log_z - 3.0], rtol=1e-6)
    assert np.isnan(got[0]) and np.isnan(got[4])
    weights = frame_weights(jnp.asarray([5]), 5, "every_step", targets[None])[0]
    assert np.isnan(np.sum(got * np.asarray(weights)))  # the batch's loss says so
