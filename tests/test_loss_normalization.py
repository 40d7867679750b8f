"""train.loss_normalization: the same gradient direction, scaled by frames per sequence."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_variants.data import load_dataset
from lstm_variants.errors import ConfigError
from lstm_variants.model import SequenceModel
from lstm_variants.optimizers import make_member_optimizer
from lstm_variants.train import TrainSettings, make_loss_fn, make_member_epoch_fn, split_arrays


def test_sequence_normalization_scales_the_gradient_by_frames_per_sequence():
    data = load_dataset("xml", n_train=8, n_valid=4, n_test=4, length=30, seed=0)
    model = SequenceModel(
        cell="vanilla",
        hidden_size=6,
        output_size=data.output_size,
        vocab_size=data.input_size,
        embed_size=5,
    )
    inputs, targets = jnp.asarray(data.train.inputs[:4]), jnp.asarray(data.train.targets[:4])
    lengths = jnp.asarray([30, 12, 5, 30])
    sequence_weights = jnp.asarray([1.0, 1.0, 1.0, 0.0])  # the last one is filler
    params = model.init(jax.random.key(0), inputs, lengths)

    def gradient(normalization):
        loss_fn = make_loss_fn(model, data, normalization)
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, inputs, targets, lengths, sequence_weights
        )
        return loss, aux, grads

    frame_loss, (total, frames, *_), frame_grads = gradient("frame")
    sequence_loss, _, sequence_grads = gradient("sequence")
    assert float(frames) == 30 + 12 + 5  # padding and filler count in neither
    np.testing.assert_allclose(frame_loss, total / frames, rtol=1e-6)
    np.testing.assert_allclose(sequence_loss, total / 3, rtol=1e-6)
    for f, s in zip(jax.tree.leaves(frame_grads), jax.tree.leaves(sequence_grads), strict=True):
        np.testing.assert_allclose(s, f * 47 / 3, rtol=1e-4, atol=1e-7)


def test_the_reported_training_loss_is_per_frame_under_either_normalization():
    # At learning rate 0 an epoch leaves the parameters as they were, so the training loss it
    # reports (the curve's train_loss) is the per-frame mean over the training split. Sequence
    # normalization changes the gradient, not that number; divided by sequences instead, the
    # xml's 30 frames a sequence would show as 30x. 10 sequences in batches of 4 leave 2
    # filler slots, which count in neither.
    data = load_dataset("xml", n_train=10, n_valid=4, n_test=4, length=30, seed=0)
    model = SequenceModel("vanilla", 4, data.output_size, vocab_size=data.input_size, embed_size=3)
    inputs, targets, lengths = split_arrays(data.train)
    params = model.init(jax.random.key(0), inputs, lengths)
    per_frame, (_, frames, *_) = make_loss_fn(model, data)(
        params, inputs, targets, lengths, jnp.ones(10)
    )
    assert float(frames) > 10 * 15  # many frames per sequence
    optimizer = make_member_optimizer({"name": "sgd"})
    hyper = dict(learning_rate=0.0, momentum=0.0, clip_norm=math.inf, clip_value=math.inf)
    opt_state = optimizer(**hyper).init(params)
    mask = jax.tree.map(jnp.ones_like, params)
    no_regularization = {"input_noise": jnp.float32(0.0), "dropout": jnp.float32(0.0)}
    for normalization in ("frame", "sequence"):
        settings = TrainSettings(batch_size=4, loss_normalization=normalization)
        epoch = jax.jit(make_member_epoch_fn(model, optimizer, data, settings))
        _, _, train_loss = epoch(
            params, opt_state, mask, no_regularization, jax.random.key(1), jnp.bool_(True),
            jnp.int32(1), inputs, targets, lengths,
        )  # fmt: skip
        np.testing.assert_allclose(train_loss, per_frame, rtol=1e-6, err_msg=normalization)


def test_an_unknown_normalization_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown train.loss_normalization 'sum'; valid: frame"):
        TrainSettings(loss_normalization="sum")
