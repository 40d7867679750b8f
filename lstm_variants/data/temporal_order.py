"""The temporal-order problem: classify a long sequence by the order of two or three symbols.

Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", Neural Computation 9(8), section 5.6,
experiment 6. Every input is one of eight symbols, represented locally (one-hot over 8 input
units): the distractors a, b, c, d, the relevant symbols X and Y, the trigger B and the start E.
A sequence starts with E, ends with B, and is otherwise made of symbols drawn uniformly from
{a, b, c, d}, except at a few "relevant" positions, each holding X or Y with probability 1/2:

- experiment 6a (`variant='6a'`): two relevant positions, t1 uniform in [10, 20] and t2 uniform
  in [50, 60]; four classes by the order of the two symbols: XX -> Q, XY -> R, YX -> S, YY -> U.
- experiment 6b (`variant='6b'`): three relevant positions, t1 in [10, 20], t2 in [33, 43], t3 in
  [66, 76]; eight classes XXX -> Q, XXY -> R, ..., YYY -> C.

Lengths are uniform in [100, 110]; positions count from 0, where position 0 holds E. With
`T != 100` every range scales with T (the ranges above in percent of T, rounded down), so
`T=100` is the paper's setting. Class k (X = 0, Y = 1, the first relevant symbol the most
significant bit, so Q = 0, R = 1, ...) is the target at the last step, as the paper's output
units saw it: the vector with 1.0 at k and 0.0 elsewhere (4 or 8 outputs, squared error).

Success criterion of the 1997 paper: a sequence is classified correctly when the absolute error
of every output unit at the last step is below 0.3 (`success='abs_error'`, `tolerance=0.3`); the
paper trained until the average training error was below 0.1 and the 2,000 most recent sequences
were classified correctly, and reported the test error. Chance is 1/4 (6a) or 1/8 (6b) of the
sequences for a guessed class, and the best constant output, 1/K on every unit, has mean squared
error (1/K)(1 - 1/K) per unit (3/16 for 6a, 7/64 for 6b) and solves no sequence.

Nothing is downloaded: every split is generated from `seed`, each split from its own child of
`np.random.SeedSequence(seed)`, so one split does not change when another's size does.

Example:
    >>> data = temporal_order(n_train=8, n_valid=4, n_test=4, seed=0)
    >>> data.train.inputs.shape, data.train.targets.shape, data.tolerance
    ((8, 110, 8), (8, 4), 0.3)
"""

from __future__ import annotations

import os

import numpy as np

from lstm_variants.data.base import DataError, SequenceDataset, Split, generated_splits

NAME = "temporal_order"
SYMBOLS = "abcdXYBE"  # input unit k is symbol SYMBOLS[k]
DISTRACTORS = 4  # a, b, c, d
X, Y, TRIGGER, START = 4, 5, 6, 7
# Relevant-position windows of each variant, in percent of T (inclusive bounds).
WINDOWS = {"6a": ((10, 20), (50, 60)), "6b": ((10, 20), (33, 43), (66, 76))}
SOLVED_TOLERANCE = 0.3  # the 1997 paper's "classified correctly" threshold
MIN_T = 10


def temporal_order(
    data_dir: str | os.PathLike | None = None,
    variant: str = "6a",
    T: int = 100,
    n_train: int = 10000,
    n_valid: int = 1000,
    n_test: int = 2000,
    seed: int = 0,
) -> SequenceDataset:
    """Generate the temporal-order problem of Hochreiter & Schmidhuber (1997), experiment 6.

    Args:
        data_dir: ignored (nothing is read); accepted so that every loader takes it.
        variant: `'6a'` (two relevant symbols, 4 classes) or `'6b'` (three, 8 classes).
        T: the minimal length; lengths are uniform in [T, T + T // 10]. At least 10.
        n_train: the number of training sequences.
        n_valid: the number of validation sequences.
        n_test: the number of test sequences.
        seed: the seed all three splits derive from.

    Returns:
        A 'regression' dataset with one target per sequence ('last_step'), metric 'mse',
        success 'abs_error' with tolerance 0.3, inputs `(N, T + T // 10, 8)` one-hot and
        targets `(N, K)` one-hot, K = 4 or 8.

    Raises:
        DataError: an unknown variant, T below 10, or a split size below 1.
    """
    del data_dir
    if variant not in WINDOWS:
        raise DataError(f"temporal_order: variant must be one of {list(WINDOWS)}, got {variant!r}")
    if T < MIN_T:
        raise DataError(f"temporal_order: T must be at least {MIN_T}, got {T}")
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    windows = relevant_windows(variant, T)
    splits = generated_splits(
        NAME,
        sizes,
        seed,
        lambda rng, n: temporal_order_split(rng, n, T, windows),
        per_sequence=len(SYMBOLS) * (T + T // 10) + 2 ** len(windows),  # one-hot steps, target
        set_by=f"T={T}",
    )
    return SequenceDataset(
        name=NAME,
        input_size=len(SYMBOLS),
        output_size=2 ** len(windows),
        target="regression",
        target_at="last_step",
        metric="mse",
        success="abs_error",
        tolerance=SOLVED_TOLERANCE,
        **splits,
    )


def relevant_windows(variant: str, T: int) -> tuple[tuple[int, int], ...]:
    """The inclusive position ranges of the relevant symbols for minimal length T."""
    return tuple((low * T // 100, high * T // 100) for low, high in WINDOWS[variant])


def temporal_order_split(
    rng: np.random.Generator, n: int, T: int, windows: tuple[tuple[int, int], ...]
) -> Split:
    """Draw `n` temporal-order sequences.

    Args:
        rng: the generator to draw from.
        n: the number of sequences.
        T: the minimal length.
        windows: the inclusive position range of each relevant symbol.

    Returns:
        A Split with one-hot inputs `(n, T + T // 10, 8)` (zero after each length), one-hot
        targets `(n, 2 ** len(windows))` and lengths in [T, T + T // 10].
    """
    max_length = T + T // 10
    rows = np.arange(n)
    lengths = rng.integers(T, max_length, size=n, endpoint=True)
    symbols = rng.integers(0, DISTRACTORS, size=(n, max_length))
    symbols[:, 0] = START
    symbols[rows, lengths - 1] = TRIGGER
    classes = np.zeros(n, np.int64)
    for low, high in windows:
        position = rng.integers(low, high, size=n, endpoint=True)
        is_y = rng.integers(0, 2, size=n)
        symbols[rows, position] = X + is_y
        classes = 2 * classes + is_y
    inputs = np.eye(len(SYMBOLS), dtype=np.float32)[symbols]
    inputs[np.arange(max_length) >= lengths[:, None]] = 0.0
    targets = np.eye(2 ** len(windows), dtype=np.float32)[classes]
    return Split(inputs=inputs, targets=targets, lengths=lengths.astype(np.int32))
