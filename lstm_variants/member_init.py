"""Initialise a population's members: each as its stand-alone network, on the host CPU.

A member of hidden size h starts from exactly the parameters a stand-alone network of size h gets
from its seed (``SequenceModel.init``), zero-padded to its bucket's size H (``hidden_padding``).
Initialising op by op costs little per member but much per new shape: the initialisers' jitted
pieces (``jax.random.uniform``, the orthogonal QR, ...) are compiled once per parameter shape,
about 0.9 s per hidden size on this CPU, and a Greff-style search draws a new integer size for
most members. Two things keep that cost down without changing a single bit of the parameters:

- the initialisers run on the host CPU whatever the training device: a GPU would compile each of
  those small programs for the device (with ``ptxas``), and the parameters are copied over once
  anyway; the same seed then gives the same initial parameters on every backend;
- padding, masks and stacking are numpy (no per-shape compile at all: with ``jnp.pad`` they added
  0.2 s per member), with one transfer of the stacked arrays to the training devices at the end.

Measured and not kept: a thread pool over the distinct sizes (0.97 -> 0.85 s per size on 2 cores:
the compiles barely overlap), a jitted init per size (one larger compile, as slow), and the same
at XLA optimisation level 0 (0.5 s per size, but no longer bitwise equal to the op-by-op
parameters, which would change every committed record).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from lstm_variants.hidden_padding import pad_params, param_mask

PyTree = Any


def init_members(
    model,
    members: Sequence[Any],
    axes: PyTree,
    padded_hidden: int,
    sample_inputs,
    progress: bool = False,
) -> tuple[PyTree, PyTree, np.ndarray]:
    """Stacked padded parameters, gradient masks and data keys of ``members``, as numpy arrays.

    Args:
      model: the population's ``SequenceModel``; each member gets its own hidden size and, where
        set, its own initial forget bias.
      members: ``population.Member`` objects (``hidden_size``, ``seed``, ``forget_bias``).
      axes: the hidden-size axes of every parameter (``hidden_padding.hidden_axes``).
      padded_hidden: the bucket's hidden size H.
      sample_inputs: a one-step input batch that creates every parameter.
      progress: show a progress bar over the members (large populations take minutes).

    Returns:
      (params, masks, data_keys): pytrees with a leading member axis, and the members' data keys
      as raw key data of shape (K, ...) (``jax.random.wrap_key_data`` restores them).
    """
    host = _host_device()
    with jax.default_device(host):
        sample = jax.device_put(sample_inputs, host)
        ordered = []
        for member in tqdm(members, desc="init", disable=None if progress else True, leave=False):
            init_key, data_key = jax.random.split(jax.random.key(member.seed))
            # Without running the recurrence: compiling a time loop per hidden size costs seconds.
            params = _stand_alone(model, member).init(init_key, *sample, parameters_only=True)
            ordered.append((jax.device_get(params), np.asarray(jax.random.key_data(data_key))))
    params = _stack([pad_params(p, axes, padded_hidden) for p, _ in ordered])
    masks = _stack([param_mask(p, axes, padded_hidden) for p, _ in ordered])
    return params, masks, np.stack([key for _, key in ordered])


def _host_device():
    """The host CPU; the default device where JAX runs without it (``JAX_PLATFORMS=cuda``)."""
    try:
        return jax.local_devices(backend="cpu")[0]
    except RuntimeError:
        return jax.local_devices()[0]


def _stand_alone(model, member):
    """The stand-alone network of the member's hidden size and initial forget bias."""
    options = dict(model.cell_options)
    if member.forget_bias is not None:
        options["forget_bias"] = member.forget_bias
    return model.clone(hidden_size=member.hidden_size, cell_options=tuple(sorted(options.items())))


def _stack(trees: Sequence[PyTree]) -> PyTree:
    return jax.tree.map(lambda *leaves: np.stack(leaves), *trees)
