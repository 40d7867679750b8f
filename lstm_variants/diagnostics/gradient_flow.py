"""Gradient flow through time: how much of the error at the last step reaches each earlier state.

For a sequence of length T with loss L_T read at its last step (its last step with a target, where
per-step class targets end in unlabelled frames), and a cell whose carry holds the
hidden state h_t (and, for the LSTM, the cell state c_t), this module measures::

    g_h(k) = E_seq || dL_T / dh_{T-k} ||_2        g_c(k) = E_seq || dL_T / dc_{T-k} ||_2

against the lag k = T - t, averaging the per-sequence norms over sequences (each sequence is
aligned at its own last valid step, so padding never counts; ``average='geometric'`` takes
exp E_seq log || . || instead). The derivatives are *total*: every
path from the state at step t to L_T counts, the readout at step T included. For the LSTM, whose
carry is (c_t, y_t), c_t means the cell state *as carried into step t + 1*: y_t was computed from it
before the probe, so g_c(k) is the derivative with y_t held fixed, g_c(0) = 0 (the readout sees y_T)
and g_c(k >= 1) is the signal on the constant error carousel (docs/diagnostics.md).

How: a zero "probe" p_t is added to the carry right after step t, so that
``carry_t' = step(carry_{t-1}) + p_t`` and the run is unchanged; then ``dL_T / dp_t`` is exactly the
derivative with respect to the state at step t. One ``jax.grad`` with respect to all probes gives
every lag at once (one backward pass), through the same ``cell.step`` the model trains with.

The rate per step is the r of the least-squares fit ``log g(k) = log g_0 + k log r`` over a range of
lags: r < 1 is a vanishing gradient (the signal shrinks by r per step), r > 1 an exploding one. A
linear RNN h_t = a h_{t-1} + W x_t has g_h(k) proportional to a^k, so its r is a.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from lstm_variants.cells import LSTMCell, RecurrentCell
from lstm_variants.cells.base import Params
from lstm_variants.data import SequenceDataset
from lstm_variants.errors import ConfigError
from lstm_variants.losses import IGNORE, frame_losses
from lstm_variants.model import SequenceModel, step_mask

Carry = Any  # one (B, H) array or a tuple of them, as the cell defines


def carry_names(cell: RecurrentCell) -> tuple[str, ...]:
    """The name of each array of ``cell``'s carry: 'h' the hidden state, 'c' the LSTM cell state.

    The LSTM's carry is (c, y, *previous gates for FGR); every other cell's carry is h alone.
    """
    if isinstance(cell, LSTMCell):
        return ("c", "h", *(f"gate_{g}" for g in cell.recurrent_gates()))
    return ("h",)


def as_named(cell: RecurrentCell, carry: Carry) -> dict[str, jax.Array]:
    """The carry as {name: array}, names from ``carry_names``."""
    arrays = carry if isinstance(carry, tuple) else (carry,)
    return dict(zip(carry_names(cell), arrays, strict=True))


def probed_recurrence(
    cell: RecurrentCell, params: Params, carry0: Carry, px: jax.Array, mask: jax.Array, probes
) -> tuple[Carry, jax.Array]:
    """The recurrence of ``recurrence.scan_reference`` with ``probes[t]`` added to the carry after step t.

    Args:
      cell: the cell.
      params: its parameters by paper name.
      carry0: the initial carry, arrays of shape (B, H).
      px: (T, B, P) input pre-activations from ``cell.project``.
      mask: (T, B) booleans, True on valid steps; a padded step keeps the carry and outputs zero.
      probes: a pytree like ``carry0`` with a leading time axis (T, B, H); zeros leave the run as it is.

    Returns:
      (final carry, outputs (T, B, H)); the output at t is ``cell.output_of`` of the probed carry, so
      a probe on h at the last step reaches the readout too.
    """
    recurrent, step_params = cell.split_recurrent(params)

    def body(carry, inputs):
        px_t, valid, probe_t = inputs
        ms = tuple(a @ r for a, r in zip(cell.recurrent_inputs(carry), recurrent, strict=True))
        new_carry, _ = cell.step(step_params, carry, px_t, ms)
        new_carry = jax.tree.map(jnp.add, new_carry, probe_t)
        keep = valid[:, None]
        new_carry = jax.tree.map(lambda new, old: jnp.where(keep, new, old), new_carry, carry)
        output = cell.output_of(new_carry)
        return new_carry, jnp.where(keep, output, jnp.zeros_like(output))

    return jax.lax.scan(body, carry0, (px, mask, probes))


def zero_probes(carry0: Carry, num_steps: int) -> Carry:
    """Zeros shaped like ``carry0`` with a leading time axis of ``num_steps``."""
    return jax.tree.map(lambda c: jnp.zeros((num_steps, *c.shape), c.dtype), carry0)


def carry_gradients(
    cell: RecurrentCell,
    params: Params,
    carry0: Carry,
    px: jax.Array,
    mask: jax.Array,
    sequence_losses: Callable[[jax.Array], jax.Array],
) -> dict[str, jax.Array]:
    """dL_T/d(carry_t) for every step t, for one recurrent layer.

    Args:
      cell, params, carry0, px, mask: as ``probed_recurrence``.
      sequence_losses: (T, B, H) layer outputs -> (B,) each sequence's own last-step loss.

    Returns:
      {carry name: (T, B, H)}: row b at step t is d(loss of sequence b) / d(state of b at t).
      Sequences are independent, so the gradient of the summed losses gives each its own.
    """

    def total_loss(probes):
        _, outputs = probed_recurrence(cell, params, carry0, px, mask, probes)
        return jnp.sum(sequence_losses(outputs))

    grads = jax.grad(total_loss)(zero_probes(carry0, px.shape[0]))
    return as_named(cell, grads)


def model_carry_gradients(
    model: SequenceModel,
    variables: Mapping[str, Any],
    inputs: jax.Array,
    targets: jax.Array,
    lengths: jax.Array,
    target: str,
    layer: int | None = None,
) -> dict[str, jax.Array]:
    """dL_T/d(carry_t) of one layer of a ``SequenceModel``, with L_T each sequence's last-step loss.

    The forward pass is ``SequenceModel.__call__`` written out layer by layer (embedding, each layer's
    ``cell.project`` and recurrence, the dense readout) so that one layer's recurrence can carry the
    probes; ``tests/test_diagnostics.py`` checks that it gives the model's outputs.

    Args:
      model: the model.
      variables: its variables ({'params': ...}), freshly initialised or trained.
      inputs: (B, T, D) inputs or (B, T) tokens.
      targets: (B, O) last-step targets, or (B, T, ...) per-step targets (the last valid step's is
        used: ``gradient_flow`` first cuts each sequence at its last labelled step).
      lengths: (B,) valid steps.
      target: the dataset's target kind ('regression', 'multilabel', 'categorical').
      layer: which layer's states (default: the last).

    Returns:
      {carry name: (T, B, H)} as ``carry_gradients``.
    """
    layer = probed_layer(model, layer)
    last = lengths - 1

    def sequence_losses(top_outputs):
        outputs = readout(model, variables, top_outputs, lengths)
        if model.readout_at != "last_step":
            outputs = take_step(outputs, last)
            last_targets = take_step(targets, last)
        else:
            last_targets = targets
        return frame_losses(outputs, last_targets, target)

    hidden, mask = layer_inputs(model, variables, inputs, lengths)
    for index in range(layer):
        hidden = run_layer(model, variables, index, hidden, mask)
    cell = model.cell_template()
    params = variables["params"][f"layer_{layer}"]
    carry0 = model.initial_carries(inputs.shape[0])[layer]

    def upper_losses(outputs):
        # Layers above the probed one run as usual; the loss sees the top layer's outputs.
        for index in range(layer + 1, model.num_layers):
            outputs = run_layer(model, variables, index, outputs, mask)
        return sequence_losses(outputs)

    return carry_gradients(cell, params, carry0, cell.project(params, hidden), mask, upper_losses)


def model_outputs(model: SequenceModel, variables, inputs, lengths) -> jax.Array:
    """The model's outputs through this module's layer-by-layer forward (for checking it)."""
    hidden, mask = layer_inputs(model, variables, inputs, lengths)
    for index in range(model.num_layers):
        hidden = run_layer(model, variables, index, hidden, mask)
    return readout(model, variables, hidden, lengths)


def probed_layer(model: SequenceModel, layer: int | None) -> int:
    """The index of the layer to probe: ``layer``, or the last one for None."""
    if layer is None:
        return model.num_layers - 1
    check_layer(layer, model.num_layers)
    return layer


def check_layer(layer: int, num_layers: int) -> None:
    """Raise ``ConfigError`` unless ``layer`` is one of a model's ``num_layers`` layers."""
    if not 0 <= layer < num_layers:
        raise ConfigError(
            f"diagnose.layer={layer}, but the model has {num_layers} layer(s): give 0 to "
            f"{num_layers - 1}, or null for the last"
        )


def layer_inputs(model: SequenceModel, variables, inputs, lengths) -> tuple[jax.Array, jax.Array]:
    """Time-major (T, B, D) inputs of the first layer (embedded tokens if any) and the (T, B) mask."""
    if model.vocab_size:
        inputs = variables["params"]["embed"]["embedding"][inputs]
    return jnp.swapaxes(inputs, 0, 1), step_mask(lengths, inputs.shape[1]).T


def run_layer(model: SequenceModel, variables, index: int, hidden: jax.Array, mask) -> jax.Array:
    """One layer's (T, B, H) outputs, without probes."""
    cell = model.cell_template()
    params = variables["params"][f"layer_{index}"]
    carry0 = model.initial_carries(hidden.shape[1])[index]
    probes = zero_probes(carry0, hidden.shape[0])
    return probed_recurrence(cell, params, carry0, cell.project(params, hidden), mask, probes)[1]


def readout(model: SequenceModel, variables, top_outputs: jax.Array, lengths) -> jax.Array:
    """The dense readout of (T, B, H) top-layer outputs: (B, T, O), or (B, O) at the last step."""
    hidden = jnp.swapaxes(top_outputs, 0, 1)
    if model.readout_at == "last_step":
        hidden = take_step(hidden, lengths - 1)
    dense = nn.Dense(model.output_size, param_dtype=model.param_dtype)
    return dense.apply({"params": variables["params"]["readout"]}, hidden)


def take_step(x: jax.Array, steps: jax.Array) -> jax.Array:
    """x[b, steps[b]] for (B, T, ...) x."""
    index = steps.reshape((-1,) + (1,) * (x.ndim - 1))
    return jnp.take_along_axis(x, index, axis=1)[:, 0]


def norms_by_lag(grads: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-sequence gradient norms aligned at each sequence's last step.

    Args:
      grads: (T, B, H) gradients with respect to the state at each step.
      lengths: (B,) valid steps.

    Returns:
      (norms, valid), both (T, B): ``norms[k, b] = ||grads[lengths[b] - 1 - k, b]||`` and ``valid[k, b]``
      whether that step exists (k < lengths[b]).
    """
    norms = jnp.linalg.norm(grads, axis=-1)
    lags = jnp.arange(grads.shape[0])
    steps = lengths[None, :] - 1 - lags[:, None]
    valid = steps >= 0
    aligned = jnp.take_along_axis(norms, jnp.maximum(steps, 0), axis=0)
    return jnp.where(valid, aligned, 0.0), valid


AVERAGES = ("arithmetic", "geometric")


def mean_by_lag(grads: jax.Array, lengths: jax.Array, average: str = "arithmetic") -> np.ndarray:
    """g(k): the mean over sequences of ||dL_T/ds_{T-k}||, k = 0..T-1 (NaN where no sequence is
    that long).

    ``average='arithmetic'`` is E_seq ||.||: the sequences with the largest norms dominate it, so
    its fitted rate tends to the slowest-decaying sequence's. ``'geometric'`` is
    exp(E_seq log ||.||), whose log is the mean of the sequences' logs: its fitted rate is the
    geometric mean of their rates, every sequence weighing alike. A zero norm (underflow) makes
    the geometric mean 0 at that lag, which ``fit_rate`` leaves out.
    """
    if average not in AVERAGES:
        raise ConfigError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")
    norms, valid = norms_by_lag(grads, lengths)
    counts = np.asarray(valid.sum(axis=1))
    norms = np.asarray(norms, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if average == "geometric":
            logs = np.where(np.asarray(valid), np.log(norms), 0.0)
            return np.where(counts > 0, np.exp(logs.sum(axis=1) / counts), np.nan)
        return np.where(counts > 0, norms.sum(axis=1) / counts, np.nan)


def average_note(average: str) -> str:
    """What a report's heading adds after its sequence count for ``average`` ('' for the default)."""
    return "" if average == "arithmetic" else f" (g(k): the {average} mean over them)"


def labelled_lengths(targets: np.ndarray, lengths: np.ndarray, target: str) -> np.ndarray:
    """Each sequence's length up to and including its last step that has a target (0: none).

    L_T is read at that step. A categorical step whose class is IGNORE (-1) has no target (training
    gives it weight 0, ``losses.frame_weights``), so a sequence that ends in unlabelled frames is
    measured from its last labelled one. The recurrence is causal: cutting the sequence there
    leaves every earlier state as it was.
    """
    targets, lengths = np.asarray(targets), np.asarray(lengths)
    if target != "categorical" or targets.ndim != 2:
        return lengths
    steps = np.arange(targets.shape[1])
    labelled = (steps[None, :] < lengths[:, None]) & (targets != IGNORE)
    last = targets.shape[1] - np.argmax(labelled[:, ::-1], axis=1)
    return np.where(labelled.any(axis=1), last, 0).astype(lengths.dtype)


def measured(
    data: SequenceDataset, split: str, num_sequences: int
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, labelled lengths) of the sequences ``gradient_flow`` averages over: those of the
    first ``num_sequences`` of the split that have a step with a target."""
    part = getattr(data, split)
    lengths = labelled_lengths(
        part.targets[:num_sequences], part.lengths[:num_sequences], data.target
    )
    kept = np.flatnonzero(lengths > 0)
    return kept, lengths[kept]


def measured_sequences(data: SequenceDataset, split: str, num_sequences: int) -> int:
    """How many sequences ``gradient_flow`` averages over (``measured``)."""
    return len(measured(data, split, num_sequences)[0])


@functools.cache
def _compiled_carry_gradients(model: SequenceModel, target: str, layer: int | None) -> Callable:
    """``model_carry_gradients`` jitted once per (model, target, layer): studies measure many
    parameter sets of one model (initialisers, gains, before and after training)."""
    return jax.jit(
        lambda variables, x, y, n: model_carry_gradients(model, variables, x, y, n, target, layer)
    )


class RateFit(NamedTuple):
    """A fitted geometric rate: g(k) ~ g_0 r^k over lags ``first_lag..last_lag``.

    Attributes:
      rate: r, the factor per step (< 1 vanishing, > 1 exploding).
      decades_per_100_steps: 100 log10(r), orders of magnitude gained (< 0: lost) over 100 steps.
      first_lag, last_lag: the lags fitted.
      points: how many lags entered the fit (those with a finite, non-zero mean norm).
    """

    rate: float
    decades_per_100_steps: float
    first_lag: int
    last_lag: int
    points: int


def fit_rate(profile: np.ndarray, first_lag: int = 1, last_lag: int | None = None) -> RateFit:
    """Least-squares fit of log g(k) = log g_0 + k log r over lags ``first_lag..last_lag``.

    Lags whose mean norm is zero (underflowed in float32), non-finite or missing are left out: they
    carry no rate information. With fewer than two usable lags the rate is NaN.

    Args:
      profile: g(k) for k = 0, 1, ... (``mean_by_lag``).
      first_lag: the first lag fitted (default 1: lag 0 is the readout alone, not a recurrent step).
      last_lag: the last lag fitted (default: the last one in ``profile``).
    """
    last_lag = len(profile) - 1 if last_lag is None else min(last_lag, len(profile) - 1)
    lags = np.arange(first_lag, last_lag + 1)
    values = np.asarray(profile, np.float64)[lags]
    usable = np.isfinite(values) & (values > 0)
    if usable.sum() < 2:
        return RateFit(float("nan"), float("nan"), first_lag, last_lag, int(usable.sum()))
    slope = np.polyfit(lags[usable], np.log(values[usable]), 1)[0]
    return RateFit(
        float(np.exp(slope)),
        float(100 * slope / np.log(10)),
        first_lag,
        last_lag,
        int(usable.sum()),
    )


class FlowProfile(NamedTuple):
    """The gradient flow of one model: g(k) and its fitted rate per carry array ('h', 'c', ...)."""

    profiles: dict[str, np.ndarray]
    fits: dict[str, RateFit]


def gradient_flow(
    model: SequenceModel,
    variables: Mapping[str, Any],
    data: SequenceDataset,
    num_sequences: int = 128,
    split: str = "valid",
    layer: int | None = None,
    first_lag: int = 1,
    last_lag: int | None = 100,
    average: str = "arithmetic",
) -> FlowProfile:
    """Measure g_h(k), g_c(k) and their rates on the first ``num_sequences`` of a split.

    Args:
      model, variables: the model and its parameters.
      data: the dataset (its ``target`` kind defines the loss).
      num_sequences: how many sequences to average over.
      split: 'train', 'valid' or 'test'.
      layer: which layer (default: the last).
      first_lag, last_lag: the lags the rate is fitted over (``fit_rate``); by default 1..100,
        as ``lstm-variants-diagnose`` fits them, so rates from code and from its tables compare
        (None: every lag).
      average: how g(k) averages the sequences' norms, 'arithmetic' (default) or 'geometric'
        (``mean_by_lag``).

    Returns:
      A ``FlowProfile``.

    Raises:
      ConfigError: a model whose readout does not give the dataset's targets (an
        ``every_step`` model on the adding problem's ``last_step`` targets measured nothing, NaN
        without a word), or a split without a sequence that has a target.
    """
    if model.readout_at != data.target_at:
        raise ConfigError(
            f"the model reads out at {model.readout_at}, but {data.name}'s targets are at "
            f"{data.target_at}: build it with readout_at={data.target_at!r}"
        )
    part = getattr(data, split)
    kept, lengths = measured(data, split, num_sequences)
    if not len(kept):
        raise ConfigError(
            f"none of the first {num_sequences} {split} sequences has a step with a target: "
            "nothing to measure the gradient of"
        )
    inputs = jnp.asarray(part.inputs[kept])
    targets = jnp.asarray(part.targets[kept])
    lengths = jnp.asarray(lengths)
    grads = _compiled_carry_gradients(model, data.target, layer)(
        variables, inputs, targets, lengths
    )
    profiles = {
        name: mean_by_lag(g, lengths, average) for name, g in grads.items() if name in ("h", "c")
    }
    fits = {name: fit_rate(p, first_lag, last_lag) for name, p in profiles.items()}
    return FlowProfile(profiles, fits)
