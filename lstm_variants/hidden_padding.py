"""Members of different hidden sizes in one population: pad to a common size, mask the rest.

A member of hidden size h trains inside a population whose arrays have hidden size H >= h. Its
parameters are those of a stand-alone network of size h, initialised as that network would be,
then zero-padded along every hidden-size axis to H. The extra units then stay exactly zero:

- every weight and bias that feeds an extra unit is zero, so its pre-activations are 0; its
  candidate g(0) = 0 (tanh or identity) and so its cell state, output and (GRU, MUT, MGU, tanh
  RNN) hidden state stay 0 from the zero initial carry on;
- every weight that reads an extra unit (recurrent rows, the next layer's input rows, the
  readout rows, the gate-to-gate matrices of FGR) is zero too, so even a non-zero value there
  (the gates of an extra unit sit at sigmoid(0) = 1/2) reaches nothing;
- the gradient is multiplied by the member's parameter mask (1 on the stand-alone entries, 0 on
  the padding) before the optimizer sees it, so the padding is never updated: with a zero
  gradient SGD's momentum and Adam's moments stay 0, and so do their updates.

Which axes are hidden-size axes is found, not declared: the model's parameter shapes are computed
(abstractly, ``jax.eval_shape``) for two different hidden sizes, and the axes whose length differs
are the ones that scale with the hidden size. That holds for every cell of the registry because
each stores its parameters per gate, by paper name, with the hidden size as a whole axis.

The cost of padding is wasted work. The work of a step of the first layer grows like h * (D + h)
(the input and recurrent products), and of each layer above it like h * (h + h) (its input is the
layer below), so with L layers a step costs ``w(h) = h(D + h) + 2(L - 1)h^2`` and a member of size
h padded to H wastes ``1 - w(h) / w(H)`` of its work; ``hidden_buckets`` groups sizes so that no
member wastes more than a given fraction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

PyTree = object


def hidden_axes(shapes_of: Callable[[int], PyTree]) -> PyTree:
    """The hidden-size axes of every parameter.

    Args:
      shapes_of: hidden size -> pytree of parameter shapes (e.g. ``jax.eval_shape`` of init).

    Returns:
      The same pytree with, for each leaf, the tuple of axes whose length changes with the hidden
      size (their length is the hidden size itself).
    """
    small, large = shapes_of(3), shapes_of(5)

    def changed(a, b):
        return tuple(i for i, (m, n) in enumerate(zip(a.shape, b.shape, strict=True)) if m != n)

    return jax.tree.map(changed, small, large)


def pad_params(params: PyTree, axes: PyTree, hidden: int) -> PyTree:
    """Zero-pad every hidden-size axis of ``params`` (a stand-alone network) to length ``hidden``.

    On the host, in numpy: a device op would be compiled anew for every (h, H) pair of shapes.
    """

    def pad(leaf, leaf_axes):
        widths = [(0, 0)] * np.ndim(leaf)
        for axis in leaf_axes:
            widths[axis] = (0, hidden - np.shape(leaf)[axis])
        return np.pad(np.asarray(leaf), widths)

    return jax.tree.map(pad, params, axes)


def unpad_params(params: PyTree, axes: PyTree, hidden: int) -> PyTree:
    """The stand-alone parameters of hidden size ``hidden`` inside padded ``params``."""

    def crop(leaf, leaf_axes):
        index = [slice(None)] * leaf.ndim
        for axis in leaf_axes:
            index[axis] = slice(0, hidden)
        return leaf[tuple(index)]

    return jax.tree.map(crop, params, axes)


def param_mask(params: PyTree, axes: PyTree, hidden: int) -> PyTree:
    """1.0 on the entries of a stand-alone network's ``params`` padded to ``hidden``, else 0.0."""
    return pad_params(
        jax.tree.map(lambda leaf: np.ones_like(np.asarray(leaf)), params), axes, hidden
    )


def step_work(hidden: int, input_size: int, num_layers: int = 1) -> float:
    """w(h) = h(D + h) + 2(L - 1)h^2: a step's products over L layers, up to a constant."""
    return hidden * (input_size + hidden) + 2 * (num_layers - 1) * hidden**2


def wasted_work(hidden: int, padded_hidden: int, input_size: int, num_layers: int = 1) -> float:
    """The fraction of a step's work spent on padding: 1 - w(h) / w(H) (``step_work``)."""
    return 1.0 - step_work(hidden, input_size, num_layers) / step_work(
        padded_hidden, input_size, num_layers
    )


def hidden_buckets(
    hidden_sizes: Sequence[int], input_size: int, max_waste: float, num_layers: int = 1
) -> list[tuple[int, list[int]]]:
    """Group members by hidden size so that no member wastes more than ``max_waste`` of its work.

    Greedy from the largest size down: a bucket's size is its largest member's, and a member joins
    the current bucket while ``wasted_work(h, H, D, L) <= max_waste``.

    Args:
      hidden_sizes: the hidden size of each member.
      input_size: D, the first layer's input width (the work model's input term).
      max_waste: the largest wasted fraction a member may have, in [0, 1).
      num_layers: L, the stacked layers (each above the first has input width h).

    Returns:
      (bucket hidden size H, member indices) pairs, largest H first; members in ascending order.
    """
    order = sorted(range(len(hidden_sizes)), key=lambda i: -hidden_sizes[i])
    buckets: list[tuple[int, list[int]]] = []
    for index in order:
        size = hidden_sizes[index]
        if buckets and wasted_work(size, buckets[-1][0], input_size, num_layers) <= max_waste:
            buckets[-1][1].append(index)
        else:
            buckets.append((size, [index]))
    return [(size, sorted(members)) for size, members in buckets]


def bucket_waste(
    buckets: Sequence[tuple[int, Sequence[int]]],
    hidden_sizes: Sequence[int],
    input_size: int,
    num_layers: int = 1,
) -> float:
    """The fraction of all members' work spent on padding, over all buckets."""
    useful = sum(
        step_work(hidden_sizes[i], input_size, num_layers)
        for _, members in buckets
        for i in members
    )
    spent = sum(step_work(size, input_size, num_layers) * len(members) for size, members in buckets)
    return 1.0 - useful / spent if spent else 0.0
