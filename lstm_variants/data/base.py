"""The containers every dataset loader returns: padded arrays plus lengths.

A split is a batch of variable-length sequences stored the way a `jax.lax.scan` over time wants
them: one dense `(N, T, D)` array, zero-padded after each sequence's end, and the number of valid
steps of each sequence. The trainer masks the loss with the lengths, so padding never counts.

Inputs are real vectors `(N, T, D)` float32, or token ids `(N, T)` int32 in `[0, input_size)`
(text: the model embeds them, so a 10,000-word vocabulary never becomes a one-hot array).

Targets come in two layouts, named by `SequenceDataset.target_at`:

- `'every_step'`: one target per step, `(N, T, O)`, e.g. the next piano-roll frame of JSB Chorales
  (Greff et al. 2017, section 4).
- `'last_step'`: one target per sequence, `(N, O)`, read at step `lengths - 1`, e.g. the adding
  problem (Hochreiter & Schmidhuber 1997, experiment 4).

Categorical targets drop the last axis: `(N, T)` or `(N,)` int32 class ids in `[0, output_size)`,
with `IGNORE` (-1) marking a step that has no target (e.g. the question part of an arithmetic
sequence): such a step counts in neither the loss nor the metric.

Long texts are `streams`: a dataset with `streams = S > 0` holds S parallel streams cut into
windows of equal length, stored window-major (row `w * S + s` is window w of stream s), so batch w
is rows `[w * S, (w + 1) * S)` and row s of batch w + 1 continues row s of batch w. The trainer
feeds those batches in order and passes the carry from one to the next (truncated BPTT: the
gradient stops at window edges); it never shuffles them.

The arrays are checked when the dataclasses are built, so a loader that gets a shape or dtype
wrong fails where the mistake is made rather than deep inside a jitted training step.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np

TARGETS = ("multilabel", "categorical", "regression")
TARGET_AT = ("every_step", "last_step")
METRICS = ("nll_per_step", "mse", "cross_entropy", "bits_per_char", "perplexity")
# How a sequence counts as solved: 'abs_error' (regression: every output within the dataset's
# `tolerance`, the 1997 paper's criteria: 0.04 for adding, 0.3 for temporal order) or 'exact'
# (categorical: the argmax is right at every step that has a target).
SUCCESS = (None, "abs_error", "exact")
IGNORE = -1  # categorical target id of a step without a target


class DataError(Exception):
    """A dataset cannot be loaded; the message is one line: what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: zero-padded sequences and their lengths.

    Attributes:
        inputs: `(N, T, D)` float32, zero after each sequence's length; or `(N, T)` int32 token
            ids (zero after the length).
        targets: `(N, T, O)` float32 for per-step targets (zero after the length), or `(N, O)`
            float32 for one target per sequence, read at its last valid step; for categorical
            targets `(N, T)` or `(N,)` int32 class ids, `IGNORE` where there is no target.
        lengths: `(N,)` int32, the number of valid steps of each sequence, in `[1, T]`.
    """

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray

    def __post_init__(self):
        _check_dtype("inputs", self.inputs, np.int32 if self.tokens else np.float32)
        _check_dtype("targets", self.targets, np.int32 if self.categorical else np.float32)
        _check_dtype("lengths", self.lengths, np.int32)
        if self.inputs.ndim not in (2, 3):
            raise DataError(
                f"inputs must be (N, T, D) float32 or (N, T) int32, got shape {self.inputs.shape}"
            )
        n, t = self.inputs.shape[:2]
        if self.lengths.shape != (n,):
            raise DataError(f"lengths must have shape ({n},), got {self.lengths.shape}")
        leading = self.targets.shape if self.categorical else self.targets.shape[:-1]
        if leading not in ((n,), (n, t)):
            layout = "(N, T) or (N,)" if self.categorical else "(N, T, O) or (N, O)"
            raise DataError(
                f"targets must be {layout} with N = {n}, T = {t}, got shape {self.targets.shape}"
            )
        if n and (self.lengths.min() < 1 or self.lengths.max() > t):
            raise DataError(
                f"lengths must lie in [1, {t}], got [{self.lengths.min()}, {self.lengths.max()}]"
            )

    @property
    def tokens(self) -> bool:
        """True when the inputs are `(N, T)` int32 token ids."""
        return isinstance(self.inputs, np.ndarray) and self.inputs.ndim == 2

    @property
    def categorical(self) -> bool:
        """True when the targets are int32 class ids."""
        return isinstance(self.targets, np.ndarray) and self.targets.dtype == np.int32

    @property
    def num_sequences(self) -> int:
        """The number of sequences N."""
        return self.inputs.shape[0]

    def describe(self) -> dict:
        """Sizes of this split.

        Returns:
            A dict with the number of sequences, the number of valid steps in all, and the
            maximum and mean length.
        """
        return {
            "sequences": self.num_sequences,
            "steps": int(self.lengths.sum()),
            "max_length": int(self.lengths.max()),
            "mean_length": float(self.lengths.mean()),
        }


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceDataset:
    """A dataset: three splits and what the model must predict.

    Attributes:
        name: the registry name, e.g. `'jsb_chorales'`.
        input_size: D, the size of one input step (the vocabulary size for token inputs).
        output_size: O, the size of one target (the number of classes for categorical ones).
        target: `'multilabel'` (one sigmoid per output, e.g. the 88 notes of a piano roll),
            `'categorical'` (one softmax over O classes, e.g. the next character) or
            `'regression'` (real values, mean squared error).
        target_at: `'every_step'` (targets `(N, T, O)`) or `'last_step'` (targets `(N, O)`).
        metric: what the study reports: `'nll_per_step'` (negative log-likelihood summed over
            the outputs, averaged over all valid steps of a split), `'mse'`, or for categorical
            targets `'cross_entropy'` (nats), `'bits_per_char'` or `'perplexity'`.
        train: the training split.
        valid: the validation split (early stopping).
        test: the test split.
        streams: 0 for independent sequences; S > 0 for S parallel streams cut into windows,
            stored window-major (see the module docstring), so the trainer carries the state
            from one batch of S windows to the next.
        success: how a sequence counts as solved, one of `SUCCESS` (default None: no criterion).
        tolerance: the largest absolute error of a solved sequence, for `success='abs_error'`.
    """

    name: str
    input_size: int
    output_size: int
    target: str
    target_at: str
    metric: str
    train: Split
    valid: Split
    test: Split
    streams: int = 0
    success: str | None = None
    tolerance: float | None = None

    def fingerprint(self) -> str:
        """The hex sha256 of the three splits' arrays (dtype, shape and bytes, in order).

        A record keeps it (``data_sha256``), so a trial rebuilt later is evaluated on the data it
        was trained on, not on an edited file or another generator version of the same name.
        """
        digest = hashlib.sha256(self.name.encode())
        for split in (self.train, self.valid, self.test):
            for array in (split.inputs, split.targets, split.lengths):
                array = np.ascontiguousarray(array)
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(array.tobytes())
        return digest.hexdigest()

    def __post_init__(self):
        if (self.success == "abs_error") != (self.tolerance is not None):
            raise DataError(f"{self.name}: a tolerance goes with success='abs_error' and only then")
        for field, value, allowed in (
            ("target", self.target, TARGETS),
            ("target_at", self.target_at, TARGET_AT),
            ("metric", self.metric, METRICS),
            ("success", self.success, SUCCESS),
        ):
            if value not in allowed:
                raise DataError(f"{self.name}: {field} must be one of {allowed}, got {value!r}")
        categorical = self.target == "categorical"
        target_ndim = (3 if self.target_at == "every_step" else 2) - categorical
        for split_name, split in self.splits().items():
            where = f"{self.name}: {split_name}"
            if split.tokens:
                _check_ids(f"{where} input token", split.inputs, 0, self.input_size)
            elif split.inputs.shape[-1] != self.input_size:
                raise DataError(
                    f"{where} inputs have {split.inputs.shape[-1]} features, "
                    f"input_size is {self.input_size}"
                )
            if split.categorical != categorical or split.targets.ndim != target_ndim:
                raise DataError(
                    f"{where} targets have shape {split.targets.shape} and dtype "
                    f"{split.targets.dtype}; a {self.target} target at {self.target_at} needs "
                    f"{target_ndim} dims of {'int32' if categorical else 'float32'}"
                )
            if categorical:
                _check_ids(f"{where} target class", split.targets, IGNORE, self.output_size)
            elif split.targets.shape[-1] != self.output_size:
                raise DataError(
                    f"{where} targets have {split.targets.shape[-1]} outputs, "
                    f"output_size is {self.output_size}"
                )
            if self.streams and split.num_sequences % self.streams:
                raise DataError(
                    f"{where} has {split.num_sequences} windows, not a multiple of "
                    f"{self.streams} streams"
                )

    def splits(self) -> dict[str, Split]:
        """The splits by name, in the order train, valid, test."""
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def describe(self) -> dict:
        """A summary to print or to store in a run record.

        Returns:
            A dict with the name, input size and kind (`'binary'` when every input is 0 or 1,
            else `'real'`), output size and kind (`target`), where targets are read, the metric,
            and `Split.describe()` for each split.
        """
        binary = all(
            bool(np.all((split.inputs == 0) | (split.inputs == 1)))
            for split in self.splits().values()
        )
        tokens = self.train.tokens
        return {
            "name": self.name,
            "input_size": self.input_size,
            "input_kind": "tokens" if tokens else "binary" if binary else "real",
            "output_size": self.output_size,
            "target": self.target,
            "target_at": self.target_at,
            "metric": self.metric,
            "streams": self.streams,
            "success": self.success,
            "tolerance": self.tolerance,
            "splits": {name: split.describe() for name, split in self.splits().items()},
        }


def _check_dtype(name: str, array: np.ndarray, dtype: type) -> None:
    """Raise DataError unless `array` is a numpy array of `dtype`."""
    if not isinstance(array, np.ndarray) or array.dtype != dtype:
        got = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise DataError(f"{name} must be a numpy {np.dtype(dtype).name} array, got {got}")


def _check_ids(name: str, ids: np.ndarray, low: int, high: int) -> None:
    """Raise DataError unless every id lies in `[low, high)`."""
    if ids.size and (ids.min() < low or ids.max() >= high):
        raise DataError(f"{name} ids must lie in [{low}, {high}), got [{ids.min()}, {ids.max()}]")


# The most array elements a generated dataset may build, all splits together (2^30: 4 GiB of
# float32). The papers' largest settings stay far below it (adding with T = 1000 and 100,000
# sequences: 2.2e8); a length or size with a few zeros too many is refused before anything is
# drawn, instead of running for minutes before a MemoryError, or swapping the machine to a halt.
MAX_ELEMENTS = 2**30
# Generators that draw character by character in Python (xml, arithmetic: about a microsecond a
# character) take this smaller bound: at most a minute or two of drawing on a 2-core VM.
MAX_PYTHON_ELEMENTS = 2**26


def generated_splits(
    name: str,
    sizes: dict[str, int],
    seed: int,
    draw: Callable[[np.random.Generator, int], Split],
    per_sequence: int | None = None,
    set_by: str = "",
    max_elements: int = MAX_ELEMENTS,
) -> dict[str, Split]:
    """The splits of a generated dataset, each drawn from its own child of the seed.

    Split k is ``draw(np.random.default_rng(child_k), n_k)`` with ``child_k`` the k-th child of
    ``np.random.SeedSequence(seed)``, so one split does not change when another's size does.

    Args:
        name: the dataset's name, for error messages.
        sizes: the number of sequences of each split, e.g. ``{"train": 1000, ...}``.
        seed: the seed all splits derive from.
        draw: (generator, number of sequences) -> Split.
        per_sequence: the array elements one sequence builds (inputs and targets; an upper
            bound where lengths vary), checked before drawing: ``sum(sizes) * per_sequence``
            must not exceed ``max_elements``. None: not checked.
        set_by: the options that set ``per_sequence``, as ``'T=100'``, for the error message.
        max_elements: the bound (default ``MAX_ELEMENTS``).

    Raises:
        DataError: a split size is below 1, the seed below 0, the splits would build more than
            ``max_elements`` elements, or a split does not fit in memory.
    """
    for split, n in sizes.items():
        if n < 1:
            raise DataError(f"{name}: n_{split} must be at least 1, got {n}")
    if seed < 0:
        raise DataError(f"{name}: seed must be at least 0, got {seed}")
    total = sum(sizes.values())
    if per_sequence is not None and total * per_sequence > max_elements:
        counts = " + ".join(f"n_{split}" for split in sizes)
        raise DataError(
            f"{name}: {set_by} with {counts} = {total:,} sequences would build "
            f"{total * per_sequence:,} elements ({per_sequence:,} a sequence), above the "
            f"bound of {max_elements:,} (2^{max_elements.bit_length() - 1}) for {name}; lower "
            f"{' or '.join(option.split('=')[0] for option in set_by.split(', '))} or the "
            "n_* sizes"
        )
    children = np.random.SeedSequence(seed).spawn(len(sizes))
    splits = {}
    for (split, n), child in zip(sizes.items(), children, strict=True):
        try:
            splits[split] = draw(np.random.default_rng(child), n)
        except MemoryError as error:  # a length or size with a few zeros too many
            raise DataError(
                f"{name}: the {split} split of {n} sequences does not fit in memory ({error}); "
                f"lower n_{split} or the sequence length"
            ) from None
    return splits
