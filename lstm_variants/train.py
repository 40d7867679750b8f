"""One training run, read top to bottom: build, compile, then epochs with early stopping.

Each epoch is one jitted call: shuffle, cut into batches, and ``lax.scan`` over them doing
forward, masked loss, backward and the optax update, so Python runs once per epoch, not once per
batch. Validation is another jitted call. Early stopping keeps the parameters of the best
validation epoch; the test metric is measured with those parameters ("test at best validation",
as Greff et al.). A non-finite training or validation loss stops the run as ``diverged``.

Everything random derives from one seed: ``init`` key for the parameters, ``data`` key folded with
the epoch number for the shuffle and the input noise, so the same seed gives the same run bitwise
on CPU.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from lstm_variants.data import SequenceDataset, Split
from lstm_variants.data.adding import SOLVED_TOLERANCE
from lstm_variants.losses import frame_losses, frame_weights, metric_value
from lstm_variants.model import SequenceModel


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How long and how to train.

    Attributes:
      max_epochs: epoch limit (default 100).
      patience: stop after this many epochs without a better validation loss (default 10).
      batch_size: sequences per update (default 16; Greff et al. used 1).
      input_noise: std of Gaussian noise added to the inputs during training (default 0).
      eval_batch_size: sequences per evaluation batch (default 256).
    """

    max_epochs: int = 100
    patience: int = 10
    batch_size: int = 16
    input_noise: float = 0.0
    eval_batch_size: int = 256


@dataclasses.dataclass
class RunResult:
    """What a run produced: the best parameters, its metrics and its learning curve."""

    params: Any
    metrics: dict[str, Any]
    curve: list[dict[str, float]]
    compile_seconds: float
    wall_seconds: float


def split_arrays(split: Split) -> tuple[jax.Array, jax.Array, jax.Array]:
    """A split as device arrays (inputs, targets, lengths)."""
    return jnp.asarray(split.inputs), jnp.asarray(split.targets), jnp.asarray(split.lengths)


def make_loss_fn(model: SequenceModel, data: SequenceDataset) -> Callable:
    """loss(params, inputs, targets, lengths, sequence_weights) -> (mean, (sum, frames)).

    ``sequence_weights`` is 0 for the filler sequences that round a batch up to full size.
    """

    def loss_fn(params, inputs, targets, lengths, sequence_weights):
        outputs = model.apply(params, inputs, lengths)
        weights = frame_weights(lengths, inputs.shape[1], data.target_at)
        weights = weights * sequence_weights.reshape((-1,) + (1,) * (weights.ndim - 1))
        total = jnp.sum(frame_losses(outputs, targets, data.target) * weights)
        frames = jnp.sum(weights)
        return total / jnp.maximum(frames, 1.0), (total, frames)

    return loss_fn


def batch_order(key: jax.Array, num_sequences: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """A shuffled epoch as (num_batches, batch_size) indices and weights (0 marks filler)."""
    num_batches = -(-num_sequences // batch_size)
    filler = num_batches * batch_size - num_sequences
    order = jnp.concatenate(
        [jax.random.permutation(key, num_sequences), jnp.zeros(filler, jnp.int32)]
    )
    weights = jnp.concatenate([jnp.ones(num_sequences), jnp.zeros(filler)])
    return order.reshape(num_batches, batch_size), weights.reshape(num_batches, batch_size)


def make_epoch_fn(
    model: SequenceModel,
    optimizer: optax.GradientTransformation,
    data: SequenceDataset,
    settings: TrainSettings,
) -> Callable:
    """epoch(params, opt_state, key, inputs, targets, lengths) -> (params, opt_state, mean loss)."""
    grad_fn = jax.value_and_grad(make_loss_fn(model, data), has_aux=True)

    def epoch(params, opt_state, key, inputs, targets, lengths):
        order_key, noise_key = jax.random.split(key)
        order, weights = batch_order(order_key, inputs.shape[0], settings.batch_size)
        noise_keys = jax.random.split(noise_key, order.shape[0])

        def update(state, batch):
            params, opt_state = state
            index, sequence_weights, noise_key = batch
            x = inputs[index]
            if settings.input_noise > 0:
                x = x + settings.input_noise * jax.random.normal(noise_key, x.shape, x.dtype)
            (_, (total, frames)), grads = grad_fn(
                params, x, targets[index], lengths[index], sequence_weights
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (total, frames)

        (params, opt_state), (totals, frames) = jax.lax.scan(
            update, (params, opt_state), (order, weights, noise_keys)
        )
        return params, opt_state, jnp.sum(totals) / jnp.sum(frames)

    return epoch


def make_eval_fn(model: SequenceModel, data: SequenceDataset, batch_size: int) -> Callable:
    """evaluate(params, inputs, targets, lengths) -> (mean frame loss, fraction of solved sequences).

    The solved fraction (|error| < 0.04 at the last step) is only meaningful for last-step
    regression targets (the adding problem) and is NaN otherwise.
    """
    loss_fn = make_loss_fn(model, data)
    count_solved = data.target == "regression" and data.target_at == "last_step"

    def evaluate(params, inputs, targets, lengths):
        num_sequences = inputs.shape[0]
        size = min(batch_size, num_sequences)
        num_batches = -(-num_sequences // size)
        filler = num_batches * size - num_sequences

        def pad(array, value=0):
            widths = [(0, filler)] + [(0, 0)] * (array.ndim - 1)
            return jnp.pad(array, widths, constant_values=value).reshape(
                (num_batches, size) + array.shape[1:]
            )

        weights = pad(jnp.ones(num_sequences))

        def batch_metrics(batch):
            x, y, n, w = batch
            _, (total, frames) = loss_fn(params, x, y, n, w)
            if count_solved:
                error = jnp.max(jnp.abs(model.apply(params, x, n) - y), axis=-1)
                solved = jnp.sum((error < SOLVED_TOLERANCE) * w)
            else:
                solved = jnp.zeros(())
            return total, frames, solved

        totals, frames, solved = jax.lax.map(
            batch_metrics, (pad(inputs), pad(targets), pad(lengths, 1), weights)
        )
        solved_fraction = jnp.sum(solved) / num_sequences if count_solved else jnp.nan
        return jnp.sum(totals) / jnp.sum(frames), solved_fraction

    return evaluate


def train_run(
    model: SequenceModel,
    optimizer: optax.GradientTransformation,
    data: SequenceDataset,
    settings: TrainSettings,
    seed: int,
    progress: bool = True,
    on_epoch: Callable[[Mapping[str, float]], None] | None = None,
) -> RunResult:
    """Train ``model`` on ``data`` with early stopping on validation.

    Args:
      model: the sequence model (its ``output_size`` and ``readout_at`` must fit ``data``).
      optimizer: an optax transformation.
      data: the dataset.
      settings: epochs, patience, batch size, input noise.
      seed: the only source of randomness.
      progress: show a progress bar over epochs.
      on_epoch: called with each learning-curve entry (e.g. to log it).

    Returns:
      The run's result; ``metrics['stopped']`` is 'early', 'max_epochs' or 'diverged'.
    """
    started = time.perf_counter()
    init_key, data_key = jax.random.split(jax.random.key(seed))
    train, valid, test = (split_arrays(s) for s in (data.train, data.valid, data.test))
    params = model.init(init_key, train[0][:1], train[2][:1])
    opt_state = optimizer.init(params)

    compile_started = time.perf_counter()
    epoch_fn = (
        jax.jit(make_epoch_fn(model, optimizer, data, settings))
        .lower(params, opt_state, data_key, *train)
        .compile()
    )
    eval_jit = jax.jit(make_eval_fn(model, data, settings.eval_batch_size))
    evaluators = {
        name: eval_jit.lower(params, *arrays).compile()
        for name, arrays in (("valid", valid), ("test", test))
    }
    compile_seconds = time.perf_counter() - compile_started

    best = {"valid": math.inf, "epoch": 0, "params": params}
    curve: list[dict[str, float]] = []
    stopped = "max_epochs"
    bar = tqdm(range(1, settings.max_epochs + 1), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        params, opt_state, train_loss = epoch_fn(
            params, opt_state, jax.random.fold_in(data_key, epoch), *train
        )
        valid_loss, valid_solved = evaluators["valid"](params, *valid)
        entry = {"epoch": epoch, "train_loss": float(train_loss), "valid_loss": float(valid_loss)}
        if not math.isnan(float(valid_solved)):
            entry["valid_solved"] = float(valid_solved)
        curve.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
        bar.set_postfix(train=f"{entry['train_loss']:.4g}", valid=f"{entry['valid_loss']:.4g}")
        if not (math.isfinite(entry["train_loss"]) and math.isfinite(entry["valid_loss"])):
            stopped = "diverged"
            break
        if entry["valid_loss"] < best["valid"]:
            best = {"valid": entry["valid_loss"], "epoch": epoch, "params": params}
        elif epoch - best["epoch"] >= settings.patience:
            stopped = "early"
            break
    bar.close()

    metrics: dict[str, Any] = {
        "metric": data.metric,
        "epochs_run": len(curve),
        "best_epoch": best["epoch"],
        "stopped": stopped,
        "best_valid": None,
        "test_at_best": None,
    }
    if best["epoch"] > 0:
        test_loss, test_solved = evaluators["test"](best["params"], *test)
        metrics["best_valid_loss"] = best["valid"]
        metrics["best_valid"] = metric_value(best["valid"], data.metric)
        metrics["test_loss"] = float(test_loss)
        metrics["test_at_best"] = metric_value(float(test_loss), data.metric)
        if not math.isnan(float(test_solved)):
            metrics["test_solved_fraction"] = float(test_solved)
    return RunResult(
        params=jax.device_get(best["params"]),
        metrics=metrics,
        curve=curve,
        compile_seconds=compile_seconds,
        wall_seconds=time.perf_counter() - started,
    )


def parameter_count(params) -> int:
    """Number of scalar parameters."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))
