"""The containers every dataset loader returns: padded arrays plus lengths.

A split is a batch of variable-length sequences stored the way a `jax.lax.scan` over time wants
them: one dense `(N, T, D)` array, zero-padded after each sequence's end, and the number of valid
steps of each sequence. The trainer masks the loss with the lengths, so padding never counts.

Targets come in two layouts, named by `SequenceDataset.target_at`:

- `'every_step'`: one target per step, `(N, T, O)`, e.g. the next piano-roll frame of JSB Chorales
  (Greff et al. 2017, section 4).
- `'last_step'`: one target per sequence, `(N, O)`, read at step `lengths - 1`, e.g. the adding
  problem (Hochreiter & Schmidhuber 1997, experiment 4).

The arrays are checked when the dataclasses are built, so a loader that gets a shape or dtype
wrong fails where the mistake is made rather than deep inside a jitted training step.
"""

from __future__ import annotations

import dataclasses

import numpy as np

TARGETS = ("multilabel", "regression")
TARGET_AT = ("every_step", "last_step")
METRICS = ("nll_per_step", "mse")


class DataError(Exception):
    """A dataset cannot be loaded; the message is one line: what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: zero-padded sequences and their lengths.

    Attributes:
        inputs: `(N, T, D)` float32, zero after each sequence's length.
        targets: `(N, T, O)` float32 for per-step targets (zero after the length), or `(N, O)`
            float32 for one target per sequence, read at its last valid step.
        lengths: `(N,)` int32, the number of valid steps of each sequence, in `[1, T]`.
    """

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray

    def __post_init__(self):
        _check_dtype("inputs", self.inputs, np.float32)
        _check_dtype("targets", self.targets, np.float32)
        _check_dtype("lengths", self.lengths, np.int32)
        if self.inputs.ndim != 3:
            raise DataError(f"inputs must be (N, T, D), got shape {self.inputs.shape}")
        n, t, _ = self.inputs.shape
        if self.lengths.shape != (n,):
            raise DataError(f"lengths must have shape ({n},), got {self.lengths.shape}")
        leading = {2: (n,), 3: (n, t)}.get(self.targets.ndim)
        if self.targets.shape[:-1] != leading:
            raise DataError(
                f"targets must be (N, T, O) = ({n}, {t}, O) or (N, O) = ({n}, O), "
                f"got shape {self.targets.shape}"
            )
        if n and (self.lengths.min() < 1 or self.lengths.max() > t):
            raise DataError(
                f"lengths must lie in [1, {t}], got [{self.lengths.min()}, {self.lengths.max()}]"
            )

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
        input_size: D, the size of one input step.
        output_size: O, the size of one target.
        target: `'multilabel'` (one sigmoid per output, e.g. the 88 notes of a piano roll) or
            `'regression'` (real values, mean squared error).
        target_at: `'every_step'` (targets `(N, T, O)`) or `'last_step'` (targets `(N, O)`).
        metric: what the study reports: `'nll_per_step'` (negative log-likelihood summed over
            the outputs, averaged over all valid steps of a split) or `'mse'`.
        train: the training split.
        valid: the validation split (early stopping).
        test: the test split.
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

    def __post_init__(self):
        for field, value, allowed in (
            ("target", self.target, TARGETS),
            ("target_at", self.target_at, TARGET_AT),
            ("metric", self.metric, METRICS),
        ):
            if value not in allowed:
                raise DataError(f"{self.name}: {field} must be one of {allowed}, got {value!r}")
        target_ndim = 3 if self.target_at == "every_step" else 2
        for split_name, split in self.splits().items():
            if split.inputs.shape[-1] != self.input_size:
                raise DataError(
                    f"{self.name}: {split_name} inputs have {split.inputs.shape[-1]} features, "
                    f"input_size is {self.input_size}"
                )
            if split.targets.ndim != target_ndim or split.targets.shape[-1] != self.output_size:
                raise DataError(
                    f"{self.name}: {split_name} targets have shape {split.targets.shape}, "
                    f"expected {target_ndim} dims ending in output_size {self.output_size}"
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
        return {
            "name": self.name,
            "input_size": self.input_size,
            "input_kind": "binary" if binary else "real",
            "output_size": self.output_size,
            "target": self.target,
            "target_at": self.target_at,
            "metric": self.metric,
            "splits": {name: split.describe() for name, split in self.splits().items()},
        }


def _check_dtype(name: str, array: np.ndarray, dtype: type) -> None:
    """Raise DataError unless `array` is a numpy array of `dtype`."""
    if not isinstance(array, np.ndarray) or array.dtype != dtype:
        got = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise DataError(f"{name} must be a numpy {np.dtype(dtype).name} array, got {got}")
