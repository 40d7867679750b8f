"""The LSTM's time loop as one native CPU kernel call forward and one backward (``recurrence='fast'``).

Same contract and numbers as ``recurrence.scan_xla`` for ``LSTMCell`` (all of Greff's variants
but FGR, and Jozefowicz's LSTM, LSTM-f/-i/-o/-b)::

    (c_T, y_T), ys = recurrence(cell, params, (c_0, y_0), px, mask)

Under differentiation the forward kernel keeps, per step, the pre-activations ``px_t + y' R``
and the carry it started from (a forward pass alone keeps nothing); the backward kernel
recomputes the gates from them, runs ``LSTMCell.step_vjp``'s pullback step by step, and returns
the pre-activation cotangents d_pre. Steps that no sequence of the batch has are skipped both
ways (their outputs and cotangents are 0). Then, as in the XLA fast path,
``dR = sum_t y'_t^T d_pre_t`` is one (H, T*B) x (T*B, N) product after the loop, and ``d_px`` is
d_pre itself. The kernel's tanh is XLA's CPU tanh to the bit, so the two paths agree to float32
rounding (``tests/test_native_lstm.py``: against ``scan_reference``, padded batches, every
variant, under ``vmap`` and on two devices).

A call with work enough runs on two threads, its own and one of XLA's intra-op pool: a vmapped
population's members, or else the batch's two halves, are parts that either thread claims
(``run_parts`` in the kernel). The parts depend on the shapes alone, so the numbers do not
depend on which thread ran which.

``recurrence.scan_fast`` uses it where ``supports`` holds and ``available()`` (the kernel
compiled and loaded, ``native_build``); elsewhere, and with ``model.recurrence=xla``, the
``lax.scan`` with a custom VJP runs.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from lstm_variants.cells.base import Params
from lstm_variants.cells.lstm import LSTMCell
from lstm_variants.native_build import NativeBuildError, load

FORWARD_TARGET = "lstm_variants_lstm_recurrence_forward"
BACKWARD_TARGET = "lstm_variants_lstm_recurrence_backward"
# Must match the kernel's enum Flags.
FLAGS = {
    "input_gate": 1,
    "forget_gate": 2,
    "output_gate": 4,
    "coupled_gates": 8,
    "input_tanh": 16,
    "output_tanh": 32,
    "peepholes": 64,
}
PEEPHOLE_GATES = ("i", "f", "o")
_outcome: str | None = None


def _computes(cell) -> bool:
    """Whether the kernel has this cell's equations (an ``LSTMCell`` without full gate
    recurrence) and runs where it is traced (the CPU); the dtypes are checked by the callers."""
    return (
        isinstance(cell, LSTMCell)
        and not cell.full_gate_recurrence
        and {cell.input_activation, cell.output_activation} <= {"tanh", "identity"}
        and jax.default_backend() == "cpu"
    )


def supports(cell, params: Params, carry0, px: jax.Array) -> bool:
    """Whether the kernel computes this layer: ``_computes(cell)``, and all in float32
    (parameters, initial carry, inputs)."""
    return _computes(cell) and all(
        a.dtype == jnp.float32 for a in (px, *params.values(), *jax.tree.leaves(carry0))
    )


@functools.cache
def available() -> bool:
    """Compile (first time on this machine), load and register the kernel; False, with one
    warning line saying why, when it cannot be (no compiler, say): the XLA path runs instead."""
    global _outcome
    try:
        library = load()
    except NativeBuildError as error:
        _outcome = f"unavailable: {error}"
        # On stderr, as the app's other warnings (Hydra would send a logging record to stdout).
        print(
            f"lstm_variants: warning: the native LSTM kernel is unavailable ({error}); LSTM "
            "layers run on the XLA recurrence (model.recurrence=xla), about 1.3x slower on the CPU",
            file=sys.stderr,
        )
        return False
    for target, symbol in (
        (FORWARD_TARGET, library.LstmRecurrenceForward),
        (BACKWARD_TARGET, library.LstmRecurrenceBackward),
    ):
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(symbol), platform="cpu")
    _outcome = Path(library._name).name
    return True


def used_by(cell, recurrence: str) -> str | None:
    """For a run's record: what the LSTM layers of a model of ``cell`` trained with ``recurrence``
    ran on. The kernel library's file name (it hashes source, compiler and CPU) when they ran on
    the kernel; 'unavailable: <why>' when ``fast`` wanted it and could not build it; None when the
    kernel does not apply (another cell or FGR, ``xla`` or ``reference``, not float32, not the CPU).
    """
    if not (recurrence == "fast" and _computes(cell) and cell.param_dtype == jnp.float32):
        return None
    available()
    return _outcome


def time_loop(cell, recurrence: str) -> str:
    """'native kernel' where ``used_by`` names a library (the LSTM layers run on the kernel),
    else 'xla' (another cell, ``xla`` or ``reference``, not the CPU, or no kernel built)."""
    used = used_by(cell, recurrence)
    return "xla" if used is None or used.startswith("unavailable") else "native kernel"


def flags_of(cell: LSTMCell) -> int:
    """The kernel's bit flags for this cell's variant."""
    present = {
        "input_gate": cell.input_gate,
        "forget_gate": cell.forget_gate,
        "output_gate": cell.output_gate,
        "coupled_gates": cell.coupled_gates,
        "input_tanh": cell.input_activation == "tanh",
        "output_tanh": cell.output_activation == "tanh",
        "peepholes": cell.peepholes,
    }
    return sum(bit for name, bit in FLAGS.items() if present[name])


def recurrence(cell: LSTMCell, params: Params, carry0, px, mask):
    """``scan_xla``'s result for an LSTM layer, computed by the kernel (``available()`` first).

    First-order gradients only: a gradient of its gradient (a gradient penalty, a Hessian-vector
    product) is a one-line ValueError that says to use ``model.recurrence=xla``.
    """
    (recurrent,), step_params = cell.split_recurrent(params)
    zeros = jnp.zeros((cell.features,), px.dtype)
    peepholes = jnp.stack([step_params.get(f"p_{g}", zeros) for g in PEEPHOLE_GATES])
    # The kernel reads a (T, B) mask; the other recurrences broadcast one of (T, 1) as well.
    mask = jnp.broadcast_to(mask, px.shape[:2])
    args = _varying_alike(recurrent, peepholes, *carry0, px, mask.astype(px.dtype))
    recurrent, peepholes, c0, y0, px, mask = args
    return _kernel(flags_of(cell), recurrent, peepholes, (c0, y0), px, mask)


def _varying_axes(x) -> frozenset:
    """The ``shard_map`` mesh axes along which ``x`` varies (none outside ``shard_map``)."""
    kind = getattr(jax.typeof(x), "manual_axis_type", None)
    return kind.varying if kind is not None else frozenset()


def _varying_alike(*arrays):
    """``arrays``, each made to vary along every mesh axis any of them varies along.

    Under ``shard_map`` (with its default ``check_vma``) JAX types each value by the mesh axes it
    varies along, and a custom VJP's cotangents must have its inputs' types. ``ffi_call``'s results
    vary along none, so the kernel's inputs are all cast to the union first (autodiff transposes
    that cast into the ``psum`` that a replicated weight's gradient needs), and its results after.
    """
    axes = frozenset().union(*(_varying_axes(a) for a in arrays))
    return tuple(
        jax.lax.pcast(a, tuple(sorted(missing)), to="varying")
        if (missing := axes - _varying_axes(a))
        else a
        for a in arrays
    )


def _shape(shape, like) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(shape, like.dtype)


def _forward(flags, recurrent, peepholes, carry0, px, mask, keep_residuals=True):
    steps, batch, _ = px.shape
    hidden = recurrent.shape[0]
    c0, y0 = carry0
    if keep_residuals:  # the forward pass of a gradient: differentiating it is a 2nd derivative
        recurrent, peepholes, c0, y0, px = _first_order_only(recurrent, peepholes, c0, y0, px)
    per_step = (steps, batch, hidden)
    # Empty residuals tell the kernel not to keep them (a forward pass nobody differentiates).
    kept = (px.shape, per_step, per_step) if keep_residuals else ((0,), (0,), (0,))
    ys, c_final, y_final, pre, c_before, y_before = jax.ffi.ffi_call(
        FORWARD_TARGET,
        (
            _shape(per_step, px),
            _shape(c0.shape, px),
            _shape(y0.shape, px),
            *(_shape(shape, px) for shape in kept),
        ),
        vmap_method="broadcast_all",
    )(px, recurrent, peepholes, mask, c0, y0, flags=np.int64(flags))
    ys, c_final, y_final, pre, c_before, y_before = _varying_alike(
        px, ys, c_final, y_final, pre, c_before, y_before
    )[1:]
    return ((c_final, y_final), ys), (recurrent, peepholes, mask, pre, c_before, y_before)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _kernel(flags, recurrent, peepholes, carry0, px, mask):
    return _forward(flags, recurrent, peepholes, carry0, px, mask, keep_residuals=False)[0]


@jax.custom_jvp
def _first_order_only(*arrays):
    """``arrays``; differentiating them (in the forward or backward pass of a gradient: a second
    derivative) is a clear error, where the FFI call would raise JAX's 'cannot be
    differentiated'."""
    return arrays


@_first_order_only.defjvp
def _first_order_only_jvp(primals, tangents):
    raise ValueError(
        "the native LSTM kernel (model.recurrence=fast on the CPU) has first-order gradients "
        "only; for a gradient of a gradient use model.recurrence=xla"
    )


def _backward(flags, residuals, cotangents):
    recurrent, peepholes, mask, pre, c_before, y_before = residuals
    (d_c_final, d_y_final), d_ys = cotangents
    recurrent, peepholes, pre, c_before, y_before, d_ys, d_c_final, d_y_final = _first_order_only(
        recurrent, peepholes, pre, c_before, y_before, d_ys, d_c_final, d_y_final
    )
    hidden, width = recurrent.shape
    d_pre, d_peepholes, d_c0, d_y0 = jax.ffi.ffi_call(
        BACKWARD_TARGET,
        (
            _shape(pre.shape, pre),
            _shape(peepholes.shape, pre),
            _shape(d_c_final.shape, pre),
            _shape(d_y_final.shape, pre),
        ),
        vmap_method="broadcast_all",
    )(
        pre,
        c_before,
        recurrent.T,
        peepholes,
        mask,
        d_ys,
        d_c_final,
        d_y_final,
        flags=np.int64(flags),
    )
    d_pre, d_peepholes, d_c0, d_y0 = _varying_alike(d_ys, d_pre, d_peepholes, d_c0, d_y0)[1:]
    d_recurrent = y_before.reshape(-1, hidden).T @ d_pre.reshape(-1, width)
    return d_recurrent, d_peepholes, (d_c0, d_y0), d_pre, None


_kernel.defvjp(_forward, _backward)
