"""The time loop of a recurrent layer: a plain ``lax.scan`` and fast paths with the same numbers.

``RECURRENCES`` (``model.recurrence``): 'fast' (default: on the CPU the LSTM's native kernel,
``native_lstm``, else 'xla'), 'xla' (the custom-VJP scan below, any cell, any backend) and
'reference' (the plain scan).

Both compute, for t = 1..T with a mask m_t (padded steps leave the carry unchanged)::

    a_t[k] = recurrent_inputs(carry_{t-1})[k]
    carry_t, y_t = step(carry_{t-1}, px_t, (a_t[k] @ R[k])_k)     if m_t, else (carry_{t-1}, 0)

Autodiff of the plain scan accumulates dR[k] += a_t[k]^T g_t[k] with one small outer product per
step inside the backward loop. The fast path's backward loop only propagates the carry cotangent;
it stacks the g_t[k] and forms every dR[k] = sum_t a_t[k]^T g_t[k] after the loop as one large
matrix product (T*B rows), which is what BLAS does well and what ``flax.linen.RNN`` cannot do.
That is ``scan_xla``; ``scan_fast`` hands an LSTM on the CPU to ``native_lstm``.

No library provides this for arbitrary cells (cuDNN-style fused kernels exist only for the standard
LSTM/GRU and not on CPU), hence it is written here. ``tests/test_recurrence_speedpath.py`` checks it
against the plain scan, and ``tests/test_cells.py`` both paths against per-step references written
from the equations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lstm_variants import native_lstm
from lstm_variants.cells.base import Params, RecurrentCell


def _masked_step(cell: RecurrentCell, step_params: Params, carry, px_t, ms, valid):
    """``cell.step``, except that a padded step (valid False) keeps the carry and outputs zeros."""
    new_carry, y = cell.step(step_params, carry, px_t, ms)
    keep = valid[:, None]
    new_carry = jax.tree.map(lambda new, old: jnp.where(keep, new, old), new_carry, carry)
    return new_carry, jnp.where(keep, y, jnp.zeros_like(y))


def _products(cell: RecurrentCell, recurrent, carry) -> tuple[jax.Array, ...]:
    return tuple(a @ r for a, r in zip(cell.recurrent_inputs(carry), recurrent, strict=True))


def scan_reference(cell: RecurrentCell, params: Params, carry0, px, mask, unroll: int = 1):
    """Plain ``lax.scan`` over time; gradients by ordinary autodiff.

    Args:
      cell: the cell defining ``recurrent_inputs`` and ``step``.
      params: the cell's parameters by paper name.
      carry0: initial carry, arrays of shape (B, H).
      px: input pre-activations, (T, B, P), from ``cell.project``.
      mask: (T, B) booleans, True on valid steps.
      unroll: steps per loop iteration of the compiled scan.

    Returns:
      (final carry, outputs (T, B, H)).
    """
    recurrent, step_params = cell.split_recurrent(params)

    def body(carry, inputs):
        px_t, valid = inputs
        return _masked_step(
            cell, step_params, carry, px_t, _products(cell, recurrent, carry), valid
        )

    return jax.lax.scan(body, carry0, (px, mask), unroll=unroll)


def scan_fast(cell: RecurrentCell, params: Params, carry0, px, mask, unroll: int = 1):
    """The fastest path with ``scan_reference``'s values and gradients (``model.recurrence=fast``).

    On the CPU an LSTM layer (every variant but FGR) runs as one native kernel call forward and
    one backward (``native_lstm``; ``unroll`` does not apply); every other layer, and an LSTM when
    the kernel cannot be built, runs ``scan_xla``.
    """
    if native_lstm.supports(cell, params, carry0, px) and native_lstm.available():
        return native_lstm.recurrence(cell, params, carry0, px, mask)
    return scan_xla(cell, params, carry0, px, mask, unroll)


def scan_xla(cell: RecurrentCell, params: Params, carry0, px, mask, unroll: int = 1):
    """Same values and gradients as ``scan_reference``; recurrent-weight gradients after the loop.

    A ``lax.scan`` with a custom VJP (``model.recurrence=xla``): runs on every backend and for every
    cell.
    """
    recurrent, step_params = cell.split_recurrent(params)
    return _fast_recurrence(cell, unroll)(recurrent, step_params, carry0, px, mask)


def _fast_recurrence(cell: RecurrentCell, unroll: int):
    """Build the custom-VJP recurrence for one cell (closing over the cell keeps it static)."""

    def forward_scan(recurrent, step_params, carry0, px, mask):
        def body(carry, inputs):
            px_t, valid = inputs
            ms = _products(cell, recurrent, carry)
            new_carry, y = _masked_step(cell, step_params, carry, px_t, ms, valid)
            return new_carry, (y, carry, ms)

        final, (ys, previous, products) = jax.lax.scan(body, carry0, (px, mask), unroll=unroll)
        return (final, ys), (previous, products)

    @jax.custom_vjp
    def recurrence(recurrent, step_params, carry0, px, mask):
        return forward_scan(recurrent, step_params, carry0, px, mask)[0]

    def fwd(recurrent, step_params, carry0, px, mask):
        out, (previous, products) = forward_scan(recurrent, step_params, carry0, px, mask)
        return out, (recurrent, step_params, previous, products, px, mask)

    def bwd(residuals, cotangents):
        recurrent, step_params, previous, products, px, mask = residuals
        d_final, d_ys = cotangents
        zero_params = jax.tree.map(jnp.zeros_like, step_params)
        # Transposed once here, not inside the loop: on XLA CPU a product with a transposed operand
        # inside the loop body re-packs that operand at every step (measured ~3x the plain product).
        recurrent_t = tuple(r.T for r in recurrent)

        def body(state, inputs):
            d_carry, d_step_params = state
            carry_prev, ms, px_t, valid, d_y = inputs
            _, inputs_vjp = jax.vjp(cell.recurrent_inputs, carry_prev)
            keep = valid[:, None]
            # A padded step passes the carry cotangent straight through; a valid one pulls back.
            d_new = jax.tree.map(lambda d: jnp.where(keep, d, jnp.zeros_like(d)), d_carry)
            analytic = cell.step_vjp(
                step_params, carry_prev, px_t, ms, d_new, jnp.where(keep, d_y, jnp.zeros_like(d_y))
            )
            if analytic is None:

                def local(carry, px_t, ms, step_params):
                    return _masked_step(cell, step_params, carry, px_t, ms, valid)

                _, local_vjp = jax.vjp(local, carry_prev, px_t, ms, step_params)
                d_carry_prev, d_px, d_ms, d_sp = local_vjp((d_carry, d_y))
            else:
                d_carry_prev, d_px, d_ms, d_sp = analytic
                d_carry_prev = jax.tree.map(
                    lambda d_step, d: d_step + jnp.where(keep, jnp.zeros_like(d), d),
                    d_carry_prev,
                    d_carry,
                )
            d_inputs = tuple(d_m @ r_t for d_m, r_t in zip(d_ms, recurrent_t, strict=True))
            (d_through_products,) = inputs_vjp(d_inputs)
            d_carry_prev = jax.tree.map(jnp.add, d_carry_prev, d_through_products)
            d_step_params = jax.tree.map(jnp.add, d_step_params, d_sp)
            return (d_carry_prev, d_step_params), (d_px, d_ms)

        (d_carry0, d_step_params), (d_px, d_ms) = jax.lax.scan(
            body,
            (d_final, zero_params),
            (previous, products, px, mask, d_ys),
            reverse=True,
            unroll=unroll,
        )
        # The deferred weight gradient: dR[k] = sum_t a_t[k]^T g_t[k] as one (K, T*B) x (T*B, N).
        inputs_all = jax.vmap(cell.recurrent_inputs)(previous)
        d_recurrent = tuple(
            a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
            for a, g in zip(inputs_all, d_ms, strict=True)
        )
        return d_recurrent, d_step_params, d_carry0, d_px, None

    recurrence.defvjp(fwd, bwd)
    return recurrence


RECURRENCES = {"fast": scan_fast, "xla": scan_xla, "reference": scan_reference}
