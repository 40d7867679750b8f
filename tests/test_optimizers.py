"""Per-member optimizers: clipping thresholds as arrays, +inf meaning off."""

import math

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstm_variants.errors import ConfigError
from lstm_variants.optimizers import make_member_optimizer, member_hyperparameters


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


def sgd_steps(gradients, nesterov, learning_rate=0.1, momentum=0.9, scale="none"):
    """The updates of successive SGD steps on a one-value parameter, one per gradient."""
    sgd = {"name": "sgd", "nesterov": nesterov, "learning_rate_scale": scale}
    optimizer = make_member_optimizer(sgd)(
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


def test_adam_is_optax_adam_after_the_clipping():
    grads = {"w": jnp.asarray([0.3, -2.0, 5.0])}
    params = {"w": jnp.zeros(3)}
    ours = make_member_optimizer({"name": "adam"})(
        learning_rate=0.01, momentum=0.0, clip_norm=math.inf, clip_value=1.0
    )
    reference = optax.adam(0.01)
    ours_state, reference_state = ours.init(params), reference.init(params)
    for step in range(3):
        scaled = {"w": grads["w"] * (step + 1)}
        ours_update, ours_state = ours.update(scaled, ours_state, params)
        clipped = {"w": jnp.clip(scaled["w"], -1.0, 1.0)}
        reference_update, reference_state = reference.update(clipped, reference_state, params)
        np.testing.assert_allclose(ours_update["w"], reference_update["w"], rtol=1e-6)


def test_both_clippings_at_once_scale_by_the_global_norm_first():
    # Global norm 5 scaled to 2.5: [1.5, 0] and [2]; then per value at 1.8: [1.5, 0] and [1.8].
    # Per value first would give [1.8, 0] and [1.8], norm 2.55, then scaled to [1.77, 0], [1.77].
    grads = {"a": jnp.asarray([3.0, 0.0]), "b": jnp.asarray([[4.0]])}
    clipped = sgd_updates(grads, clip_norm=2.5, clip_value=1.8)
    np.testing.assert_allclose(clipped["a"], [-1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], [[-1.8]], rtol=1e-6)


def test_member_hyperparameters_read_null_as_off_and_no_momentum_as_zero():
    sgd = {"name": "sgd", "learning_rate": 0.1, "momentum": None, "clip_norm": None}
    assert member_hyperparameters(sgd) == {
        "learning_rate": 0.1,
        "momentum": 0.0,  # plain SGD, not a default momentum
        "clip_norm": math.inf,
        "clip_value": math.inf,  # absent: off too
    }
    adam = {"name": "adam", "learning_rate": 1e-3, "clip_norm": 1.0, "clip_value": 0.5}
    assert member_hyperparameters(adam) == {
        "learning_rate": 1e-3,
        "momentum": 0.0,
        "clip_norm": 1.0,
        "clip_value": 0.5,
    }


def test_an_unknown_optimizer_is_a_config_error_naming_the_valid_ones():
    message = "unknown optimizer 'rmsprop'; valid optimizers: sgd, adam"
    with pytest.raises(ConfigError, match=message):
        make_member_optimizer({"name": "rmsprop"})
    with pytest.raises(ConfigError, match=message):
        member_hyperparameters({"name": "rmsprop", "learning_rate": 0.1})


def test_sgd_with_the_learning_rate_scaled_by_one_minus_momentum():
    """Greff et al.'s SGD: steps of eta (1 - mu). The same steps as unscaled SGD at eta (1 - mu);
    under a constant gradient g the step tends to eta g, where unscaled it tends to
    eta g / (1 - mu) (Nesterov's trace v -> g / (1 - mu), step eta (g + mu v) -> eta g / (1 - mu))."""
    lr, mu = 0.1, 0.9

    def steps(gradients, scale, learning_rate):
        return sgd_steps(gradients, True, learning_rate, mu, scale)

    gradients = [1.0, 2.0, -1.0]
    np.testing.assert_allclose(
        steps(gradients, "one_minus_momentum", lr), steps(gradients, "none", lr * (1 - mu)),
        rtol=1e-6,
    )  # fmt: skip
    np.testing.assert_allclose(
        steps([2.0] * 400, "one_minus_momentum", lr)[-1], -lr * 2.0, rtol=1e-4
    )
    np.testing.assert_allclose(steps([2.0] * 400, "none", lr)[-1], -lr * 2.0 / (1 - mu), rtol=1e-4)
    with pytest.raises(ConfigError, match="learning_rate_scale must be one of none, one_minus"):
        make_member_optimizer({"name": "sgd", "learning_rate_scale": "momentum"})


def test_the_learning_rate_scale_at_none_leaves_trial_ids_as_before_it_existed():
    from lstm_variants.experiment import trial_identity

    base = {"seed": 0, "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}}
    scaled = {**base, "optimizer": {**base["optimizer"], "learning_rate_scale": "none"}}
    assert trial_identity(scaled) == trial_identity(base)
    scaled["optimizer"]["learning_rate_scale"] = "one_minus_momentum"
    assert trial_identity(scaled) != trial_identity(base)


def brainstorm_nesterov(gradient, theta, learning_rate, momentum, steps):
    """IDSIA brainstorm's ``NesterovStep.run`` (Greff et al.'s library), scale_learning_rate=True,
    in float64 numpy: the points where it takes the gradient, and its (theta, v) after each step.

        eta <- eta (1 - mu);  v <- mu v;  theta <- theta + v;  g = grad(theta);
        v <- v - eta g;  theta <- theta - eta g
    """
    eta = learning_rate * (1.0 - momentum)
    velocity = np.zeros_like(theta)
    points, thetas, velocities = [], [], []
    for _ in range(steps):
        velocity = momentum * velocity
        theta = theta + velocity
        g = gradient(theta)
        points.append(theta)
        velocity = velocity - eta * g
        theta = theta - eta * g
        thetas.append(theta)
        velocities.append(velocity)
    return np.asarray(points), np.asarray(thetas), np.asarray(velocities)


def test_nesterov_sgd_is_brainstorms_nesterov_step_read_at_its_lookahead_point():
    """optax's Nesterov SGD (Bengio et al.'s 2013 reparametrisation of Sutskever's form) takes the
    gradients brainstorm's NesterovStep takes, at the same points, so training follows the same
    trajectory. The parameters it holds between steps are brainstorm's lookahead point
    theta_t + mu v_t, not brainstorm's theta_t: what the harness validates, tests and saves is
    that point, theta_t + mu v_t = p_t, and theta_t = p_t + mu eta (1 - mu) m_t (m: optax's trace).
    """
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(8, 3)), rng.normal(size=8)

    def gradient(theta):  # of sum(log(1 + e^(a theta - b))) + |theta|^4 / 4: not quadratic
        theta = np.asarray(theta, np.float64)
        return a.T @ (1.0 / (1.0 + np.exp(b - a @ theta))) + np.sum(theta**2) * theta

    lr, mu, steps, start = 0.3, 0.9, 25, np.asarray([0.5, -1.0, 0.25])
    points, thetas, velocities = brainstorm_nesterov(gradient, start, lr, mu, steps)

    sgd = {"name": "sgd", "nesterov": True, "learning_rate_scale": "one_minus_momentum"}
    optimizer = make_member_optimizer(sgd)(
        learning_rate=lr, momentum=mu, clip_norm=math.inf, clip_value=math.inf
    )
    params = jnp.asarray(start, jnp.float32)
    state, ours, traces = optimizer.init(params), [], []
    for _ in range(steps):
        ours.append(np.asarray(params))  # where the harness takes this step's gradient
        updates, state = optimizer.update(jnp.asarray(gradient(params), jnp.float32), state)
        params = optax.apply_updates(params, updates)
        traces.append(np.asarray(state.inner_state[2][0].trace))
    ours.append(np.asarray(params))
    ours, traces = np.asarray(ours), np.asarray(traces)

    np.testing.assert_allclose(ours[:-1], points, rtol=1e-4, atol=1e-5)
    lookahead = thetas + mu * velocities
    np.testing.assert_allclose(ours[1:], lookahead, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours[1:] + mu * lr * (1 - mu) * traces, thetas, rtol=1e-4, atol=1e-5)
    # The two points really differ: by mu v_t, here up to a tenth of a unit.
    assert np.abs(ours[1:] - thetas).max() > 0.05


@pytest.mark.parametrize("scale", ["none", "one_minus_momentum"])
def test_evaluate_at_theta_reads_brainstorms_theta_from_the_optimizer_state(scale):
    """``evaluation_point`` under evaluate_at=theta is brainstorm's theta_t after each step, from
    optax's lookahead parameters and state; under the default it is those parameters as they are."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 4))

    def gradient(theta):  # of |a theta|^2 / 2 + |theta|^4 / 4
        theta = np.asarray(theta, np.float64)
        return a.T @ (a @ theta) + np.sum(theta**2) * theta

    lr, mu, steps, start = 0.05, 0.8, 12, rng.normal(size=4)
    # brainstorm's step size is eta (1 - mu) under scale_learning_rate; 'none' is eta itself
    eta = lr if scale == "one_minus_momentum" else lr / (1.0 - mu)
    _, thetas, _ = brainstorm_nesterov(gradient, start, eta, mu, steps)
    sgd = {"name": "sgd", "nesterov": True, "learning_rate_scale": scale}
    theta_reader = make_member_optimizer(sgd | {"evaluate_at": "theta"})
    lookahead_reader = make_member_optimizer(sgd)
    optimizer = theta_reader(learning_rate=lr, momentum=mu, clip_norm=math.inf, clip_value=math.inf)
    params = jnp.asarray(start, jnp.float32)
    state = optimizer.init(params)
    for theta in thetas:
        updates, state = optimizer.update(jnp.asarray(gradient(params), jnp.float32), state)
        params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(theta_reader.evaluation_point(params, state), theta, 1e-4, 1e-5)
        assert lookahead_reader.evaluation_point(params, state) is params
    assert np.abs(np.asarray(params) - thetas[-1]).max() > 1e-3


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"name": "sgd", "nesterov": True, "evaluate_at": "sutskever"},
         "optimizer.evaluate_at must be one of lookahead, theta, got 'sutskever'"),
        ({"name": "sgd", "nesterov": False, "evaluate_at": "theta"},
         "optimizer.evaluate_at=theta needs optimizer=sgd with optimizer.nesterov=true"),
        ({"name": "adam", "evaluate_at": "theta"},
         "optimizer.evaluate_at=theta needs optimizer=sgd with optimizer.nesterov=true"),
    ],
)  # fmt: skip
def test_evaluate_at_is_refused_where_it_means_nothing(cfg, message):
    with pytest.raises(ConfigError, match=message):
        make_member_optimizer(cfg)


def test_evaluate_at_lookahead_leaves_the_committed_trial_ids_as_they_were():
    from pathlib import Path

    from lstm_variants.experiment import trial_identity
    from lstm_variants.records import read_record

    committed = Path(__file__).parents[1] / "docs/studies/greff_jsb/records/0056470b81381496.json"
    record = read_record(committed)
    cfg = record["config"]
    assert cfg["optimizer"]["nesterov"] and "evaluate_at" not in cfg["optimizer"]
    pinned = {**cfg, "optimizer": {**cfg["optimizer"], "evaluate_at": "lookahead"}}
    assert trial_identity(pinned) == record["trial_id"] == committed.stem
    pinned["optimizer"]["evaluate_at"] = "theta"
    assert trial_identity(pinned) != record["trial_id"]
