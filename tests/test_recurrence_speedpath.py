"""The fast recurrence equals the plain scan for every cell, and data parallelism equals one device.

The data-parallel checks run in a subprocess with two simulated CPU devices, because JAX fixes the
number of CPU devices when it first initialises and the rest of the suite may already have done so.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_variants.cells import VARIANTS, make_cell
from lstm_variants.model import SequenceModel
from lstm_variants.recurrence import RECURRENCES, scan_fast, scan_reference, scan_xla

B, T, D, H = 3, 7, 4, 5
LENGTHS = (7, 4, 1)  # one full, one padded, one of a single step


def _relative_error(a, b) -> float:
    def rel(x, y):
        x, y = np.asarray(x), np.asarray(y)
        return float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(y))), 1e-30))

    return max(jax.tree.leaves(jax.tree.map(rel, a, b)))


def test_registry():
    assert RECURRENCES == {"fast": scan_fast, "xla": scan_xla, "reference": scan_reference}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fast_equals_reference_model(name):
    """Loss and every parameter gradient of a 2-layer model on a padded batch, in float64."""
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(1), (B, T, D), jnp.float64)
        lengths = jnp.array(LENGTHS)
        options = (("param_dtype", jnp.float64),)
        fast, ref = (
            SequenceModel(name, H, 2, num_layers=2, recurrence=r, cell_options=options)
            for r in ("fast", "reference")
        )
        params = fast.init(jax.random.key(0), x, lengths)
        # A random linear term: sin(out) * out alone has zero derivative where out is 0, as on
        # padded steps, so a backward pass that let gradient into them would go unseen.
        cotangent = jax.random.normal(jax.random.key(5), (B, T, 2), jnp.float64)

        def loss(params, model):
            out = model.apply(params, x, lengths)
            return (jnp.sin(out) * out).sum() + (out * cotangent).sum()

        # One compiled program each: run op by op, the first variant compiles hundreds of them.
        value_fast, grads_fast = jax.jit(jax.value_and_grad(lambda p: loss(p, fast)))(params)
        value_ref, grads_ref = jax.jit(jax.value_and_grad(lambda p: loss(p, ref)))(params)
        assert abs(float(value_fast - value_ref)) <= 1e-12 * abs(float(value_ref))
        assert _relative_error(grads_fast, grads_ref) < 1e-12


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fast_equals_reference_scan(name):
    """Direct calls: final carry, outputs, and gradients w.r.t. params, carry0 and px."""
    with jax.enable_x64(True):
        cell = make_cell(name, H, param_dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(2), (T, B, D), jnp.float64)
        params = cell.init(jax.random.key(3), cell.initialize_carry(None, (B, D)), x[0])["params"]
        mask = jnp.arange(T)[:, None] < jnp.array(LENGTHS)[None, :]
        px = cell.project(params, x)
        carry0 = jax.tree.map(
            lambda c: 0.1 * jax.random.normal(jax.random.key(4), c.shape, c.dtype),
            cell.initialize_carry(None, (B, D)),
        )

        def run(scan):
            def f(params, carry0, px):
                final, ys = scan(cell, params, carry0, px, mask)
                return final, ys

            return f

        # One compiled program each, not op-by-op dispatch (see the model test above).
        out_fast = jax.jit(run(scan_fast))(params, carry0, px)
        out_ref = jax.jit(run(scan_reference))(params, carry0, px)
        assert _relative_error(out_fast, out_ref) < 1e-12

        # Padded steps keep the carry and output zeros.
        final, ys = out_fast
        assert np.all(np.asarray(ys)[~np.asarray(mask)] == 0)

        cotangent = jax.random.normal(jax.random.key(6), (T, B, H), jnp.float64)

        def loss(scan):
            def f(params, carry0, px):
                final, ys = scan(cell, params, carry0, px, mask)
                finals = sum(jnp.sum(c**2) for c in jax.tree.leaves(final))
                return jnp.sum(jnp.cos(ys)) + jnp.sum(ys * cotangent) + finals

            return f

        g_fast = jax.jit(jax.grad(loss(scan_fast), argnums=(0, 1, 2)))(params, carry0, px)
        g_ref = jax.jit(jax.grad(loss(scan_reference), argnums=(0, 1, 2)))(params, carry0, px)
        assert _relative_error(g_fast, g_ref) < 1e-12


def test_fast_equals_reference_float32_jsb_like():
    """The benchmark's tolerance at a realistic size in float32."""
    x = jax.random.bernoulli(jax.random.key(5), 0.1, (4, 32, 88)).astype(jnp.float32)
    lengths = jnp.array([32, 20, 9, 32])
    fast, ref = (SequenceModel("vanilla", 32, 88, recurrence=r) for r in ("fast", "reference"))
    params = fast.init(jax.random.key(0), x, lengths)
    cotangent = jax.random.normal(jax.random.key(6), (4, 32, 88))  # nonzero on padded steps too

    def loss(params, model):
        out = model.apply(params, x, lengths)
        return jnp.mean(out**2) + jnp.mean(out * cotangent)

    g_fast = jax.jit(jax.grad(lambda p: loss(p, fast)))(params)
    g_ref = jax.jit(jax.grad(lambda p: loss(p, ref)))(params)
    assert _relative_error(g_fast, g_ref) < 1e-4


DATA_PARALLEL_SCRIPT = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_platforms", "cpu")  # two simulated devices, also where a GPU is
    jax.config.update("jax_num_cpu_devices", 2)
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import optax
    from lstm_variants.data_parallel import data_parallel_value_and_grad
    from lstm_variants.model import SequenceModel, step_mask

    assert len(jax.devices()) == 2, jax.devices()
    B, T, D, H = 4, 9, 6, 5
    rng = np.random.default_rng(0)

    def rel(a, b):
        return max(
            jax.tree.leaves(
                jax.tree.map(
                    lambda x, y: float(jnp.max(jnp.abs(x - y)) / (jnp.max(jnp.abs(y)) + 1e-30)), a, b
                )
            )
        )

    def batch_with(lengths):
        x = jnp.asarray(rng.normal(size=(B, T, D)))
        return {"inputs": x, "targets": (x > 0).astype(x.dtype), "lengths": jnp.asarray(lengths)}

    for recurrence in ("fast", "reference"):
        model = SequenceModel("vanilla", H, D, recurrence=recurrence,
                              cell_options=(("param_dtype", jnp.float64),))

        def loss_fn(params, batch):
            logits = model.apply({"params": params}, batch["inputs"], batch["lengths"])
            mask = step_mask(batch["lengths"], T)
            per = optax.sigmoid_binary_cross_entropy(logits, batch["targets"]).sum(-1)
            return jnp.where(mask, per, 0.0).sum() / jnp.maximum(mask.sum(), 1)

        frames = lambda batch: batch["lengths"].sum()
        vg = jax.jit(data_parallel_value_and_grad(loss_fn, 2, weight_fn=frames))
        vg_1 = jax.jit(jax.value_and_grad(loss_fn))  # one compile, not op-by-op dispatch
        base = batch_with([9, 9, 9, 9])
        params = model.init(jax.random.key(0), base["inputs"], base["lengths"])["params"]
        # Shard 0 holds rows 0-1, shard 1 rows 2-3: unequal frames, and a shard with no frame.
        for lengths in ([9, 9, 9, 9], [9, 2, 1, 3], [0, 0, 5, 9]):
            batch = batch_with(lengths)
            loss_1, grads_1 = vg_1(params, batch)
            loss_2, grads_2 = vg(params, batch)
            # The readout's Dense keeps float32 parameters, so its gradients carry float32 rounding.
            assert abs(float(loss_1 - loss_2)) < 1e-6 * abs(float(loss_1)), (loss_1, loss_2)
            assert rel(grads_2, grads_1) < 1e-6, rel(grads_2, grads_1)
            assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads_2))

        if recurrence == "reference":
            continue  # the epoch below tests the psum's place, whichever recurrence feeds it

        # A whole epoch in one jit: the per-batch psum sits inside a lax.scan over batches, and a
        # population of 2 trials is vmapped over it, as in the trainer. This must not deadlock.
        num_batches = 50
        xs = jnp.asarray(rng.normal(size=(num_batches, B, T, D)))
        epoch_batches = {"inputs": xs, "targets": (xs > 0).astype(xs.dtype),
                         "lengths": jnp.asarray(rng.integers(1, T + 1, (num_batches, B)))}
        dp = data_parallel_value_and_grad(loss_fn, 2, weight_fn=frames)
        optimizer = optax.sgd(1e-2, momentum=0.9, nesterov=True)

        def epoch(params, value_and_grad):
            def body(state, batch):
                params, opt_state = state
                loss, grads = value_and_grad(params, batch)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss
            return jax.lax.scan(body, (params, optimizer.init(params)), epoch_batches)[1]

        population = jax.tree.map(lambda p: jnp.stack([p, 0.5 * p]), params)
        losses_2 = jax.jit(jax.vmap(lambda p: epoch(p, dp)))(population)
        losses_1 = jax.jit(jax.vmap(lambda p: epoch(p, jax.value_and_grad(loss_fn))))(population)
        assert rel(losses_2, losses_1) < 1e-5, rel(losses_2, losses_1)
    print("DATA_PARALLEL_OK")
    """
)


@pytest.mark.slow
def test_data_parallel_equals_single_device():
    result = subprocess.run(
        [sys.executable, "-c", DATA_PARALLEL_SCRIPT],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DATA_PARALLEL_OK" in result.stdout
