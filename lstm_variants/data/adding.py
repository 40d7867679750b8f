"""The adding problem: remember two marked numbers across a long sequence and add them.

Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", Neural Computation 9(8), section 5.4,
experiment 4. Each step carries two inputs: a value drawn uniformly from [-1, 1] and a marker.
Exactly two steps are marked with 1.0: the first chosen uniformly among the first 10 steps, the
second uniformly among the first T/2 - 1 steps, distinct from the first. The marker is -1.0 at
the first and the last step when those are not marked, and 0.0 elsewhere. With X1 and X2 the
values at the two marked steps, the target at the last step is 0.5 + (X1 + X2) / 4.0, in
[0, 1]. If the first step is marked, its value X1 counts as 0 (the value is set to 0). The
lengths are drawn uniformly from [T, T + T/10], so the minimal time lag is about T/2.

Success criterion of the 1997 paper: a sequence is processed correctly when the absolute error
of the output at its last step is below 0.04; the paper trained until the average training error
was below 0.01 and the 2,000 most recent sequences were processed correctly, then reported the
number of wrongly processed sequences of a test set (about 1 in 2,560). `solved_fraction`
computes the fraction processed correctly.

Nothing is downloaded: every split is generated from `seed` with `np.random.default_rng`, each
split from its own child of `np.random.SeedSequence(seed)`, so one split does not change when
another's size does.

Example:
    >>> data = adding_problem(T=20, n_train=8, n_valid=4, n_test=4, seed=0)
    >>> data.train.inputs.shape, data.train.targets.shape
    ((8, 22, 2), (8, 1))
"""

from __future__ import annotations

import os

import numpy as np

from lstm_variants.data.base import DataError, SequenceDataset, Split, generated_splits

NAME = "adding"
FIRST_MARK_WINDOW = 10  # the first marked step is among the first 10
SOLVED_TOLERANCE = 0.04  # the 1997 paper's "processed correctly" threshold


def adding_problem(
    data_dir: str | os.PathLike | None = None,
    T: int = 100,
    n_train: int = 10000,
    n_valid: int = 1000,
    n_test: int = 2000,
    seed: int = 0,
) -> SequenceDataset:
    """Generate the adding problem of Hochreiter & Schmidhuber (1997), experiment 4.

    Args:
        data_dir: ignored (nothing is read); accepted so that every loader takes it.
        T: the minimal sequence length; lengths are uniform in [T, T + T // 10]. At least 11.
        n_train: the number of training sequences.
        n_valid: the number of validation sequences.
        n_test: the number of test sequences (the paper tested on 2,560).
        seed: the seed all three splits derive from.

    Returns:
        A 'regression' dataset with one target per sequence ('last_step'), metric 'mse', inputs
        `(N, T + T // 10, 2)` (value, marker) and targets `(N, 1)`.

    Raises:
        DataError: T is below 11 or a split size is below 1.
    """
    del data_dir
    if T <= FIRST_MARK_WINDOW:  # else the first mark could fall on a sequence's last step
        raise DataError(
            f"adding: T must be at least {FIRST_MARK_WINDOW + 1} (the first mark is among the "
            f"first {FIRST_MARK_WINDOW} steps, before the last), got {T}"
        )
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    splits = generated_splits(
        NAME,
        sizes,
        seed,
        lambda rng, n: adding_split(rng, n, T),
        per_sequence=2 * (T + T // 10) + 1,  # (value, marker) a step, one target
        set_by=f"T={T}",
    )
    return SequenceDataset(
        name=NAME,
        input_size=2,
        output_size=1,
        target="regression",
        target_at="last_step",
        metric="mse",
        success="abs_error",
        tolerance=SOLVED_TOLERANCE,
        **splits,
    )


def adding_split(rng: np.random.Generator, n: int, T: int) -> Split:
    """Draw `n` adding-problem sequences of minimal length `T`.

    Args:
        rng: the generator to draw from.
        n: the number of sequences.
        T: the minimal length.

    Returns:
        A Split with inputs `(n, T + T // 10, 2)` (value, marker), zero after each length,
        targets `(n, 1)` equal to 0.5 + (X1 + X2) / 4 and lengths in [T, T + T // 10].
    """
    max_length = T + T // 10
    rows = np.arange(n)
    lengths = rng.integers(T, max_length, size=n, endpoint=True)
    values = rng.uniform(-1.0, 1.0, size=(n, max_length))
    first = rng.integers(0, FIRST_MARK_WINDOW, size=n)
    # The second mark: uniform over the first T/2 - 1 steps other than the first mark. Draw from
    # one fewer slot when the first mark lies in that window, then skip over it.
    window = T // 2 - 1
    first_in_window = first < window
    second = rng.integers(0, window - first_in_window, size=n)
    second += first_in_window & (second >= first)

    markers = np.zeros((n, max_length))
    markers[rows, 0] = -1.0
    markers[rows, lengths - 1] = -1.0
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    values[markers[:, 0] == 1.0, 0] = 0.0  # a marked first step counts as X1 = 0
    padding = np.arange(max_length) >= lengths[:, None]
    values[padding] = 0.0
    markers[padding] = 0.0

    targets = 0.5 + (values[rows, first] + values[rows, second]) / 4.0
    return Split(
        inputs=np.stack([values, markers], axis=-1).astype(np.float32),
        targets=targets[:, None].astype(np.float32),
        lengths=lengths.astype(np.int32),
    )


def solved_fraction(predictions, targets, tol: float = SOLVED_TOLERANCE) -> float:
    """The fraction of sequences processed correctly by the 1997 paper's criterion.

    Args:
        predictions: the outputs at each sequence's last step, `(N, O)` or `(N,)`.
        targets: the targets, the same shape.
        tol: the largest absolute error that still counts as correct (exclusive); 0.04 in the
            paper.

    Returns:
        The fraction of sequences whose absolute error is below `tol`, on every output for
        `(N, O)` arrays (the temporal-order problem's criterion: every output unit within 0.3).
    """
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    if predictions.shape != targets.shape:
        raise DataError(
            f"predictions have shape {predictions.shape}, targets {targets.shape}; they must match"
        )
    correct = np.abs(predictions - targets) < tol
    return float(np.mean(correct.all(axis=-1) if correct.ndim > 1 else correct))
