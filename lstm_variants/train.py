"""The pieces of a training run: masked loss, one member's epoch, evaluation.

Each epoch is one jitted call: shuffle, cut into batches, and ``lax.scan`` over them doing
forward, masked loss, backward and the optax update, so Python runs once per epoch, not once per
batch. Validation is another jitted call. Early stopping keeps the parameters of the best
validation epoch; the test metric is measured with those parameters ("test at best validation",
as Greff et al.). A non-finite training or validation loss stops the run as ``diverged``.

The epoch is written for one member and ``lstm_variants.population`` vmaps it over K members; a
single run (``population.train_run``) is a population of one, so there is one training path.

Everything random derives from one seed: ``init`` key for the parameters, ``data`` key folded with
the epoch number for the shuffle and the input noise, so the same seed gives the same run bitwise
on CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_variants.batching import bucketed_order, epoch_batch_size, group_steps, length_groups
from lstm_variants.data import SequenceDataset, Split
from lstm_variants.errors import ConfigError
from lstm_variants.losses import frame_losses, frame_weights
from lstm_variants.model import SequenceModel

LOSS_NORMALIZATIONS = ("frame", "sequence")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How long and how to train: what every member of a population shares.

    The input-noise std and the dropout rate differ per trial, so they are ``population.Member``
    values, not settings (the config still keeps them at ``train.input_noise`` and
    ``train.dropout``).

    Attributes:
      max_epochs: epoch limit (default 100).
      patience: stop after this many epochs without a better validation loss (default 10); 0
        acts as 1, stopping at the first epoch without a better one.
      batch_size: sequences per update (default 16; Greff et al. used 1). One above the
        training sequences (with ``length_buckets``, those of the largest length group) is one
        batch of them all, said in one line (``batch_size_notice``): the same updates as a
        wider batch of empty filler, without its work and memory. Stream datasets (text) do
        not read it: a batch is one window of each of their ``dataset.options.streams``.
      eval_batch_size: sequences per evaluation batch (default 256).
      max_padding_waste: in a population of mixed hidden sizes, the largest fraction of a
        member's work that padding to its bucket's size may waste (default 0.5).
      length_buckets: train on batches of similar length, in this many length groups (default 1:
        every batch runs the split's longest length); see ``lstm_variants.batching``.
      loss_normalization: what the training loss is divided by (``LOSS_NORMALIZATIONS``):
        'frame' (default), the number of valid frames in the batch, so the loss is the mean frame
        loss; or 'sequence', the number of sequences, so the loss is each sequence's summed frame
        loss averaged over the batch (IDSIA's Brainstorm convention; its gradient is about the mean
        sequence length times larger, which moves the useful learning rates down by that factor).
        Reported losses and metrics are per frame either way.
    """

    max_epochs: int = 100
    patience: int = 10
    batch_size: int = 16
    eval_batch_size: int = 256
    max_padding_waste: float = 0.5
    length_buckets: int = 1
    loss_normalization: str = "frame"

    def __post_init__(self):
        check_loss_normalization(self.loss_normalization)


@dataclasses.dataclass
class RunResult:
    """What a run produced: the best parameters, its metrics and its learning curve.

    ``population`` says where it was trained, in the chunk of its population that trained at once
    (the whole population unless it did not fit the devices' memory): ``size``, the chunk's
    members; ``index``, the member's place in it; the padded hidden size; the number of devices;
    and the seconds the chunk spent initialising parameters and running epochs (training and
    validation). All seconds, ``wall_seconds`` and ``compile_seconds`` too, are the chunk's, so
    a trial's share of them is seconds / size (``analysis.cost``).
    """

    params: Any
    metrics: dict[str, Any]
    curve: list[dict[str, float]]
    compile_seconds: float
    wall_seconds: float
    population: dict[str, float] | None = None


def split_arrays(split: Split) -> tuple[jax.Array, jax.Array, jax.Array]:
    """A split as device arrays (inputs, targets, lengths)."""
    return jnp.asarray(split.inputs), jnp.asarray(split.targets), jnp.asarray(split.lengths)


def check_loss_normalization(normalization: str) -> None:
    """Raise ConfigError unless ``normalization`` is one of ``LOSS_NORMALIZATIONS``."""
    if normalization not in LOSS_NORMALIZATIONS:
        raise ConfigError(
            f"unknown train.loss_normalization '{normalization}'; valid: "
            + ", ".join(LOSS_NORMALIZATIONS)
        )


def make_loss_fn(
    model: SequenceModel, data: SequenceDataset, normalization: str = "frame"
) -> Callable:
    """loss(params, inputs, targets, lengths, sequence_weights, carries, dropout) -> (loss, aux).

    The loss is the frame-loss sum divided by the number of valid frames (``normalization``
    'frame') or of sequences ('sequence'; see ``TrainSettings.loss_normalization``).
    ``aux`` is (frame-loss sum, number of frames, each layer's final carry, outputs).
    ``sequence_weights`` is 0 for the filler sequences that round a batch up to full size;
    ``carries`` is None (zero initial carries) or each layer's initial carry (truncated BPTT);
    ``dropout`` is None (none) or (rate, key) for ``SequenceModel``'s dropout.
    """
    check_loss_normalization(normalization)

    def loss_fn(params, inputs, targets, lengths, sequence_weights, carries=None, dropout=None):
        rate, key = dropout or (0.0, None)
        outputs, finals = model.apply(
            params,
            inputs,
            lengths,
            carries,
            return_carries=True,
            dropout_rate=rate,
            dropout_key=key,
        )
        weights = frame_weights(lengths, inputs.shape[1], data.target_at, targets)
        weights = weights * sequence_weights.reshape((-1,) + (1,) * (weights.ndim - 1))
        total = jnp.sum(frame_losses(outputs, targets, data.target) * weights)
        frames = jnp.sum(weights)
        count = frames if normalization == "frame" else jnp.sum(sequence_weights)
        return total / jnp.maximum(count, 1.0), (total, frames, finals, outputs)

    return loss_fn


def batch_order(key: jax.Array, num_sequences: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """A shuffled epoch as (num_batches, batch_size) indices and weights (0 marks filler); a
    ``batch_size`` above ``num_sequences`` is one batch of them all (``epoch_batch_size``)."""
    batch_size = epoch_batch_size([num_sequences], batch_size)
    num_batches = -(-num_sequences // batch_size)
    filler = num_batches * batch_size - num_sequences
    order = jnp.concatenate(
        [jax.random.permutation(key, num_sequences), jnp.zeros(filler, jnp.int32)]
    )
    weights = jnp.concatenate([jnp.ones(num_sequences), jnp.zeros(filler)])
    return order.reshape(num_batches, batch_size), weights.reshape(num_batches, batch_size)


def stream_order(num_windows: int, streams: int) -> tuple[jax.Array, jax.Array]:
    """The fixed epoch of a stream dataset: batch w holds window w of every stream, in order."""
    order = jnp.arange(num_windows, dtype=jnp.int32).reshape(num_windows // streams, streams)
    return order, jnp.ones(order.shape)


def solved_sequences(
    outputs: jax.Array, targets: jax.Array, weights: jax.Array, data: SequenceDataset
) -> jax.Array:
    """Per sequence, 1.0 when it meets the dataset's success criterion, else 0.0.

    'abs_error': every output at every weighted frame within ``data.tolerance`` of its target.
    'exact': the most probable class is the target at every weighted frame.
    A frame with a non-finite output is wrong (a NaN compares false with the tolerance, and its
    argmax is a class).
    """
    if data.success == "abs_error":
        wrong = jnp.max(jnp.abs(outputs - targets), axis=-1) >= data.tolerance
    else:
        wrong = jnp.argmax(outputs, axis=-1) != targets
    wrong = (wrong | ~jnp.all(jnp.isfinite(outputs), axis=-1)) & (weights > 0)
    if wrong.ndim > 1:
        wrong = jnp.any(wrong, axis=tuple(range(1, wrong.ndim)))
    return 1.0 - wrong.astype(jnp.float32)


def epoch_batch_width(settings: TrainSettings, data: SequenceDataset) -> int:
    """The sequences a training batch holds: a stream dataset's ``streams``, else
    ``settings.batch_size`` capped at the largest length group (``batching.epoch_batch_size``;
    one group of every training sequence without ``length_buckets``)."""
    if data.streams:
        return data.streams
    buckets = settings.length_buckets if settings.length_buckets > 1 else 1
    groups = length_groups(data.train.lengths, buckets)
    return epoch_batch_size([len(group) for group in groups], settings.batch_size)


def batch_size_notice(settings: TrainSettings, data: SequenceDataset) -> str | None:
    """One line saying that ``settings.batch_size`` is not the batch an epoch runs, else None:
    wider than the batches an epoch can fill (``batching.epoch_batch_size``), or, for a stream
    dataset, other than its ``streams``, which are its batch (a window of each)."""
    if data.streams:
        if settings.batch_size == data.streams:
            return None
        return (
            f"lstm-variants: note: train.batch_size={settings.batch_size} is not used by this "
            f"stream dataset: a batch is one window of each of its {data.streams} streams "
            "(dataset.options.streams)"
        )
    width = epoch_batch_width(settings, data)
    if width == settings.batch_size:
        return None
    asked = f"lstm-variants: note: train.batch_size={settings.batch_size} is more than"
    if settings.length_buckets > 1:
        groups = len(length_groups(data.train.lengths, settings.length_buckets))
        return (
            f"{asked} the {width} sequences of the largest of {groups} length groups: each "
            f"group is one batch of up to {width} (the same updates, without empty filler)"
        )
    return (
        f"{asked} the {width} training sequences: an epoch is one batch of all {width} "
        "(the same update, without empty filler)"
    )


def make_member_epoch_fn(
    model: SequenceModel,
    optimizer: Callable[..., optax.GradientTransformation],
    data: SequenceDataset,
    settings: TrainSettings,
    with_dropout: bool = False,
) -> Callable:
    """One member's epoch, to be vmapped over a population.

    epoch(params, opt_state, mask, regularization, key, active, epoch_number, inputs, targets,
          lengths) -> (params, opt_state, mean training loss)

    ``mask`` (0/1, the parameters' tree) zeroes the gradient of padded hidden units;
    ``regularization`` is {'input_noise': std of Gaussian input noise, 'dropout': dropout rate};
    the dropout masks are drawn only ``with_dropout`` (a compile-time choice, so a population
    without dropout runs no extra work); a member with ``active`` False keeps its parameters
    and optimizer state (it has stopped). Stream datasets run their windows in order and carry the
    state across them with its gradient stopped at each window edge (truncated BPTT). With
    ``settings.length_buckets`` > 1 batches hold sequences of similar length and run only as many
    steps as their group's longest (``lstm_variants.batching``); ``epoch_number`` orders them.
    """
    grad_fn = jax.value_and_grad(
        make_loss_fn(model, data, settings.loss_normalization), has_aux=True
    )
    template = optimizer(learning_rate=0.0, momentum=0.0, clip_norm=0.0, clip_value=0.0)
    bucketed = settings.length_buckets > 1 and not data.streams
    if bucketed:
        groups = length_groups(data.train.lengths, settings.length_buckets)
        steps = group_steps(data.train.lengths, groups)
    per_step_targets = data.target_at == "every_step"
    notice = batch_size_notice(settings, data)
    if notice:  # said once per compiled program: a record keeps the batch_size asked for
        print(notice, file=sys.stderr)

    def epoch(
        params, opt_state, mask, regularization, key, active, epoch_number, inputs, targets, lengths
    ):
        order_key, noise_key = jax.random.split(key)
        if data.streams:
            order, weights = stream_order(inputs.shape[0], data.streams)
        elif bucketed:
            order, weights, bucket = bucketed_order(
                order_key, epoch_number, groups, settings.batch_size
            )
        else:
            order, weights = batch_order(order_key, inputs.shape[0], settings.batch_size)
        if not bucketed:
            bucket = jnp.zeros(order.shape[0], jnp.int32)
        noise_keys = jax.random.split(noise_key, order.shape[0])

        def step(num_steps, params, opt_state, carries, index, sequence_weights, noise_key):
            x = inputs[index][:, :num_steps]
            y = targets[index][:, :num_steps] if per_step_targets else targets[index]
            if not data.train.tokens:
                noise = jax.random.normal(noise_key, x.shape, x.dtype)
                x = x + regularization["input_noise"] * noise
            dropout = None
            if with_dropout:  # fold_in leaves the noise draw, so runs without dropout, as it was
                dropout = (regularization["dropout"], jax.random.fold_in(noise_key, 1))
            (_, (total, frames, finals, _)), grads = grad_fn(
                params, x, y, lengths[index], sequence_weights, carries, dropout
            )
            grads = jax.tree.map(jnp.multiply, grads, mask)
            # The hyperparameters live in opt_state (inject_hyperparams), so one template serves all.
            updates, opt_state = template.update(grads, opt_state, params)
            carries = jax.lax.stop_gradient(finals) if data.streams else carries
            return optax.apply_updates(params, updates), opt_state, carries, total, frames

        def update(state, batch):
            *batch, group = batch
            if bucketed:  # ``group`` is the same for every member: a real branch, not a select
                branches = [functools.partial(step, t) for t in steps]
                *state, total, frames = jax.lax.switch(group, branches, *state, *batch)
            else:
                *state, total, frames = step(inputs.shape[1], *state, *batch)
            return tuple(state), (total, frames)

        carries = model.initial_carries(order.shape[1])
        (new_params, new_opt_state, _), (totals, frames) = jax.lax.scan(
            update, (params, opt_state, carries), (order, weights, noise_keys, bucket)
        )

        def keep(new, old):
            return jnp.where(active, new, old)

        return (
            jax.tree.map(keep, new_params, params),
            jax.tree.map(keep, new_opt_state, opt_state),
            jnp.sum(totals) / jnp.sum(frames),
        )

    return epoch


def make_eval_fn(model: SequenceModel, data: SequenceDataset, batch_size: int) -> Callable:
    """evaluate(params, inputs, targets, lengths) -> (mean frame loss, fraction of solved sequences).

    The solved fraction follows ``data.success`` and is NaN for datasets without a criterion.
    Stream datasets are evaluated window after window with the carry passed on, as trained.
    """
    loss_fn = make_loss_fn(model, data)
    count_solved = data.success is not None

    def batch_metrics(params, x, y, n, w, carries):
        _, (total, frames, finals, outputs) = loss_fn(params, x, y, n, w, carries)
        if count_solved:
            weights = frame_weights(n, x.shape[1], data.target_at, y)
            solved = jnp.sum(solved_sequences(outputs, y, weights, data) * w)
        else:
            solved = jnp.zeros(())
        return (total, frames, solved), finals

    def evaluate(params, inputs, targets, lengths):
        num_sequences = inputs.shape[0]
        if data.streams:
            order, weights = stream_order(num_sequences, data.streams)
            batches = (inputs[order], targets[order], lengths[order], weights)

            def window(carries, batch):
                metrics, finals = batch_metrics(params, *batch, carries)
                return finals, metrics

            carries = model.initial_carries(data.streams)
            _, (totals, frames, solved) = jax.lax.scan(window, carries, batches)
        else:
            size = min(batch_size, num_sequences)
            num_batches = -(-num_sequences // size)
            filler = num_batches * size - num_sequences

            def pad(array, value=0):
                widths = [(0, filler)] + [(0, 0)] * (array.ndim - 1)
                return jnp.pad(array, widths, constant_values=value).reshape(
                    (num_batches, size) + array.shape[1:]
                )

            batches = (pad(inputs), pad(targets), pad(lengths, 1), pad(jnp.ones(num_sequences)))
            totals, frames, solved = jax.lax.map(
                lambda batch: batch_metrics(params, *batch, None)[0], batches
            )
        solved_fraction = jnp.sum(solved) / num_sequences if count_solved else jnp.nan
        return jnp.sum(totals) / jnp.sum(frames), solved_fraction

    return evaluate


def parameter_count(params) -> int:
    """Number of scalar parameters."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))
