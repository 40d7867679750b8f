"""Data parallelism over the devices of one host, with the collective outside every loop.

``data_parallel_value_and_grad(loss_fn, num_devices)`` is ``jax.value_and_grad(loss_fn)`` with the
batch split over ``num_devices`` devices: each device runs the whole forward and backward pass
(both time loops) on its slice of the batch, and one all-reduce at the end combines the losses and
gradients. On a CPU host, "devices" are simulated with ``jax.config.update("jax_num_cpu_devices",
n)`` and each runs on its own core, which is how a recurrence whose step is too small to split
across cores (a 16 x 128 by 128 x 512 product takes ~20 us) still uses all of them.

Why ``shard_map`` and not sharding annotations: with a batch-sharded ``NamedSharding`` GSPMD is free
to place collectives wherever it likes, and for the plain-scan recurrence it placed an all-reduce
inside the time loop (thousands of rendezvous per step, and on a 2-core host an XLA CPU rendezvous
inside a ``while`` loop can deadlock). Under ``shard_map`` the only collective is the ``psum`` this
module writes, after the backward pass.

Weighting: ``loss_fn`` returns a mean over the valid frames of its shard, and shards of a padded
batch hold different numbers of valid frames, so the global mean is the frame-weighted mean of the
shard means: ``loss = sum_d w_d loss_d / sum_d w_d`` with ``w_d = weight_fn(shard_d)``, and the
gradients likewise. The losses, gradients and weights travel in one flat vector, so there is a
single all-reduce per call. A shard with weight 0 contributes exactly 0 (its own mean may be 0/0).

Example (the caller must configure the devices before JAX initialises its backend)::

    import jax
    jax.config.update("jax_num_cpu_devices", 2)   # before the first jax.devices() / computation
    from lstm_variants.data_parallel import data_parallel_value_and_grad

    value_and_grad = data_parallel_value_and_grad(
        loss_fn, num_devices=2, weight_fn=lambda batch: batch["mask"].sum())
    loss, grads = jax.jit(value_and_grad)(params, batch)   # batch leaves: (B, ...), B % 2 == 0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, PartitionSpec

AXIS = "data"


def data_mesh(num_devices: int | None = None, axis_name: str = AXIS) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (default: all of them)."""
    devices = jax.devices()
    num_devices = len(devices) if num_devices is None else num_devices
    if num_devices < 1:  # JAX's own word for it is "shard_map requires a non-empty mesh"
        raise ValueError(
            f"num_devices must be at least 1 (None: all {len(devices)}), got {num_devices}"
        )
    if num_devices > len(devices):
        raise ValueError(
            f"asked for {num_devices} devices but JAX sees {len(devices)}; on CPU call "
            f'jax.config.update("jax_num_cpu_devices", {num_devices}) before JAX initialises'
        )
    return Mesh(np.array(devices[:num_devices]), (axis_name,))


def data_parallel_value_and_grad(
    loss_fn: Callable[[Any, Any], jax.Array],
    num_devices: int | None = None,
    *,
    weight_fn: Callable[[Any], jax.Array] | None = None,
    axis_name: str = AXIS,
) -> Callable[[Any, Any], tuple[jax.Array, Any]]:
    """``jax.value_and_grad(loss_fn)`` with the batch split over devices and one all-reduce.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, the mean over the valid frames of ``batch``.
      num_devices: devices to split the batch over (default: all). 1 is plain value_and_grad.
      weight_fn: ``weight_fn(batch) -> scalar``, the number of frames ``loss_fn`` averages over
        (e.g. the sum of the lengths); default: the shard's batch size (equal weights).
      axis_name: name of the mesh axis (must not clash with an enclosing ``shard_map``).

    Returns:
      ``f(params, batch) -> (loss, grads)`` equal to ``jax.value_and_grad(loss_fn)(params, batch)``
      on the whole batch. Every leaf of ``batch`` is split along axis 0, whose size must be a
      multiple of ``num_devices``; ``params`` are replicated. ``loss`` and ``grads`` are replicated.
    """
    if num_devices == 1:
        return jax.value_and_grad(loss_fn)
    mesh = data_mesh(num_devices, axis_name)

    def weight_of(batch):
        if weight_fn is not None:
            return jnp.asarray(weight_fn(batch))
        return jnp.asarray(jax.tree.leaves(batch)[0].shape[0])

    def local(params, batch):
        value, grads = jax.value_and_grad(loss_fn)(params, batch)
        flat, unravel = ravel_pytree(grads)
        weight = weight_of(batch).astype(flat.dtype)
        present = weight > 0
        # Zero (not NaN) when this shard holds no valid frame.
        value = jnp.where(present, value, 0).astype(flat.dtype)
        flat = jnp.where(present, flat, 0)
        packed = jnp.concatenate([weight[None], (weight * value)[None], weight * flat])
        total = jax.lax.psum(packed, axis_name)  # the one collective, after the backward pass
        norm = jnp.maximum(total[0], jnp.finfo(flat.dtype).tiny)
        return total[1] / norm, unravel(total[2:] / norm)

    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec(axis_name)),
        out_specs=(PartitionSpec(), PartitionSpec()),
        # The model's scans start from constant (replicated) carries that become per-device values;
        # the only cross-device value is the psum above, so replication checking adds nothing.
        check_vma=False,
    )
