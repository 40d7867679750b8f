"""Batches of sequences of similar length, so that padded steps cost little.

A split is stored padded to its longest sequence (T steps), and a jitted time loop runs a fixed
number of steps, so a batch of short sequences costs as much as a batch of the longest. With
``num_buckets`` B > 1 the training sequences are sorted by length and cut into B groups of nearly
equal size; group b is run for T_b steps, its longest length. An epoch then

1. shuffles each group with the member's data key and cuts it into batches (filler sequences of
   weight 0 complete the last batch of a group),
2. orders all batches by a schedule drawn from the epoch number alone (``schedule_key``), the same
   for every member of a population, so that at every update all members run the same T_b: the
   branch is chosen by ``lax.switch`` on an index that ``vmap`` does not batch, and stays a real
   conditional instead of running every branch.

A member's order still depends on its own seed (which sequences form its batches), and a trial
trained alone follows the same schedule, so a population member trains exactly as it would alone.
The cost: the compiled epoch holds B copies of the step, one per length, so compiling takes about B
times longer; worth it for long runs on data with a wide spread of lengths (JSB Chorales: 25 to 129
frames, half of a random batch-16 epoch is padding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def length_groups(lengths: np.ndarray, num_buckets: int) -> list[np.ndarray]:
    """Sequence indices sorted by length and cut into ``num_buckets`` groups of nearly equal size."""
    order = np.argsort(lengths, kind="stable")
    groups = [group for group in np.array_split(order, max(1, num_buckets)) if len(group)]
    return groups


def group_steps(lengths: np.ndarray, groups: list[np.ndarray]) -> list[int]:
    """T_b, the steps group b runs for: its longest sequence."""
    return [int(lengths[group].max()) for group in groups]


def epoch_batch_size(group_sizes: list[int], batch_size: int) -> int:
    """The batch width an epoch runs: ``batch_size``, or the largest group's n_b if that is less.

    A batch never holds more sequences than its group, so a wider one would hold nothing but
    filler beyond them: the same updates (filler weighs 0) for more work and memory. JSB
    Chorales' 229 training chorales at batch_size=1000 would run 771 empty sequences a batch.
    """
    return max(1, min(batch_size, max(group_sizes, default=1)))


def padding_fraction(lengths: np.ndarray, groups: list[np.ndarray], batch_size: int) -> float:
    """The share of the steps an epoch computes that are padding (filler sequences included).

    Group b computes ceil(n_b / batch) * batch * T_b steps for the sum of its lengths, with the
    batch capped at the largest group (``epoch_batch_size``).
    """
    batch_size = epoch_batch_size([len(g) for g in groups], batch_size)
    steps = group_steps(lengths, groups)
    computed = sum(
        -(-len(g) // batch_size) * batch_size * t for g, t in zip(groups, steps, strict=True)
    )
    return 1.0 - float(lengths.sum()) / computed


def schedule_key(epoch: jax.Array) -> jax.Array:
    """The key of an epoch's batch schedule: the same for every trial (see the module docstring)."""
    return jax.random.fold_in(jax.random.key(0), epoch)


def bucketed_order(
    key: jax.Array, epoch: jax.Array, groups: list[np.ndarray], batch_size: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """An epoch of length-bucketed batches.

    Args:
      key: the member's order key (shuffles within each group).
      epoch: the epoch number (orders the batches; shared by all members).
      groups: ``length_groups`` of the training split.
      batch_size: sequences per batch, capped at the largest group (``epoch_batch_size``).

    Returns:
      (order, weights, bucket): (U, batch) sequence indices and weights (0 marks filler), and the
      (U,) group of each batch, for the U = sum_b ceil(n_b / batch) batches of the epoch.
    """
    batch_size = epoch_batch_size([len(group) for group in groups], batch_size)
    per_group_batches = [-(-len(group) // batch_size) for group in groups]
    most = max(per_group_batches)
    orders, weights = [], []
    for b, (group, count) in enumerate(zip(groups, per_group_batches, strict=True)):
        filler = count * batch_size - len(group)
        shuffled = jax.random.permutation(jax.random.fold_in(key, b), jnp.asarray(group, jnp.int32))
        # Filler repeats a sequence of the group, so that it too fits the group's T_b steps.
        extra = jnp.full(filler + (most - count) * batch_size, int(group[0]), jnp.int32)
        padded = jnp.concatenate([shuffled, extra])
        weight = jnp.concatenate([jnp.ones(len(group)), jnp.zeros(padded.shape[0] - len(group))])
        orders.append(padded.reshape(most, batch_size))
        weights.append(weight.reshape(most, batch_size))
    labels = np.repeat(np.arange(len(groups)), per_group_batches)
    bucket = jax.random.permutation(schedule_key(epoch), jnp.asarray(labels, jnp.int32))
    # The k-th batch of group b in the schedule takes that group's k-th batch.
    seen = jnp.cumsum(jax.nn.one_hot(bucket, len(groups), dtype=jnp.int32), axis=0)
    within = jnp.take_along_axis(seen, bucket[:, None], axis=1)[:, 0] - 1
    order = jnp.stack(orders)[bucket, within]
    weight = jnp.stack(weights)[bucket, within]
    return order, weight, bucket
