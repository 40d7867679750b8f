"""The native LSTM kernel (``native_lstm``, the CPU's ``recurrence='fast'``) against the plain scan.

Every LSTM variant it takes, on padded variable-length batches: outputs, final carry and the
gradients w.r.t. parameters, initial carry and input pre-activations, in float32 (the kernel's
only dtype). Then: that 'fast' really runs it (and 'xla' never does), a vmapped population, two
devices, and the build (cache, lock, a failing or missing compiler).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_variants import native_build, native_lstm
from lstm_variants.cells import VARIANTS, LSTMCell, make_cell
from lstm_variants.model import SequenceModel
from lstm_variants.recurrence import scan_fast, scan_reference, scan_xla

NATIVE = [
    name
    for name, (cls, options) in VARIANTS.items()
    if cls is LSTMCell and not options.get("full_gate_recurrence")
]
RECURRENCES = ("fast", "xla", "reference")
B, T, D = 3, 9, 4
LENGTHS = (9, 5, 0)  # full, padded, and a sequence with no step at all


def _relative_error(a, b) -> float:
    def rel(x, y):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        return float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(y))), 1e-30))

    return max(jax.tree.leaves(jax.tree.map(rel, a, b)))


def _problem(name, hidden, key=0, lengths=LENGTHS):
    cell = make_cell(name, hidden)
    B = len(lengths)
    keys = jax.random.split(jax.random.key(key), 4)
    x = jax.random.normal(keys[0], (T, B, D))
    params = cell.init(keys[1], cell.initialize_carry(None, (B, D)), x[0])["params"]
    # Non-zero peepholes and carries, so that every term of the equations is exercised.
    carry0 = jax.tree.map(
        lambda c: 0.5 * jax.random.normal(keys[2], c.shape), cell.initialize_carry(None, (B, D))
    )
    mask = jnp.arange(T)[:, None] < jnp.array(lengths)[None, :]
    cotangent = jax.random.normal(keys[3], (T, B, hidden))
    return cell, params, carry0, cell.project(params, x), mask, cotangent


def _loss(scan, cell, mask, cotangent):
    def loss(params, carry0, px):
        (c, y), ys = scan(cell, params, carry0, px, mask)
        return jnp.sum(ys * cotangent) + jnp.sum(jnp.tanh(ys)) + jnp.sum(c * c) + jnp.sum(0.7 * y)

    return loss


def _uses_kernel(fn, *args) -> bool:
    return native_lstm.FORWARD_TARGET in jax.jit(fn).lower(*args).as_text()


@pytest.mark.parametrize("hidden", [5, 19])  # 19: whole vectors and a scalar tail of units
@pytest.mark.parametrize("name", NATIVE)
def test_native_equals_reference(name, hidden):
    assert native_lstm.available()
    cell, params, carry0, px, mask, cotangent = _problem(name, hidden)

    def run(scan):
        return lambda params, carry0, px: scan(cell, params, carry0, px, mask)

    assert _uses_kernel(run(scan_fast), params, carry0, px)
    (final, ys), (final_ref, ys_ref) = (
        jax.jit(run(s))(params, carry0, px) for s in (scan_fast, scan_reference)
    )
    assert _relative_error((final, ys), (final_ref, ys_ref)) < 1e-5
    assert np.all(np.asarray(ys)[~np.asarray(mask)] == 0)
    # The empty sequence keeps its initial carry exactly.
    assert all(np.array_equal(f[2], c[2]) for f, c in zip(final, carry0, strict=True))

    grads, grads_ref = (
        jax.jit(jax.grad(_loss(s, cell, mask, cotangent), argnums=(0, 1, 2)))(params, carry0, px)
        for s in (scan_fast, scan_reference)
    )
    assert set(grads[0]) == set(params)
    assert _relative_error(grads, grads_ref) < 1e-5


@pytest.mark.parametrize("lengths", [(6, 4, 0), (3,), (0,)])
@pytest.mark.parametrize("name", ["vanilla", "cifg", "np"])
def test_steps_every_sequence_has_ended_give_the_references_results(name, lengths):
    """The kernel skips a step no sequence of the batch has (forward and backward). Here steps
    6 to 8 of 9 (and 3 to 8 for one sequence, as Greff trained, and all of an empty one) are
    skipped: outputs, final carry and gradients still equal the reference's."""
    cell, params, carry0, px, mask, cotangent = _problem(name, 7, key=3, lengths=lengths)

    def run(scan):
        return jax.jit(lambda params, carry0, px: scan(cell, params, carry0, px, mask))

    assert (
        _relative_error(run(scan_fast)(params, carry0, px), run(scan_reference)(params, carry0, px))
        < 1e-5
    )
    grads, grads_ref = (
        jax.jit(jax.grad(_loss(s, cell, mask, cotangent), argnums=(0, 1, 2)))(params, carry0, px)
        for s in (scan_fast, scan_reference)
    )
    assert _relative_error(grads, grads_ref) < 1e-5
    # The skipped steps' outputs are 0, and their input cotangents (of px) too.
    assert np.all(np.asarray(run(scan_fast)(params, carry0, px)[1])[max(lengths) :] == 0)
    assert np.all(np.asarray(grads[2])[max(lengths) :] == 0)


def test_the_kernel_tanh_is_xlas_to_the_bit():
    """y = tanh(c) with c = px (one step, every gate removed, g the identity), one value per row."""
    assert native_lstm.available()
    cell = make_cell(
        "vanilla", 1, input_gate=False, forget_gate=False, output_gate=False,
        input_activation="identity", peepholes=False,
    )  # fmt: skip
    special = [np.inf, -np.inf, np.nan, 7.9988, 7.99882, -7.99882, 0.0004, 0.00039, -1e-30, 0.0]
    xs = np.concatenate([np.linspace(-10, 10, 20001), special]).astype(np.float32)
    rows = len(xs)
    params = {"W_z": jnp.zeros((1, 1)), "R_z": jnp.zeros((1, 1)), "b_z": jnp.zeros(1)}
    carry0 = (jnp.zeros((rows, 1)), jnp.zeros((rows, 1)))
    mask = jnp.ones((1, rows), bool)
    _, ys = jax.jit(lambda px: native_lstm.recurrence(cell, params, carry0, px, mask))(
        jnp.asarray(xs).reshape(1, rows, 1)
    )
    np.testing.assert_array_equal(np.asarray(ys).ravel(), np.asarray(jax.jit(jnp.tanh)(xs)))


def test_infinite_pre_activations_give_what_the_reference_gives():
    """Saturated gates (an overflowing input product) stay finite, as on the other paths."""
    for name in ("vanilla", "nig", "cifg"):
        cell, params, carry0, px, mask, _ = _problem(name, 5)
        px = px.at[2, 0, :].set(jnp.inf).at[3, 1, ::2].set(-jnp.inf)
        outputs = [scan(cell, params, carry0, px, mask)[1] for scan in (scan_fast, scan_reference)]
        assert np.all(np.isfinite(outputs[0]))
        np.testing.assert_allclose(*map(np.asarray, outputs), rtol=1e-5, atol=1e-6)


def test_a_forward_pass_alone_keeps_no_residuals_and_gives_the_same_outputs():
    cell, params, carry0, px, mask, _ = _problem("vanilla", 19)

    def run(params, carry0, px):
        return scan_fast(cell, params, carry0, px, mask)

    alone = jax.jit(run)
    within_grad = jax.jit(lambda *a: jax.vjp(run, *a)[0])
    assert native_lstm.FORWARD_TARGET in alone.lower(params, carry0, px).as_text()
    # XLA's temporaries: the residuals (T x B x (N + 2H) floats) are not among them.
    sizes = {
        name: f.lower(params, carry0, px).compile().memory_analysis().temp_size_in_bytes
        for name, f in (("alone", alone), ("within grad", within_grad))
    }
    assert sizes["within grad"] - sizes["alone"] >= 4 * T * B * (4 * 19 + 2 * 19), sizes
    for a, b in zip(jax.tree.leaves(alone(params, carry0, px)),
                    jax.tree.leaves(within_grad(params, carry0, px)), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "name, options",
    [("fgr", {}), ("gru", {}), ("vanilla", {"param_dtype": jnp.bfloat16})],
)
def test_fast_takes_the_xla_path_where_the_kernel_does_not_apply(name, options):
    cell = make_cell(name, 4, **options)
    x = jnp.ones((T, B, D), options.get("param_dtype", jnp.float32))
    params = cell.init(jax.random.key(0), cell.initialize_carry(None, (B, D)), x[0])["params"]
    carry0, px = cell.initialize_carry(None, (B, D)), cell.project(params, x)
    mask = jnp.ones((T, B), bool)
    assert not _uses_kernel(lambda *a: scan_fast(cell, *a, mask), params, carry0, px)


def test_a_mask_of_one_column_applies_to_every_sequence():
    """The other recurrences broadcast a (T, 1) mask over the batch; the kernel reads (T, B)."""
    cell, params, carry0, px, _, _ = _problem("vanilla", 5)
    mask = jnp.array([1, 1, 0, 1, 0, 0, 1, 0, 0], bool)[:, None]
    fast = scan_fast(cell, params, carry0, px, mask)
    assert _uses_kernel(lambda p: scan_fast(cell, p, carry0, px, mask), params)
    assert _relative_error(fast, scan_reference(cell, params, carry0, px, mask)) < 1e-5


def test_a_gradient_of_the_gradient_is_one_line_that_names_the_xla_recurrence():
    cell, params, carry0, px, mask, _ = _problem("vanilla", 5)

    def penalty(scan):
        loss = lambda p: jnp.sum(jnp.tanh(scan(cell, p, carry0, px, mask)[1]))  # noqa: E731
        return lambda p: sum(jnp.sum(g**2) for g in jax.tree.leaves(jax.grad(loss)(p)))

    assert np.isfinite(float(jnp.sum(jax.grad(penalty(scan_xla))(params)["R_z"])))
    with pytest.raises(
        ValueError,
        match="first-order gradients only; for a gradient of a gradient use model.recurrence=xla",
    ):
        jax.grad(penalty(scan_fast))(params)


def test_the_kernel_takes_float32_only():
    cell, params, carry0, px, _, _ = _problem("vanilla", 5)
    assert native_lstm.supports(cell, params, carry0, px)
    with jax.enable_x64(True):

        def as64(tree):
            return jax.tree.map(lambda a: a.astype(jnp.float64), tree)

        assert not native_lstm.supports(cell, params, as64(carry0), px)
        assert not native_lstm.supports(cell, as64(params), carry0, px)
        assert not native_lstm.supports(cell, params, carry0, as64(px))


def test_xla_recurrence_never_uses_the_kernel():
    cell, params, carry0, px, mask, _ = _problem("vanilla", 5)
    assert not _uses_kernel(lambda *a: scan_xla(cell, *a, mask), params, carry0, px)


def test_model_fast_equals_reference_on_a_jsb_like_batch():
    """The model as trained: 2 layers, H = 32, 88 inputs, a loss through the readout."""
    x = jax.random.bernoulli(jax.random.key(5), 0.1, (4, 40, 88)).astype(jnp.float32)
    lengths = jnp.array([40, 23, 9, 40])
    models = {r: SequenceModel("vanilla", 32, 88, num_layers=2, recurrence=r) for r in RECURRENCES}
    params = models["fast"].init(jax.random.key(0), x, lengths)

    def loss(params, model):
        return jnp.mean(model.apply(params, x, lengths) ** 2)

    out = {
        r: jax.jit(jax.value_and_grad(lambda p, m=m: loss(p, m)))(params) for r, m in models.items()
    }
    assert _relative_error(out["fast"], out["reference"]) < 1e-5
    assert _relative_error(out["fast"], out["xla"]) < 1e-5


def test_a_batch_split_over_two_threads_gives_each_sequence_the_numbers_it_gets_alone():
    """The kernel runs a batch's two halves on two threads (run_parts): each sequence's outputs,
    final carry and input cotangents are bit for bit those of a call with that sequence alone."""
    lengths = (9, 5, 3, 0, 7)  # an odd batch: halves of 3 and 2 sequences
    # H = 160: enough work for the kernel to split (kMinSplitWork multiply-adds, T B H 4H).
    cell, params, carry0, px, mask, cotangent = _problem("vanilla", 160, lengths=lengths)

    def outputs_and_input_cotangents(carry0, px, mask, cotangent):
        def loss(carry0, px):
            (c, y), ys = scan_fast(cell, params, carry0, px, mask)
            return jnp.sum(ys * cotangent) + jnp.sum(c * c) + jnp.sum(0.7 * y)

        return scan_fast(cell, params, carry0, px, mask), jax.grad(loss, argnums=(0, 1))(carry0, px)

    run = jax.jit(outputs_and_input_cotangents)
    together = run(carry0, px, mask, cotangent)
    assert _uses_kernel(outputs_and_input_cotangents, carry0, px, mask, cotangent)
    for b in range(len(lengths)):
        rows = slice(b, b + 1)
        alone = run(
            jax.tree.map(lambda c, rows=rows: c[rows], carry0),
            px[:, rows],
            mask[:, rows],
            cotangent[:, rows],
        )
        (final, ys), (d_carry0, d_px) = together
        (final_b, ys_b), (d_carry0_b, d_px_b) = alone
        for whole, one in [
            *zip(final, final_b, strict=True),
            *zip(d_carry0, d_carry0_b, strict=True),
        ]:
            assert np.array_equal(np.asarray(whole)[rows], np.asarray(one))
        assert np.array_equal(np.asarray(ys)[:, rows], np.asarray(ys_b))
        assert np.array_equal(np.asarray(d_px)[:, rows], np.asarray(d_px_b))


def test_a_population_split_over_two_threads_gives_each_member_its_outputs_alone():
    """A population's members are the parts of the kernel's call, on whichever of its two
    threads claims each: every member's outputs are bit for bit those it gets alone."""
    cell = make_cell("vanilla", 160)  # enough work to split (kMinSplitWork)
    members = [_problem("vanilla", 160, key=k, lengths=(9, 4)) for k in range(3)]

    def outputs(params, carry0, px, mask):
        return scan_fast(cell, params, carry0, px, mask)

    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[m[1:5] for m in members])
    together = jax.jit(jax.vmap(outputs))(*stacked)
    assert _uses_kernel(jax.vmap(outputs), *stacked)
    for k, (_, params, carry0, px, mask, _) in enumerate(members):
        alone = jax.jit(outputs)(params, carry0, px, mask)
        for whole, one in zip(jax.tree.leaves(together), jax.tree.leaves(alone), strict=True):
            assert np.array_equal(np.asarray(whole)[k], np.asarray(one))


def test_vmapped_population_equals_each_member_alone():
    """vmap (a population of trials with their own weights and data): each member is one part of
    the kernel call's work, on whichever of its two threads claims it, so each member's gradients
    are those it gets alone."""
    cell = make_cell("vanilla", 6)
    members = [_problem("vanilla", 6, key=k) for k in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[(p, c, x) for _, p, c, x, _, _ in members])
    mask, cotangent = members[0][4], members[0][5]
    grad = jax.grad(_loss(scan_fast, cell, mask, cotangent), argnums=(0, 1, 2))
    together = jax.jit(jax.vmap(grad))(*stacked)
    for k, (_, params, carry0, px, _, _) in enumerate(members):
        alone = jax.jit(grad)(params, carry0, px)
        assert _relative_error(jax.tree.map(lambda a, k=k: a[k], together), alone) < 1e-6
    assert _uses_kernel(jax.vmap(grad), *stacked)


def test_vmapped_members_skip_the_steps_their_own_sequences_have_ended():
    """A population's members draw their own sequences, so each has its own mask: each skips the
    steps its own batch has ended, and gets the gradients it gets alone."""
    cell = make_cell("vanilla", 6)
    # Ended batches first and last: a skip read off another member's mask would show either way.
    lengths = [(0, 0, 0), (4, 2, 1), (9, 5, 0), (0, 0, 0)]
    members = [_problem("vanilla", 6, key=k, lengths=n) for k, n in enumerate(lengths)]

    def grad(params, carry0, px, mask, cotangent):
        loss = _loss(scan_fast, cell, mask, cotangent)
        return jax.grad(loss, argnums=(0, 1, 2))(params, carry0, px)

    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[m[1:] for m in members])
    together = jax.jit(jax.vmap(grad))(*stacked)
    for k, (_, params, carry0, px, mask, cotangent) in enumerate(members):
        alone = jax.jit(grad)(params, carry0, px, mask, cotangent)
        assert _relative_error(jax.tree.map(lambda a, k=k: a[k], together), alone) < 1e-6
    assert _uses_kernel(jax.vmap(grad), *stacked)


TWO_DEVICES = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", 2)
    import jax.numpy as jnp, numpy as np, optax
    from lstm_variants import native_lstm
    from lstm_variants.data_parallel import data_parallel_value_and_grad
    from lstm_variants.model import SequenceModel, step_mask

    B, T, D = 4, 11, 6
    model = SequenceModel("cifg", 8, D)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(B, T, D)), jnp.float32)
    batch = {"inputs": x, "targets": (x > 0).astype(x.dtype), "lengths": jnp.array([11, 3, 0, 7])}

    def loss_fn(params, batch):
        logits = model.apply({"params": params}, batch["inputs"], batch["lengths"])
        mask = step_mask(batch["lengths"], T)
        per = optax.sigmoid_binary_cross_entropy(logits, batch["targets"]).sum(-1)
        return jnp.where(mask, per, 0.0).sum() / jnp.maximum(mask.sum(), 1)

    params = model.init(jax.random.key(0), x, batch["lengths"])["params"]
    two = jax.jit(data_parallel_value_and_grad(loss_fn, 2, weight_fn=lambda b: b["lengths"].sum()))
    one = jax.jit(jax.value_and_grad(loss_fn))
    assert native_lstm.FORWARD_TARGET in two.lower(params, batch).as_text()
    (l2, g2), (l1, g1) = two(params, batch), one(params, batch)
    rel = max(jax.tree.leaves(jax.tree.map(
        lambda a, b: float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30)), g2, g1)))
    assert abs(float(l2 - l1)) < 1e-6 * abs(float(l1)) and rel < 1e-5, (l1, l2, rel)

    # A user's own shard_map, with its default check of which values vary across devices: the
    # kernel's results and cotangents carry the types of its inputs, and the gradient of the
    # replicated weights comes out summed over the devices (the transpose of their cast).
    from jax.sharding import Mesh, PartitionSpec as P
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    summed = jax.jit(jax.shard_map(
        jax.grad(loss_fn),
        mesh=mesh, in_specs=(P(), P("batch")), out_specs=P()))
    halves = [jax.tree.map(lambda a, k=k: a[2 * k : 2 * k + 2], batch) for k in (0, 1)]
    g_halves = [jax.jit(jax.grad(loss_fn))(params, half) for half in halves]
    expected = jax.tree.map(jnp.add, *g_halves)
    rel = max(jax.tree.leaves(jax.tree.map(
        lambda a, b: float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30)),
        summed(params, batch), expected)))
    assert rel < 1e-5, rel
    print("ok")
    """
)


def test_two_devices_equal_one():
    done = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_used_by_names_the_library_only_where_the_kernel_runs():
    library = native_build.library_path().name
    assert native_lstm.used_by(make_cell("vanilla", 3), "fast") == library
    assert native_lstm.used_by(make_cell("vanilla", 3), "xla") is None
    assert native_lstm.used_by(make_cell("vanilla", 3, param_dtype=jnp.bfloat16), "fast") is None
    assert native_lstm.used_by(make_cell("fgr", 3), "fast") is None
    assert native_lstm.used_by(make_cell("mgu", 3), "fast") is None
    # What a checkpoint keeps: the time loop, not the library (another CPU builds its own).
    assert native_lstm.time_loop(make_cell("vanilla", 3), "fast") == "native kernel"
    assert native_lstm.time_loop(make_cell("vanilla", 3), "xla") == "xla"
    assert native_lstm.time_loop(make_cell("gru", 3), "fast") == "xla"


def test_a_built_library_is_reused_not_compiled_again(tmp_path, monkeypatch):
    first = native_build.build(tmp_path)

    def refuse(target):
        raise AssertionError(f"compiled {target} again")

    monkeypatch.setattr(native_build, "_compile", refuse)
    assert native_build.build(tmp_path) == first
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".so"] == [first.name]


def test_a_library_cut_short_is_compiled_again_not_loaded(tmp_path, monkeypatch):
    # Loading a truncated library would kill the process with SIGBUS, past any fallback.
    built = native_build.build(tmp_path)
    whole = built.read_bytes()
    for cut in (len(whole) - 1, len(whole) // 2, 10):
        built.write_bytes(whole[:cut])
        assert not native_build.is_whole(built)
        assert native_build.build(tmp_path) == built
        assert built.read_bytes() == whole  # compiled again, in place

    built.write_bytes(whole[: len(whole) // 2])
    monkeypatch.setenv("CXX", "no-such-compiler-here")  # and none to compile it again with
    with pytest.raises(
        native_build.NoCompilerError, match="library built here before is cut short"
    ):
        native_build.build(tmp_path)


def test_libraries_unused_for_a_month_are_removed_when_a_new_one_is_built(tmp_path):
    month_ago = time.time() - native_build.UNUSED_AFTER_SECONDS - 60
    week_ago = time.time() - 7 * 24 * 3600
    stale = tmp_path / "lstm_recurrence-0123456789ab-ba9876543210.so"  # an older jaxlib's
    recent = tmp_path / "lstm_recurrence-aaaaaaaaaaaa-bbbbbbbbbbbb.so"  # another venv's
    for library, when in ((stale, month_ago), (recent, week_ago)):
        for path in (library, Path(f"{library}.lock"), library.with_suffix(".log")):
            path.write_text("")
            os.utime(path, (when, when))
    built = native_build.build(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert stale.name not in left and f"{stale.name}.lock" not in left
    assert stale.with_suffix(".log").name not in left
    assert {recent.name, f"{recent.name}.lock", built.name} <= set(left)

    # Loading a library marks it used (at most once a day), so another month does not remove it.
    os.utime(built, (week_ago, week_ago))
    assert native_build.build(tmp_path) == built
    assert time.time() - built.stat().st_mtime < 60


def _fake_compiler(folder: Path, body: str) -> Path:
    script = folder / "fake-c++"
    script.write_text(
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "fake-c++ 1.0"; exit 0; fi\n' + body + "\n"
    )
    script.chmod(0o755)
    return script


def test_cxx_may_carry_arguments_and_the_library_is_readable_by_all(tmp_path, monkeypatch):
    plain = native_build.library_path(tmp_path)
    monkeypatch.setenv("CXX", f"env {native_build.find_compiler()[0]}")  # as CXX="ccache g++"
    built = native_build.build(tmp_path)
    assert built != plain and built.is_file()  # another compiler command, another library
    assert built.stat().st_mode & 0o444 == 0o444  # others sharing the cache can load it


def test_an_unwritable_user_cache_builds_in_the_temporary_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"  # the cache's parent is a file: nothing can be made there
    blocker.write_text("")
    monkeypatch.setattr(native_build, "user_cache_dir", lambda: blocker / "lstm_variants")
    built = native_build.build()
    assert built.parent == native_build.fallback_folder() and built.is_file()


def test_without_a_compiler_a_library_built_before_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(native_build.NativeBuildError, match="CXX=no-such-compiler-here"):
        native_build.build(tmp_path)
    monkeypatch.delenv("CXX")
    built = native_build.build(tmp_path)
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    assert native_build.build(tmp_path) == built


def test_without_a_compiler_a_library_built_before_in_the_temporary_folder_is_used(
    tmp_path, monkeypatch
):
    """A read-only home built the library in the temporary folder: found there later too."""
    import shutil

    earlier = native_build.build()  # this machine's library, copied where an earlier run put it
    fallback = tmp_path / "fallback"
    fallback.mkdir()
    shutil.copy(earlier, fallback / earlier.name)
    monkeypatch.setattr(native_build, "user_cache_dir", lambda: tmp_path / "empty_cache")
    monkeypatch.setattr(native_build, "fallback_folder", lambda: fallback)
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    assert native_build.build() == fallback / earlier.name
    (fallback / earlier.name).unlink()
    with pytest.raises(native_build.NativeBuildError, match="^CXX=no-such-compiler-here is not"):
        native_build.build()


def test_a_compilation_removes_partial_files_left_an_hour_ago(tmp_path):
    old, recent = tmp_path / ".building-old.so", tmp_path / ".building-recent.so"
    for partial in (old, recent):
        partial.write_bytes(b"half a library")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    native_build.build(tmp_path)
    assert not old.exists() and recent.exists()  # another process may still be writing that one


def test_a_failing_compiler_is_one_line_and_its_output_kept(tmp_path, monkeypatch):
    compiler = _fake_compiler(tmp_path, "echo 'lstm_recurrence.cc:1: error: boom' >&2; exit 3")
    monkeypatch.setenv("CXX", str(compiler))
    with pytest.raises(native_build.NativeBuildError) as raised:
        native_build.build(tmp_path / "cache")
    message = str(raised.value)
    assert "\n" not in message and "exit 3" in message
    log = Path(message.rsplit("its output is in ", 1)[1])
    assert "error: boom" in log.read_text()
    # Nothing half-built is left where a library is looked for.
    assert not list((tmp_path / "cache").glob("*.so"))


def test_a_missing_compiler_named_by_cxx_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(native_build.NativeBuildError, match="CXX=no-such-compiler-here is not"):
        native_build.build(tmp_path)


def test_a_cxx_with_an_unbalanced_quote_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", 'g++ "-O2')
    with pytest.raises(native_build.NoCompilerError, match="is not a command line: No closing"):
        native_build.build(tmp_path)


def test_concurrent_builds_compile_once(tmp_path):
    """Two processes that find no library: one compiles, the other waits and loads the same file."""
    calls = tmp_path / "calls"
    real = native_build.find_compiler()[0]
    compiler = _fake_compiler(tmp_path, f'echo x >> {calls}; exec {real} "$@"')
    script = (
        "import sys; from pathlib import Path; from lstm_variants import native_build; "
        "print(native_build.load(Path(sys.argv[1]))._name)"
    )
    env = {**os.environ, "CXX": str(compiler)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "cache")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert outputs[0][0] == outputs[1][0]
    assert calls.read_text() == "x\n"


WITHOUT_COMPILER = textwrap.dedent(
    """
    import jax, jax.numpy as jnp
    from lstm_variants.model import SequenceModel
    x = jnp.ones((2, 5, 3)); lengths = jnp.array([5, 2])
    out = {}
    for r in ("fast", "reference"):
        model = SequenceModel("vanilla", 4, 2, recurrence=r)
        out[r] = model.apply(model.init(jax.random.key(0), x, lengths), x, lengths)
    SequenceModel("np", 4, 2).init(jax.random.key(0), x, lengths)  # asks again: no second warning
    assert float(jnp.max(jnp.abs(out["fast"] - out["reference"]))) < 1e-5
    from lstm_variants.cells import make_cell
    from lstm_variants.native_lstm import used_by
    assert used_by(make_cell("vanilla", 4), "fast").startswith(
        "unavailable: CXX=no-such-compiler-here is not")
    print("ok")
    """
)


def test_without_a_compiler_fast_falls_back_with_one_warning_line(tmp_path):
    # No library built before either: not in the user cache, nor in the temporary folder.
    env = {
        **os.environ,
        "CXX": "no-such-compiler-here",
        "XDG_CACHE_HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_COMPILER],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if "native LSTM kernel" in line]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("lstm_variants: warning: ")
    assert "CXX=no-such-compiler-here" in warnings[0] and "model.recurrence=xla" in warnings[0]
