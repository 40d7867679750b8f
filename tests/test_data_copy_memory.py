"""The copying-memory problem (Arjovsky et al. 2016's form of the 1997 long-lag memory task)."""

import math

import numpy as np
import pytest

from lstm_variants.data import DataError, load_dataset
from lstm_variants.data.base import IGNORE
from lstm_variants.data.copy_memory import copy_memory

SMALL = dict(delay=30, n_train=3000, n_valid=10, n_test=3000)


def cross_entropy(probabilities, targets):
    """Mean cross entropy (nats) over the steps whose target is not IGNORE."""
    scored = targets != IGNORE
    picked = np.take_along_axis(probabilities, np.maximum(targets, 0)[..., None], -1)[..., 0]
    return float(-np.log(picked[scored]).mean())


def test_same_seed_same_data():
    a, b, c = (copy_memory(**SMALL, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.test.inputs, b.test.inputs)
    np.testing.assert_array_equal(a.train.targets, b.train.targets)
    assert not np.array_equal(a.train.inputs, c.train.inputs)


@pytest.mark.parametrize("delay, length, alphabet", [(30, 10, 8), (1, 3, 2), (5, 1, 4)])
def test_layout_and_target_recomputed_from_the_input(delay, length, alphabet):
    data = copy_memory(
        delay=delay, length=length, alphabet=alphabet, n_train=200, n_valid=1, n_test=1
    )
    assert (data.input_size, data.output_size) == (alphabet + 2, alphabet + 1)
    assert (data.target, data.target_at, data.metric, data.success) == (
        "categorical",
        "every_step",
        "cross_entropy",
        "exact",
    )
    split = data.train
    steps = delay + 2 * length
    assert split.inputs.shape == split.targets.shape == (200, steps)
    assert np.all(split.lengths == steps)
    for x, y in zip(split.inputs, split.targets, strict=True):
        data_symbols = x[:length]
        assert np.all((1 <= data_symbols) & (data_symbols <= alphabet))
        delimiter = [i for i, s in enumerate(x) if s == alphabet + 1]
        assert delimiter == [length + delay - 1]
        assert np.all(np.delete(x[length:], delay - 1) == 0)
        # Targets: the data symbols over the last `length` steps, nothing asked before.
        np.testing.assert_array_equal(y[-length:], data_symbols)
        assert np.all(y[:-length] == IGNORE)


def test_blank_targets_score_every_step():
    data = copy_memory(**SMALL, blank_targets=True)
    y = data.train.targets
    assert np.all(y[:, : 30 + 10] == 0) and np.all(y[:, -10:] >= 1)


@pytest.mark.parametrize("blank_targets", [False, True])
def test_memoryless_baseline_cross_entropy_matches_theory(blank_targets):
    data = copy_memory(**SMALL, blank_targets=blank_targets)
    # The best predictor without memory: per step, the target frequencies of the training set
    # (blank before the recall, uniform over the 8 symbols at the recall steps).
    train, test = data.train.targets, data.test.targets
    frequencies = np.stack(
        [np.bincount(train[:, t][train[:, t] >= 0], minlength=9) for t in range(train.shape[1])]
    ).astype(float)
    frequencies = (frequencies + 1e-9) / (frequencies.sum(-1, keepdims=True) + 9e-9)
    probabilities = np.broadcast_to(frequencies, test.shape + (9,))
    expected = math.log(8) if not blank_targets else 10 * math.log(8) / (30 + 20)
    assert cross_entropy(probabilities, test) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"delay": 0}, "delay must be at least 1, got 0"),
        ({"alphabet": 1}, "alphabet must be at least 2, got 1"),
        ({"n_train": 0}, "n_train must be at least 1, got 0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(DataError, match=message):
        load_dataset("copy_memory", **options)
