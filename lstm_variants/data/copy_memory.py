"""The copying-memory problem: read a few symbols, wait through a delay, then write them back.

The long-time-lag memory task of Hochreiter & Schmidhuber (1997) in the form of Arjovsky, Shah &
Bengio (2016), "Unitary Evolution Recurrent Neural Networks", ICML, section 4.1. With an
alphabet of K data symbols (K = 8 in the paper), L symbols to copy (L = 10) and a delay D (the
paper's T), every sequence has length D + 2L and uses K + 2 input tokens: 0 is the blank,
1..K are data symbols and K + 1 is the delimiter ("go"):

    input   s_1 .. s_L   0 .. 0 (D - 1 blanks)   K+1   0 .. 0 (L blanks)
    target  -- nothing asked: D + L steps --------------   s_1 .. s_L

with s_i uniform over 1..K. The model must output s_1 .. s_L over the last L steps, so it must
hold them for D + L steps. The targets are class ids over the K + 1 outputs (blank and data).

Arjovsky et al. score every step: the target is the blank (0) for the first D + L steps
(`blank_targets=True`). By default only the L recall steps have a target and the rest are
IGNORE (`blank_targets=False`), so the metric measures memory alone. A memoryless baseline
(blank where nothing is asked, uniform over the K symbols at the recall steps) has cross
entropy ln K per scored step by default (ln 8 = 2.079 nats), and L ln K / (D + 2L) with blank
targets (Arjovsky's baseline, 10 ln 8 / (T + 20)). A sequence is solved when the argmax is right
at every scored step (`success='exact'`): the L recall steps, and with `blank_targets=True` the
blank steps before them too.

Nothing is downloaded: every split is generated from `seed`, each split from its own child of
`np.random.SeedSequence(seed)`.

Example:
    >>> data = copy_memory(delay=20, n_train=8, n_valid=4, n_test=4)
    >>> data.train.inputs.shape, data.train.targets.shape, data.success
    ((8, 40), (8, 40), 'exact')
"""

from __future__ import annotations

import os

import numpy as np

from lstm_variants.data.base import IGNORE, DataError, SequenceDataset, Split, generated_splits

NAME = "copy_memory"
BLANK = 0


def copy_memory(
    data_dir: str | os.PathLike | None = None,
    delay: int = 100,
    length: int = 10,
    alphabet: int = 8,
    blank_targets: bool = False,
    n_train: int = 10000,
    n_valid: int = 1000,
    n_test: int = 2000,
    seed: int = 0,
) -> SequenceDataset:
    """Generate the copying-memory problem (Arjovsky et al. 2016's form).

    Args:
        data_dir: ignored (nothing is read); accepted so that every loader takes it.
        delay: D, the number of steps from the last data symbol to the delimiter (D - 1 blanks
            between them; the paper's T); at least 1.
        length: L, the number of symbols to copy; at least 1.
        alphabet: K, the number of data symbols; at least 2.
        blank_targets: score the blank before the recall (Arjovsky's loss over all steps)
            instead of marking those steps IGNORE.
        n_train: the number of training sequences.
        n_valid: the number of validation sequences.
        n_test: the number of test sequences.
        seed: the seed all three splits derive from.

    Returns:
        A 'categorical' dataset with targets at every step, metric 'cross_entropy', success
        'exact', token inputs `(N, D + 2L)` in [0, K + 2) and targets `(N, D + 2L)` in
        [0, K + 1) or IGNORE.

    Raises:
        DataError: a size below its minimum.
    """
    del data_dir
    for option, value, low in (
        ("delay", delay, 1),
        ("length", length, 1),
        ("alphabet", alphabet, 2),
    ):
        if value < low:
            raise DataError(f"copy_memory: {option} must be at least {low}, got {value}")
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    splits = generated_splits(
        NAME,
        sizes,
        seed,
        lambda rng, n: copy_split(rng, n, delay, length, alphabet, blank_targets),
        per_sequence=2 * (delay + 2 * length),  # an input and a target a step
        set_by=f"delay={delay}, length={length}",
    )
    return SequenceDataset(
        name=NAME,
        input_size=alphabet + 2,
        output_size=alphabet + 1,
        target="categorical",
        target_at="every_step",
        metric="cross_entropy",
        success="exact",
        **splits,
    )


def copy_split(
    rng: np.random.Generator, n: int, delay: int, length: int, alphabet: int, blank_targets: bool
) -> Split:
    """Draw `n` copying-memory sequences; see the module docstring for the layout.

    Returns:
        A Split of token inputs and categorical targets, both `(n, delay + 2 * length)`, every
        sequence of full length.
    """
    steps = delay + 2 * length
    data = rng.integers(1, alphabet, size=(n, length), endpoint=True)
    inputs = np.full((n, steps), BLANK, np.int32)
    inputs[:, :length] = data
    inputs[:, length + delay - 1] = alphabet + 1  # the delimiter
    targets = np.full((n, steps), BLANK if blank_targets else IGNORE, np.int32)
    targets[:, delay + length :] = data
    return Split(inputs=inputs, targets=targets, lengths=np.full(n, steps, np.int32))
