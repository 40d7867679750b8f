"""Data parallelism over two devices: the frame-weighted mean of the shards' means, computed by
hand on the whole batch, including shards and batches without a single valid frame.
The model-level comparison (both recurrences, a whole epoch): test_recurrence_speedpath.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_variants.data_parallel import data_mesh, data_parallel_value_and_grad

pytestmark = pytest.mark.skipif(len(jax.devices()) < 2, reason="needs two devices (conftest)")

T, D = 5, 3


def masked_mean_loss(params, batch):
    """The mean squared error over the valid frames of ``batch``: 0/0 (NaN) without any."""
    mask = jnp.arange(T)[None, :] < batch["lengths"][:, None]
    per_frame = jnp.square(batch["inputs"] @ params["w"] - batch["targets"])
    return jnp.sum(jnp.where(mask, per_frame, 0.0)) / jnp.sum(mask)


def frames(batch):
    return batch["lengths"].sum()


def batch_with(lengths):
    rng = np.random.default_rng(0)
    return {
        "inputs": jnp.asarray(rng.normal(size=(len(lengths), T, D)), jnp.float32),
        "targets": jnp.asarray(rng.normal(size=(len(lengths), T)), jnp.float32),
        "lengths": jnp.asarray(lengths, jnp.int32),
    }


PARAMS = {"w": jnp.asarray([0.5, -1.0, 2.0], jnp.float32)}


def test_a_shard_without_valid_frames_adds_nothing_although_its_own_mean_is_nan():
    # Rows 0-1 go to device 0 and hold no frame: its mean is 0/0. The result is still the whole
    # batch's mean over its 7 frames, and its gradient, both finite.
    batch = batch_with([0, 0, 3, 4])
    loss, grads = jax.jit(data_parallel_value_and_grad(masked_mean_loss, 2, weight_fn=frames))(
        PARAMS, batch
    )
    expected_loss, expected_grads = jax.value_and_grad(masked_mean_loss)(PARAMS, batch)
    assert np.isfinite(float(expected_loss))
    assert np.isnan(float(masked_mean_loss(PARAMS, batch_with([0, 0]))))  # the empty shard alone
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(grads["w"], expected_grads["w"], rtol=1e-5)


def test_a_batch_without_any_valid_frame_gives_zero_loss_and_gradient_not_nan():
    loss, grads = jax.jit(data_parallel_value_and_grad(masked_mean_loss, 2, weight_fn=frames))(
        PARAMS, batch_with([0, 0, 0, 0])
    )
    assert float(loss) == 0.0
    np.testing.assert_array_equal(grads["w"], np.zeros(D))


def test_more_devices_than_jax_sees_is_an_error_that_says_how_to_get_them():
    more = len(jax.devices()) + 1
    with pytest.raises(ValueError, match=rf'jax_num_cpu_devices", {more}\)'):
        data_mesh(more)
    assert data_mesh().devices.size == len(jax.devices())
    with pytest.raises(ValueError, match="num_devices must be at least 1"):
        data_mesh(0)
