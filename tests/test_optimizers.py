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


def test_clipping_per_value_bounds_both_signs():
    # Per-value clipping is to [-v, v]: a large negative gradient is raised to -v, not left as is.
    grads = {"w": jnp.asarray([-5.0, -1.0, 1.0, 5.0])}
    np.testing.assert_array_equal(sgd_updates(grads, clip_value=2.0)["w"], [2.0, 1.0, -1.0, -2.0])


def sgd_steps(gradients, nesterov, learning_rate=0.1, momentum=0.9):
    """The updates of successive SGD steps on a one-value parameter, one per gradient."""
    optimizer = make_member_optimizer({"name": "sgd", "nesterov": nesterov})(
        learning_rate=learning_rate, momentum=momentum, clip_norm=math.inf, clip_value=math.inf
    )
    params = jnp.zeros(1)
    state, updates = optimizer.init(params), []
    for g in gradients:
        update, state = optimizer.update(jnp.asarray([g]), state, params)
        updates.append(float(update[0]))
    return updates


def test_sgd_nesterov_takes_the_lookahead_step_and_plain_momentum_does_not():
    # Greff et al. train with Nesterov momentum. With trace v_t = g_t + mu * v_{t-1} (v_0 = 0),
    # the Nesterov update is -lr * (g_t + mu * v_t); plain momentum's is -lr * v_t.
    gradients, lr, mu = [1.0, 2.0, -1.0], 0.1, 0.9
    trace, nesterov, plain = 0.0, [], []
    for g in gradients:
        trace = g + mu * trace
        nesterov.append(-lr * (g + mu * trace))
        plain.append(-lr * trace)
    # By hand: traces 1, 2.9, 1.61; Nesterov -0.19, -0.461, -0.0449; plain -0.1, -0.29, -0.161.
    np.testing.assert_allclose(nesterov, [-0.19, -0.461, -0.0449], rtol=1e-9)
    np.testing.assert_allclose(sgd_steps(gradients, nesterov=True), nesterov, rtol=1e-5)
    np.testing.assert_allclose(sgd_steps(gradients, nesterov=False), plain, rtol=1e-5)


def test_clipping_off_leaves_a_gradient_whose_norm_overflows_as_it_is():
    # Finite, but its squared norm overflows float32: optax's own clip made it NaN (inf / inf).
    grads = {"w": jnp.asarray([1e20, 1.0], jnp.float32)}
    plain, _ = optax.sgd(1.0).update(grads, optax.sgd(1.0).init(grads), grads)
    np.testing.assert_array_equal(sgd_updates(grads)["w"], np.asarray(plain["w"]))
    assert np.all(np.isfinite(sgd_updates(grads)["w"]))
