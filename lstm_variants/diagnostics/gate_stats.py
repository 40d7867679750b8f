"""Gate statistics of Karpathy, Johnson & Fei-Fei (2015), "Visualizing and Understanding Recurrent
Networks", section 4.3.

For a gate g with values g_t[b, j] in (0, 1) on the valid steps of a batch of sequences, unit j is::

    left-saturated  a fraction  L_j = #{(t, b): g_t[b, j] < 0.1} / #{valid (t, b)}  of the time
    right-saturated a fraction  R_j = #{(t, b): g_t[b, j] > 0.9} / #{valid (t, b)}

A scatter of (L_j, R_j) per gate shows at a glance whether a gate acts as a switch (near the L or R
axis), stays undecided (near the origin) or is always open (R_j near 1). A unit whose *retention*
(the share of its old state it keeps) is above 0.9 for most of the time is a long-memory unit: the
LSTM's forget gate f, the GRU's update gate u (h_new = u h + (1 - u) n), 1 - f for the MGU and
1 - u for the MUTs. A cell without a forget gate (NFG) retains everything: f = 1.

Gate values come from the cell's ``gate_values(step_params, carry, px, ms)``, which each cell family
computes with the same code as its ``step``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_variants.cells import GRUCell, LSTMCell, MGUCell, MUTCell, RecurrentCell
from lstm_variants.cells.base import Params
from lstm_variants.data import SequenceDataset
from lstm_variants.diagnostics.gradient_flow import layer_inputs, probed_layer, run_layer
from lstm_variants.model import SequenceModel

SATURATED_BELOW = 0.1  # Karpathy et al.'s thresholds
SATURATED_ABOVE = 0.9


def gate_values(
    cell: RecurrentCell, step_params: Params, carry, px: jax.Array, ms: tuple[jax.Array, ...]
) -> dict[str, jax.Array]:
    """{gate name: (B, H) values} at one step: the cell's ``gate_values`` (computed by the code its
    ``step`` uses). Cells without gates (the tanh RNN) give {}."""
    return cell.gate_values(step_params, carry, px, ms)


def recurrence_gates(
    cell: RecurrentCell, params: Params, carry0, px: jax.Array, mask: jax.Array
) -> dict[str, jax.Array]:
    """Every gate's values at every step: {gate: (T, B, H)} (padded steps included; mask them)."""
    recurrent, step_params = cell.split_recurrent(params)

    def body(carry, inputs):
        px_t, valid = inputs
        ms = tuple(a @ r for a, r in zip(cell.recurrent_inputs(carry), recurrent, strict=True))
        gates = gate_values(cell, step_params, carry, px_t, ms)
        new_carry, _ = cell.step(step_params, carry, px_t, ms)
        keep = valid[:, None]
        new_carry = jax.tree.map(lambda new, old: jnp.where(keep, new, old), new_carry, carry)
        return new_carry, gates

    return jax.lax.scan(body, carry0, (px, mask))[1]


def retention(cell: RecurrentCell, gates: Mapping[str, jax.Array]) -> jax.Array | None:
    """The share of the old state each unit keeps per step (see the module docstring), or None.

    None for cells that keep nothing by a gate (the tanh RNN).
    """
    if isinstance(cell, LSTMCell):
        if "f" in gates:
            return gates["f"]
        any_gate = next(iter(gates.values()), None)
        # NFG: f = 1 by definition (shaped like the other gates).
        return None if any_gate is None else jnp.ones_like(any_gate)
    if isinstance(cell, GRUCell):
        return gates.get("u")
    if isinstance(cell, MGUCell):
        return None if "f" not in gates else 1.0 - gates["f"]
    if isinstance(cell, MUTCell):
        return None if "u" not in gates else 1.0 - gates["u"]
    return None


class Saturation(NamedTuple):
    """Per-unit saturation fractions of one gate, each (H,)."""

    left: np.ndarray
    right: np.ndarray


def saturation_fractions(values: jax.Array, mask: jax.Array) -> Saturation:
    """Fractions of the valid steps on which each unit is below 0.1 and above 0.9.

    Args:
      values: (T, B, H) gate values.
      mask: (T, B) booleans, True on valid steps.

    Returns:
      ``Saturation(left, right)``, each (H,), exact ratios of counts; NaN for a unit with a
      non-finite value on a valid step (a diverged network's NaN gate is neither saturated nor
      not, and counting it as 'never saturated' would read as a healthy unit).
    """
    valid = np.asarray(mask)[..., None]
    values = np.asarray(values)
    count = valid.sum()
    broken = (~np.isfinite(values) & valid).any(axis=(0, 1))
    left = ((values < SATURATED_BELOW) & valid).sum(axis=(0, 1)) / count
    right = ((values > SATURATED_ABOVE) & valid).sum(axis=(0, 1)) / count
    return Saturation(np.where(broken, np.nan, left), np.where(broken, np.nan, right))


def long_memory_units(
    retained: jax.Array, mask: jax.Array, above: float = SATURATED_ABOVE, mostly: float = 0.5
) -> list[tuple[int, float]]:
    """Units whose retention is above ``above`` on more than a ``mostly`` fraction of valid steps.

    Args:
      retained: (T, B, H) retention values (``retention``).
      mask: (T, B) valid steps.
      above: the retention a long-memory unit keeps (default 0.9).
      mostly: the fraction of the time it must keep it (default 0.5).

    Returns:
      (unit index, fraction of the time above ``above``), most persistent first.
    """
    valid = np.asarray(mask)[..., None]
    fraction = ((np.asarray(retained) > above) & valid).sum(axis=(0, 1)) / valid.sum()
    units = np.flatnonzero(fraction > mostly)
    return sorted(((int(j), float(fraction[j])) for j in units), key=lambda u: -u[1])


class GateReport(NamedTuple):
    """Gate statistics of one model.

    Attributes:
      saturation: {gate: Saturation}.
      retention_values: the retention on every valid step, flat (for the histogram), or None.
      long_memory: ``long_memory_units`` of the retention ([] without one; None where the
        retention is not finite on a valid step: a diverged network's units are neither
        long-memory nor not, and [] would read as a measured "none").
      units: H.
    """

    saturation: dict[str, Saturation]
    retention_values: np.ndarray | None
    long_memory: list[tuple[int, float]] | None
    units: int


def model_gates(
    model: SequenceModel, variables: Mapping[str, Any], inputs, lengths, layer: int | None = None
) -> tuple[dict[str, jax.Array], jax.Array | None, jax.Array]:
    """({gate: (T, B, H)}, retention (T, B, H) or None, mask (T, B)) of one layer of a model."""
    layer = probed_layer(model, layer)
    hidden, mask = layer_inputs(model, variables, inputs, lengths)
    for index in range(layer):
        hidden = run_layer(model, variables, index, hidden, mask)
    cell = model.cell_template()
    params = variables["params"][f"layer_{layer}"]
    carry0 = model.initial_carries(inputs.shape[0])[layer]
    gates = recurrence_gates(cell, params, carry0, cell.project(params, hidden), mask)
    return gates, retention(cell, gates), mask


@functools.cache
def _compiled_gates(model: SequenceModel, layer: int | None):
    """``model_gates`` jitted once per (model, layer)."""
    return jax.jit(lambda variables, x, n: model_gates(model, variables, x, n, layer))


def gate_report(
    model: SequenceModel,
    variables: Mapping[str, Any],
    data: SequenceDataset,
    num_sequences: int = 128,
    split: str = "valid",
    layer: int | None = None,
    mostly: float = 0.5,
) -> GateReport:
    """Saturation per gate and unit, retention values and long-memory units on a split's sequences."""
    part = getattr(data, split)
    inputs = jnp.asarray(part.inputs[:num_sequences])
    lengths = jnp.asarray(part.lengths[:num_sequences])
    gates, retained, mask = _compiled_gates(model, layer)(variables, inputs, lengths)
    saturation = {name: saturation_fractions(values, mask) for name, values in gates.items()}
    if retained is None:
        return GateReport(saturation, None, [], model.hidden_size)
    flat = np.asarray(retained)[np.asarray(mask)].ravel()
    long_memory = long_memory_units(retained, mask, mostly=mostly)
    return GateReport(
        saturation, flat, long_memory if np.isfinite(flat).all() else None, model.hidden_size
    )
