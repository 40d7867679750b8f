"""Per-member optimizers: clipping thresholds as arrays, +inf meaning off."""

import math

import jax.numpy as jnp
import numpy as np
import optax

from lstm_variants.optimizers import make_member_optimizer


def sgd_updates(grads, clip_norm=math.inf, clip_value=math.inf):
    optimizer = make_member_optimizer({"name": "sgd"})(
        learning_rate=1.0, momentum=0.0, clip_norm=clip_norm, clip_value=clip_value
    )
    params = {name: jnp.zeros_like(g) for name, g in grads.items()}
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return {name: np.asarray(u) for name, u in updates.items()}


def test_clipping_scales_by_the_global_norm_then_per_value():
    grads = {"a": jnp.asarray([3.0, 0.0]), "b": jnp.asarray([[4.0]])}  # global norm 5
    clipped = sgd_updates(grads, clip_norm=2.5)
    np.testing.assert_allclose(clipped["a"], [-1.5, 0.0], rtol=1e-6)  # -g * 2.5 / 5
    np.testing.assert_allclose(clipped["b"], [[-2.0]], rtol=1e-6)
    below = sgd_updates(grads, clip_norm=10.0)
    np.testing.assert_array_equal(below["a"], [-3.0, 0.0])
    by_value = sgd_updates(grads, clip_value=3.5)
    np.testing.assert_array_equal(by_value["b"], [[-3.5]])


def test_clipping_off_leaves_a_gradient_whose_norm_overflows_as_it_is():
    # Finite, but its squared norm overflows float32: optax's own clip made it NaN (inf / inf).
    grads = {"w": jnp.asarray([1e20, 1.0], jnp.float32)}
    plain, _ = optax.sgd(1.0).update(grads, optax.sgd(1.0).init(grads), grads)
    np.testing.assert_array_equal(sgd_updates(grads)["w"], np.asarray(plain["w"]))
    assert np.all(np.isfinite(sgd_updates(grads)["w"]))
