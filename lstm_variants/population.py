"""Train a population of K trials of one cell in one compiled program (K = 1 is a plain run).

Random search trains many small networks that differ only in numbers: learning rate, momentum,
clipping thresholds, input noise, initial forget bias, hidden size and seed. Run one at a time, a
trial's small matrix products leave the machine idle; here every member's numbers are arrays, the
member epoch of ``train.make_member_epoch_fn`` is ``jax.vmap``-ed over the population, and the
population axis is split over the local devices with ``jax.shard_map`` (members never talk to
each other, so there is no collective at all). The same command uses 1 CPU, 8 GPUs or a TPU slice.

What differs per member, and how:

- learning rate, momentum, clipping thresholds: arrays in the optimizer state
  (``optimizers.make_member_optimizer``, ``optax.inject_hyperparams``);
- input-noise std, dropout rate and the seed (its init key and its data key: shuffle order, noise
  and dropout masks): arrays;
- initial forget bias and hidden size: the member is initialised exactly as the stand-alone
  network would be (on the host, ``member_init``), then zero-padded to its bucket's hidden size
  and masked (``hidden_padding``); sizes are bucketed so that padding wastes at most
  ``TrainSettings.max_padding_waste`` of a member's work.

Per-member early stopping (``population_epochs``): after each epoch the host reads every
member's validation loss (at the optimizer's ``evaluate_at`` point, ``optimizers``); a member
that has not improved for ``patience`` epochs, or whose training or validation loss is not
finite, is frozen (the epoch function leaves its parameters and optimizer state alone) and its
best parameters and metrics are kept. The population stops
when every member has stopped or at ``max_epochs``. Members are independent, so a diverging
member does not change any other's numbers.

Memory: before compiling, the population's memory is estimated and printed; a population that
would not fit the devices is trained in chunks, one after another, with the same results.

Checkpoints: given ``checkpoint``, each chunk saves its training state every so often
(``population_checkpoint``), and the same call after a kill resumes every chunk after its last
saved epoch, with the results an uninterrupted call gives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from lstm_variants import native_lstm
from lstm_variants.batching import group_steps, length_groups, padding_fraction
from lstm_variants.data import SequenceDataset
from lstm_variants.errors import ConfigError
from lstm_variants.hidden_padding import (
    bucket_waste,
    hidden_axes,
    hidden_buckets,
    unpad_params,
)
from lstm_variants.losses import metric_value
from lstm_variants.member_init import init_members
from lstm_variants.model import SequenceModel
from lstm_variants.optimizers import MemberOptimizer
from lstm_variants.population_checkpoint import CheckpointSettings, ChunkCheckpoint, ChunkState
from lstm_variants.population_epochs import train_epochs
from lstm_variants.train import (
    RunResult,
    TrainSettings,
    epoch_batch_width,
    make_eval_fn,
    make_member_epoch_fn,
    split_arrays,
)

MEMBER_AXIS = "members"
# Compiled population programs, reused by later populations of the same shape in this process
# (a sweep's chunks of ``population_size`` trials, the next job of a sweep that differs only in
# what members may differ in, such as the seed): compiling costs seconds, running them less.
_COMPILED: dict = {}
_COMPILED_KEPT = 4


def forget_compiled() -> None:
    """Drop the compiled population programs kept in this process, so that the next population
    compiles its own (``benchmarks/population.py`` measures set-up from cold)."""
    _COMPILED.clear()


@dataclasses.dataclass(frozen=True)
class Member:
    """One trial of a population: everything that may differ between members.

    Attributes:
      hidden_size: units per layer h (padded to the bucket's size inside the population).
      seed: the only source of randomness: init key and data key (shuffle order, input noise).
      learning_rate: the optimizer's learning rate.
      momentum: SGD momentum (0 is plain SGD; ignored by Adam).
      clip_norm: global-norm clipping threshold (+inf: off).
      clip_value: per-value clipping threshold (+inf: off).
      input_noise: std of the Gaussian noise added to the training inputs (default 0).
      dropout: dropout rate on the non-recurrent connections while training, in [0, 1)
        (default 0; ``model.dropout``). Each unit's masks are drawn from its own key, so a
        member padded to a larger hidden size draws the masks of a stand-alone run.
      forget_bias: initial forget-gate bias of LSTM cells (default None: the model's cell option).
    """

    hidden_size: int
    seed: int
    learning_rate: float
    momentum: float = 0.0
    clip_norm: float = math.inf
    clip_value: float = math.inf
    input_noise: float = 0.0
    dropout: float = 0.0
    forget_bias: float | None = None

    def __post_init__(self):
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"train.dropout must be in [0, 1), got {self.dropout}")

    def optimizer_hyperparameters(self) -> dict[str, float]:
        return {
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "clip_norm": self.clip_norm,
            "clip_value": self.clip_value,
        }


def train_population(
    model: SequenceModel,
    optimizer: MemberOptimizer,
    data: SequenceDataset,
    settings: TrainSettings,
    members: Sequence[Member],
    progress: bool = True,
    num_devices: int | None = None,
    log: Callable[[str], None] | None = print,
    checkpoint: CheckpointSettings | None = None,
) -> list[RunResult]:
    """Train every member with early stopping on validation; one result per member, in order.

    Args:
      model: the sequence model; its ``hidden_size`` is replaced by each member's.
      optimizer: ``optimizers.make_member_optimizer(cfg)``.
      data: the dataset.
      settings: epochs, patience, batch size, padding and memory limits (shared by all members).
      members: the trials.
      progress: show a progress bar over epochs.
      num_devices: local devices to spread the population over (default, or 0: all); more
        than JAX sees is a ConfigError, not fewer devices than asked for.
      log: where the population's plan (buckets, memory, chunks) is written (None: nowhere).
      checkpoint: where and how often each chunk saves its training state, so that the same
        call after a kill resumes from it (``population_checkpoint``; None: never). The
        directory must belong to this model and data: a chunk's checkpoint is found by its
        members, sizes and device layout alone. The caller removes it once the results are kept.

    Returns:
      One ``RunResult`` per member, equal to what training the member alone gives up to the
      rounding of the population's batched and padded products, which training amplifies as any
      perturbation (float64 runs agree to 1e-9 relative: ``tests/test_population.py``).
    """
    sizes = [member.hidden_size for member in members]
    width, layers = _input_width(model, data), model.num_layers
    buckets = hidden_buckets(sizes, width, settings.max_padding_waste, layers)
    devices = population_devices(num_devices)
    if log and len(set(sizes)) > 1:  # mixed sizes pad, in one bucket (max_padding_waste=1) too
        waste = bucket_waste(buckets, sizes, width, layers)
        log(
            f"population: {len(members)} members in {len(buckets)} hidden-size "
            f"bucket{'s' if len(buckets) > 1 else ''} {[size for size, _ in buckets]}; "
            f"padding wastes {waste:.1%} of the work"
        )
    if log and settings.length_buckets > 1 and not data.streams:
        lengths = data.train.lengths
        groups = length_groups(lengths, settings.length_buckets)
        log(
            f"population: batches in {len(groups)} length groups of up to "
            f"{group_steps(lengths, groups)} steps: padding "
            f"{padding_fraction(lengths, groups, settings.batch_size):.1%} of the computed steps "
            f"(without: {padding_fraction(lengths, [np.arange(len(lengths))], settings.batch_size):.1%})"
        )
    noisy = sum(member.input_noise > 0 for member in members)
    if noisy and data.train.tokens:
        # Said, not refused: a search may sample input noise for every dataset alike.
        print(
            f"lstm-variants: note: train.input_noise is not applied to token inputs ({data.name} "
            f"looks them up in an embedding): {noisy} trial(s) with input noise train as without",
            file=sys.stderr,
        )
    results: list[RunResult | None] = [None] * len(members)
    for bucket, (padded_hidden, indices) in enumerate(buckets):
        bucket_model = model.clone(hidden_size=padded_hidden)
        per_member = estimate_member_bytes(bucket_model, data, settings)
        check_member_fits(per_member, devices[0], padded_hidden, data.streams)
        chunk_size = members_per_chunk(per_member, len(indices), devices)
        chunks = [indices[i : i + chunk_size] for i in range(0, len(indices), chunk_size)]
        if log and len(members) == 1:
            log(f"memory: about {_gib(per_member)} of {devices[0].device_kind} memory (estimate)")
        elif log:
            log(
                f"population: {len(indices)} member(s) at hidden size {padded_hidden}: about "
                f"{_gib(per_member * len(indices))} on {min(len(devices), chunk_size)} "
                f"{devices[0].device_kind} device(s), in {len(chunks)} chunk(s)"
            )
        for number, chunk in enumerate(chunks):
            others_follow = bucket < len(buckets) - 1 or number < len(chunks) - 1
            chunk_results = _train_chunk(
                model, optimizer, data, settings, [members[i] for i in chunk],
                padded_hidden, devices[: len(chunk)], progress, checkpoint, others_follow,
            )  # fmt: skip
            for index, result in zip(chunk, chunk_results, strict=True):
                results[index] = result
    return results


def train_run(
    model: SequenceModel,
    optimizer: MemberOptimizer,
    data: SequenceDataset,
    settings: TrainSettings,
    member: Member,
    progress: bool = True,
) -> RunResult:
    """Train one trial: a population of one.

    Args:
      model: the sequence model (its ``output_size`` and ``readout_at`` must fit ``data``).
      optimizer: ``optimizers.make_member_optimizer(cfg)``.
      data: the dataset.
      settings: epochs, patience, batch size.
      member: the trial's ``population.Member`` (hidden size, seed, learning rate, ...).
      progress: show a progress bar over epochs.

    Returns:
      The run's result; ``metrics['stopped']`` is 'early', 'max_epochs' or 'diverged'.
    """
    (result,) = train_population(
        model, optimizer, data, settings, [member], progress=progress, log=None
    )
    return result


def population_devices(num_devices: int | None) -> list:
    """The first ``num_devices`` local devices (None or 0: all of them).

    Raises:
      ConfigError: a negative count, or more devices than JAX sees (silently fewer would train
        and record the population on devices it was not asked to use).
    """
    devices = jax.local_devices()
    if num_devices and not 0 < num_devices <= len(devices):
        raise ConfigError(
            f"num_devices={num_devices}, but JAX sees {len(devices)} local "
            f"{devices[0].device_kind} device(s): ask for 1 to {len(devices)}, or None for all "
            "(on CPU, cpu_devices=N makes N)"
        )
    return devices[: num_devices or None]


def estimate_member_bytes(
    model: SequenceModel, data: SequenceDataset, settings: TrainSettings
) -> int:
    """A generous estimate of one member's device memory while training.

    Parameters six times over (parameters, mask, best parameters, gradients, two optimizer
    moments) plus the activations the backward pass keeps, about 16 floats per hidden unit per
    step and sequence per layer (carries, products, input projections, outputs), twice over for
    the backward pass's temporaries, and an evaluation batch's forward pass.
    """
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.key(0), *_sample_inputs(data), parameters_only=True)
    )
    param_bytes = sum(int(np.prod(leaf.shape)) * 4 for leaf in jax.tree.leaves(shapes))
    width = 16 * model.hidden_size * model.num_layers + data.output_size
    batch = epoch_batch_width(settings, data)  # capped: a wider batch would be filler
    training = 4 * data.train.inputs.shape[1] * width * 2 * batch
    evaluation = max(  # the larger of the valid and test splits' evaluation batches
        4 * split.inputs.shape[1] * width * _evaluation_batch(split, settings, data)
        for split in (data.valid, data.test)
    )  # fmt: skip
    return 6 * param_bytes + training + evaluation


def _evaluation_batch(split, settings: TrainSettings, data: SequenceDataset) -> int:
    """The sequences an evaluation batch of ``split`` holds: a stream dataset's ``streams`` (a
    window of each, whatever ``eval_batch_size``: ``train.make_eval_fn``), else
    ``settings.eval_batch_size`` capped at the split's sequences."""
    if data.streams:
        return data.streams
    return min(settings.eval_batch_size, split.num_sequences)


# The estimate is generous (``estimate_member_bytes``): a member up to this many times the device's
# memory is tried (the device may then report out of memory); beyond it, it is refused before
# compiling, since XLA can abort the process on such a program instead of raising.
MEMBER_MEMORY_SLACK = 2.0


def check_member_fits(member_bytes: int, device, hidden_size: int, streams: int = 0) -> None:
    """ConfigError in one line if one member alone needs far more memory than ``device`` has:
    chunking splits a population over memory, not a member. The line names what lowers the
    estimate: a stream dataset (``streams`` > 0) batches a window of each stream, whatever the
    batch sizes (``estimate_member_bytes``)."""
    available = device_memory_bytes(device)
    if member_bytes > MEMBER_MEMORY_SLACK * available:
        batches = (
            "dataset.options.streams or dataset.options.window"
            if streams
            else "train.batch_size or train.eval_batch_size"
        )
        raise ConfigError(
            f"one trial at hidden size {hidden_size} needs about {_gib(member_bytes)} (estimate), "
            f"far more than the {_gib(available)} this {device.device_kind} device offers: lower "
            f"model.hidden_size, {batches} "
            "(LSTM_VARIANTS_DEVICE_MEMORY_GB sets the memory to count on)"
        )


def members_per_chunk(member_bytes: int, num_members: int, devices: Sequence[Any]) -> int:
    """How many members fit the devices at once: all of them, or a multiple of the device count.

    A chunk is split evenly over the devices (padded to a multiple of their count), so each device
    holds ceil(chunk / devices) members: the fit is counted per device, not over their sum.
    """
    per_device = max(1, int(device_memory_bytes(devices[0]) // max(member_bytes, 1)))
    fit = per_device * len(devices)
    return num_members if fit >= num_members else fit


def device_memory_bytes(device) -> int:
    """80 % of a device's memory: the accelerator's limit, or a share of the host's RAM on CPU.

    ``LSTM_VARIANTS_DEVICE_MEMORY_GB`` overrides it (to test chunking, or to leave room for
    other jobs on a shared machine).

    Raises:
      ConfigError: the override is not a positive, finite number of GiB.
    """
    override = os.environ.get("LSTM_VARIANTS_DEVICE_MEMORY_GB")
    if override:
        return _memory_override_bytes(override)
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(0.8 * stats["bytes_limit"])
    host = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(0.8 * host / max(len(jax.local_devices()), 1))


def _memory_override_bytes(value: str) -> int:
    """``LSTM_VARIANTS_DEVICE_MEMORY_GB`` in bytes; ConfigError in one line unless it is a
    positive, finite number of GiB (no chunk fits in 0 bytes, and 'inf' has no byte count)."""
    try:
        gib = float(value)
    except ValueError:
        gib = math.nan
    if not (math.isfinite(gib) and gib > 0):
        raise ConfigError(
            f"LSTM_VARIANTS_DEVICE_MEMORY_GB={value!r} is not a positive number of GiB: set it "
            "like LSTM_VARIANTS_DEVICE_MEMORY_GB=16, or unset it to count on the device's own memory"
        )
    return int(gib * 2**30)


def _train_chunk(
    model: SequenceModel,
    optimizer: MemberOptimizer,
    data: SequenceDataset,
    settings: TrainSettings,
    members: Sequence[Member],
    padded_hidden: int,
    devices: Sequence[Any],
    progress: bool,
    checkpoint: CheckpointSettings | None = None,
    others_follow: bool = False,
) -> list[RunResult]:
    """Train members of one hidden-size bucket together; the loop of ``train.train_run``, per member.

    With ``others_follow`` (chunks of the population still to train), a checkpointed chunk
    saves its final state however recently it saved: its records are written only once the last
    chunk is done, and a kill meanwhile must not cost its whole training again.
    """
    started = time.perf_counter()
    train, valid, test = (split_arrays(s) for s in (data.train, data.valid, data.test))
    bucket_model = model.clone(hidden_size=padded_hidden)
    axes = hidden_axes(
        lambda h: jax.eval_shape(
            lambda: model.clone(hidden_size=h).init(
                jax.random.key(0), *_sample_inputs(data), parameters_only=True
            )
        )
    )

    # Pad the population to a multiple of the device count with frozen copies of member 0.
    count = len(members)
    total = -(-count // len(devices)) * len(devices)
    padded_members = list(members) + [members[0]] * (total - count)
    params, masks, data_keys = init_members(
        model, padded_members, axes, padded_hidden, _sample_inputs(data), progress
    )
    params, masks = jax.device_put((params, masks))
    data_keys = jax.random.wrap_key_data(jnp.asarray(data_keys))
    hyper = {
        key: jnp.asarray([m.optimizer_hyperparameters()[key] for m in padded_members], jnp.float32)
        for key in padded_members[0].optimizer_hyperparameters()
    }
    regularization = {
        "input_noise": jnp.asarray([m.input_noise for m in padded_members], jnp.float32),
        "dropout": jnp.asarray([m.dropout for m in padded_members], jnp.float32),
    }
    with_dropout = any(m.dropout > 0 for m in members)
    opt_state = jax.vmap(lambda p, h: optimizer(**h).init(p))(params, hyper)
    active = np.arange(total) < count

    compile_started = time.perf_counter()
    data_key = _data_key(data)
    cache_key = (
        bucket_model, optimizer, data_key, program_settings(settings), with_dropout,
        tuple(d.id for d in devices), total,
        # Settings JAX reads when tracing, which a program kept from before a change would ignore.
        jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision,
    )  # fmt: skip
    if cache_key not in _COMPILED:
        epoch_fn, evaluate = _population_programs(
            bucket_model, optimizer, data, settings, with_dropout, devices
        )
        epoch_fn = epoch_fn.lower(
            params,
            opt_state,
            masks,
            regularization,
            data_keys,
            jnp.asarray(active),
            jnp.int32(1),
            *train,
        ).compile()
        evaluators = {
            name: evaluate.lower(params, *arrays).compile()
            for name, arrays in (("valid", valid), ("test", test))
        }
        while len(_COMPILED) >= _COMPILED_KEPT:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[cache_key] = (epoch_fn, evaluators)
    epoch_fn, evaluators = _COMPILED[cache_key]
    compile_seconds = time.perf_counter() - compile_started
    init_seconds = compile_started - started

    state = ChunkState(
        epoch=0,
        finished=False,
        arrays={
            "params": params,
            "opt_state": opt_state,
            "best_params": params,
            "best_valid": np.full(total, math.inf),
            "best_epoch": np.zeros(total, np.int64),
            "active": np.arange(total) < count,
        },
        stopped=["max_epochs"] * total,
        curves=[[] for _ in range(total)],
    )
    resumed_from = None
    saver = None
    if checkpoint is not None:
        # The model and optimizer too: a caller reusing one folder for another cell (lstm and
        # lstm_b have the same shapes) or optimizer would otherwise resume the other's run.
        identity = (
            "population chunk", padded_hidden, total, len(devices), devices[0].device_kind,
            repr(settings), [dataclasses.astuple(m) for m in padded_members],
            model_description(bucket_model), optimizer.settings,
        )  # fmt: skip
        # Which time loop the LSTM layers run on, not the kernel library's name: a requeued job
        # may land on another CPU, whose build of the same source is as good.
        saver = ChunkCheckpoint(
            checkpoint,
            identity,
            data_sha256=data_key[0],
            time_loop=native_lstm.time_loop(bucket_model.cell_template(), bucket_model.recurrence),
            always_save_finished=others_follow,
        )
    with saver or contextlib.nullcontext():
        if saver is not None:
            restored = saver.restore(state.arrays)
            if restored is not None:
                state, resumed_from = restored, restored.epoch
                checkpoint.log(
                    f"population: {count} member(s) at hidden size {padded_hidden} resumed "
                    f"after epoch {resumed_from} from {saver.directory}"
                )
        earlier_seconds = state.seconds  # in epochs before the kill, up to the last save
        if not state.finished:
            train_epochs(state, epoch_fn, evaluators["valid"], masks, regularization, data_keys,
                          train, valid, settings, count, data.metric, saver, progress,
                          evaluation_point(optimizer))  # fmt: skip
    epochs_seconds = state.seconds
    best_params = state.arrays["best_params"]
    best_valid, best_epoch = state.arrays["best_valid"], state.arrays["best_epoch"]
    stopped, curves = state.stopped, state.curves

    test_loss, test_solved = (np.asarray(a) for a in evaluators["test"](best_params, *test))
    wall_seconds = time.perf_counter() - started + earlier_seconds
    results = []
    for i, member in enumerate(members):
        metrics: dict[str, Any] = {
            "metric": data.metric,
            "epochs_run": len(curves[i]),
            "best_epoch": int(best_epoch[i]),
            "stopped": stopped[i],
            "best_valid": None,
            "test_at_best": None,
        }
        if best_epoch[i] > 0:
            metrics["best_valid_loss"] = float(best_valid[i])
            metrics["best_valid"] = metric_value(float(best_valid[i]), data.metric)
            metrics["test_loss"] = float(test_loss[i])
            metrics["test_at_best"] = metric_value(float(test_loss[i]), data.metric)
            if not math.isnan(test_solved[i]):
                metrics["test_solved_fraction"] = float(test_solved[i])
        member_params = jax.tree.map(lambda leaf, i=i: leaf[i], best_params)
        results.append(
            RunResult(
                params=jax.device_get(unpad_params(member_params, axes, member.hidden_size)),
                metrics=metrics,
                curve=curves[i],
                compile_seconds=compile_seconds,
                wall_seconds=wall_seconds,
                population={
                    "size": count,
                    "index": i,
                    "padded_hidden_size": padded_hidden,
                    "devices": len(devices),
                    "init_seconds": init_seconds,
                    "epochs_seconds": epochs_seconds,
                }
                | ({} if resumed_from is None else {"resumed_after_epoch": resumed_from}),
            )
        )
    return results


# ``TrainSettings`` fields read by the host's epoch loop and bucketing alone, never by the compiled
# programs: populations that differ only in them (a sweep over train.patience) share programs.
HOST_ONLY_SETTINGS = {"max_epochs": 1, "patience": 0, "max_padding_waste": 0.0}


def program_settings(settings: TrainSettings) -> TrainSettings:
    """``settings`` with the ``HOST_ONLY_SETTINGS`` at fixed values: the compiled programs' key."""
    return dataclasses.replace(settings, **HOST_ONLY_SETTINGS)


def model_description(model: SequenceModel) -> list[tuple[str, Any]]:
    """``model``'s fields as text that is the same in every process, for a checkpoint's
    identity: a callable (an initialiser) by its name, as its repr holds its address."""

    def text(value: Any) -> Any:
        if isinstance(value, tuple):
            return [text(item) for item in value]
        if callable(value):
            return getattr(value, "__qualname__", type(value).__name__)
        return repr(value)

    return [
        (field.name, text(getattr(model, field.name)))
        for field in dataclasses.fields(model)
        if field.name not in ("parent", "name")
    ]


def evaluation_point(optimizer: MemberOptimizer) -> Callable | None:
    """(params, opt_state) -> what a population's records read, per member
    (``MemberOptimizer.evaluation_point``); None where that is the parameters trained."""
    if optimizer.evaluate_at == "lookahead":
        return None
    return functools.partial(_evaluation_point, optimizer)


@functools.partial(jax.jit, static_argnums=0)
def _evaluation_point(optimizer, params, opt_state):
    return jax.vmap(optimizer.evaluation_point)(params, opt_state)


def _population_programs(model, optimizer, data, settings, with_dropout, devices):
    """The jitted population epoch and evaluation, split over ``devices`` along the members."""
    member_epoch = make_member_epoch_fn(model, optimizer, data, settings, with_dropout)
    epoch = jax.vmap(member_epoch, in_axes=(0, 0, 0, 0, 0, 0, None, None, None, None))
    evaluate = jax.vmap(
        make_eval_fn(model, data, settings.eval_batch_size), in_axes=(0, None, None, None)
    )
    if len(devices) > 1:
        mesh = Mesh(np.asarray(devices), (MEMBER_AXIS,))
        members, shared = PartitionSpec(MEMBER_AXIS), PartitionSpec()
        epoch = jax.shard_map(
            epoch,
            mesh=mesh,
            in_specs=(members,) * 6 + (shared,) * 4,
            out_specs=members,
            check_vma=False,
        )
        evaluate = jax.shard_map(
            evaluate,
            mesh=mesh,
            in_specs=(members,) + (shared,) * 3,
            out_specs=members,
            check_vma=False,
        )
    return jax.jit(epoch), jax.jit(evaluate)


def _data_key(data: SequenceDataset) -> tuple:
    """What a population's programs depend on in ``data``: its arrays (the epoch reads the
    training lengths to group sequences, ``train.length_buckets``) and its other fields. Equal
    data loaded again, as by each ``run_trials`` of a sweep's jobs, finds the same programs."""
    arrays = ("train", "valid", "test")
    fields = [getattr(data, f.name) for f in dataclasses.fields(data) if f.name not in arrays]
    return (data.fingerprint(), repr(fields))  # repr: a text dataset's dropped_steps is a dict


def _sample_inputs(data: SequenceDataset):
    """A one-sequence, one-step input: enough to create every parameter."""
    return jnp.asarray(data.train.inputs[:1, :1]), jnp.ones((1,), jnp.int32)


def _input_width(model: SequenceModel, data: SequenceDataset) -> int:
    if data.train.tokens:
        return model.embed_size or 0
    return data.input_size


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB" if size >= 2**28 else f"{size / 2**20:.1f} MiB"
