"""The temporal-order problem (Hochreiter & Schmidhuber 1997, experiment 6)."""

import numpy as np
import pytest

from lstm_variants.data import DataError, load_dataset, solved_fraction
from lstm_variants.data.temporal_order import SYMBOLS, temporal_order

SMALL = dict(n_train=2000, n_valid=10, n_test=3000)


def symbols(split):
    """The symbol string of each sequence (one-hot decoded, padding dropped)."""
    ids = split.inputs.argmax(-1)
    return ["".join(SYMBOLS[k] for k in row[:n]) for row, n in zip(ids, split.lengths, strict=True)]


def test_same_seed_same_data_different_seed_different():
    a, b, c = (temporal_order(**SMALL, seed=s) for s in (5, 5, 6))
    for name in ("train", "valid", "test"):
        for field in ("inputs", "targets", "lengths"):
            np.testing.assert_array_equal(
                getattr(a.splits()[name], field), getattr(b.splits()[name], field)
            )
    assert not np.array_equal(a.train.inputs, c.train.inputs)


@pytest.mark.parametrize(
    "variant, windows", [("6a", [(10, 20), (50, 60)]), ("6b", [(10, 20), (33, 43), (66, 76)])]
)
def test_layout_and_target_recomputed_from_the_sequence(variant, windows):
    data = load_dataset("temporal_order", variant=variant, **SMALL)
    classes = 2 ** len(windows)
    assert (data.input_size, data.output_size) == (8, classes)
    assert (data.target, data.target_at, data.metric) == ("regression", "last_step", "mse")
    assert (data.success, data.tolerance) == ("abs_error", 0.3)
    split = data.train
    assert split.inputs.shape == (2000, 110, 8) and split.targets.shape == (2000, classes)
    assert split.lengths.min() == 100 and split.lengths.max() == 110
    assert np.all(split.inputs.sum(-1) == (np.arange(110) < split.lengths[:, None]))
    seen = [set() for _ in windows]
    for text, target in zip(symbols(split), split.targets, strict=True):
        assert text[0] == "E" and text[-1] == "B"
        assert set(text[1:-1]) <= set("abcdXY")
        relevant = [i for i, s in enumerate(text) if s in "XY"]
        assert len(relevant) == len(windows)
        for where, (low, high), positions in zip(relevant, windows, seen, strict=True):
            assert low <= where <= high
            positions.add(where)
        # The class: the relevant symbols in order as a binary number, X = 0, Y = 1.
        label = int("".join("1" if text[i] == "Y" else "0" for i in relevant), 2)
        np.testing.assert_array_equal(target, np.eye(classes)[label])
    assert all(
        positions == set(range(low, high + 1))
        for positions, (low, high) in zip(seen, windows, strict=True)
    )


@pytest.mark.parametrize("variant, classes", [("6a", 4), ("6b", 8)])
def test_trivial_baselines_match_theory(variant, classes):
    data = temporal_order(variant=variant, **SMALL)
    targets = data.test.targets
    # Classes are uniform: a guessed (constant) class is right 1/K of the time.
    assert np.mean(targets.argmax(-1) == 0) == pytest.approx(1 / classes, abs=0.02)
    # The best constant output 1/K on every unit: MSE (1/K)(1 - 1/K) per unit, nothing solved.
    constant = np.full_like(targets, 1 / classes)
    mse = float(np.mean((constant - targets) ** 2))
    assert mse == pytest.approx((1 / classes) * (1 - 1 / classes), rel=0.02)
    assert solved_fraction(constant, targets, tol=data.tolerance) == 0.0
    # Reading only the first relevant symbol halves the classes: right half of the time at best.
    first_y = np.array([text[10:21].count("Y") for text in symbols(data.test)])
    guess = np.eye(classes)[first_y * (classes // 2)]
    assert solved_fraction(guess, targets, tol=data.tolerance) == pytest.approx(
        2 / classes, abs=0.03
    )
    # An oracle that reads the relevant symbols solves everything.
    assert solved_fraction(targets + 0.29, targets, tol=data.tolerance) == 1.0


def test_scaled_T_moves_the_windows():
    split = temporal_order(T=20, n_train=500, n_valid=1, n_test=1).train
    assert split.inputs.shape[1] == 22
    for text in symbols(split):
        relevant = [i for i, s in enumerate(text) if s in "XY"]
        assert 2 <= relevant[0] <= 4 and 10 <= relevant[1] <= 12


@pytest.mark.parametrize(
    "options, message",
    [
        ({"variant": "6c"}, "variant must be one of \\['6a', '6b'\\], got '6c'"),
        ({"T": 9}, "T must be at least 10, got 9"),
        ({"n_test": 0}, "n_test must be at least 1, got 0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(DataError, match=message):
        load_dataset("temporal_order", **options)


def test_distractors_are_uniform_over_all_four_symbols():
    # Every step other than E, B and the relevant ones is a, b, c or d with probability 1/4.
    text = "".join(symbols(temporal_order(n_train=200, n_valid=1, n_test=1, seed=0).train))
    counts = np.array([text.count(s) for s in "abcd"])
    assert counts.sum() == len(text) - 200 * 4  # E, B and two relevant symbols per sequence
    np.testing.assert_allclose(counts / counts.sum(), 0.25, atol=0.01)
