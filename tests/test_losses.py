"""Per-frame losses against their formulas, written here in NumPy: the music NLL per time step is
the binary cross-entropy summed over the 88 notes (Greff et al.), not averaged; the regression
loss is the squared error averaged over a frame's outputs (MSE)."""

import math

import jax.numpy as jnp
import numpy as np

from lstm_variants.losses import frame_losses

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
