"""Per-frame losses and the papers' metrics, all honouring the padding mask.

A "frame" is one predicted step: one time step of a per-step target, or one sequence of a
last-step target. Losses are summed over a frame's outputs and averaged over valid frames:

    multilabel (music):  NLL per time step = sum_k BCE(sigmoid(logit_k), target_k), nats
    categorical (text):  cross-entropy in nats; bits per character = nats / ln 2; perplexity = e^nats;
                         a step whose class id is IGNORE (-1) has no target and weight 0; any
                         other id outside [0, C) is no class: its loss is NaN
    regression:          squared error averaged over outputs (MSE)

Greff et al. report the music NLL averaged over all frames of a split, so the split metric is the
frame-weighted mean (sum of frame losses / number of valid frames), not a mean of sequence means.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

from lstm_variants.errors import ConfigError

TARGETS = ("multilabel", "categorical", "regression")
IGNORE = -1  # categorical class id of a step without a target (as in lstm_variants.data.base)


def frame_losses(outputs: jax.Array, targets: jax.Array, target: str) -> jax.Array:
    """Loss of every frame: (..., O) outputs and targets -> (...) losses in nats (or squared error).

    Args:
      outputs: logits (multilabel, categorical) or predictions (regression).
      targets: binary (multilabel), integer class ids without the last axis (categorical), or real
        values (regression).
      target: one of ``TARGETS``.

    A categorical id outside [IGNORE, C) (C = the outputs' last axis) gets a NaN loss, whatever
    its weight: a traced program cannot raise, and a plausible number (class 0's, as a clamp
    gives) would hide the wrong array; a length outside [1, T] gives NaN alike
    (``model.last_outputs``). The loaders refuse such ids (``data.base.SequenceDataset``).
    """
    if target == "multilabel":
        return optax.sigmoid_binary_cross_entropy(outputs, targets).sum(axis=-1)
    if target == "categorical":
        # IGNORE (-1) steps get class 0 here and weight 0 in ``frame_weights``.
        classes = outputs.shape[-1]
        losses = optax.softmax_cross_entropy_with_integer_labels(
            outputs, jnp.clip(targets, 0, classes - 1)
        )
        return jnp.where((targets >= IGNORE) & (targets < classes), losses, jnp.nan)
    if target == "regression":
        return jnp.mean(jnp.square(outputs - targets), axis=-1)
    raise ConfigError(f"unknown target kind '{target}'; valid: {', '.join(TARGETS)}")


def frame_weights(
    lengths: jax.Array, num_steps: int, target_at: str, targets: jax.Array | None = None
) -> jax.Array:
    """1.0 for every valid frame, 0.0 for padding: (B, T) per step, (B,) for last-step targets.

    With integer (categorical) ``targets``, frames whose class id is IGNORE (-1) get 0.0 too.
    """
    if target_at == "last_step":
        weights = jnp.ones(lengths.shape, jnp.float32)
    else:
        weights = (jnp.arange(num_steps)[None, :] < lengths[:, None]).astype(jnp.float32)
    if targets is not None and jnp.issubdtype(targets.dtype, jnp.integer):
        weights = weights * (targets != IGNORE).astype(jnp.float32)
    return weights


def metric_value(mean_loss: float, metric: str) -> float:
    """Convert a mean frame loss (nats or MSE) to the dataset's reported metric.

    'bits_per_char' is nats / ln 2 and 'perplexity' is e^nats (inf past float64's range: a loss
    above ~709.8 nats is finite, its perplexity is not); every other metric is the loss.
    """
    if metric == "bits_per_char":
        return mean_loss / math.log(2.0)
    if metric == "perplexity":
        try:
            return math.exp(mean_loss)
        except OverflowError:
            return math.inf
    return mean_loss
