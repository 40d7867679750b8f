"""The adding problem (Hochreiter & Schmidhuber 1997, experiment 4) and the dataset registry."""

import numpy as np
import pytest

from lstm_variants.data import DATASETS, INFO, DataError, load_dataset, solved_fraction
from lstm_variants.data.adding import adding_problem

SMALL = dict(T=20, n_train=300, n_valid=50, n_test=60)


def marks(split):
    """The two marked step indices of each sequence, `(N, 2)`, ascending."""
    rows, steps = np.nonzero(split.inputs[..., 1] == 1.0)
    assert np.array_equal(
        np.bincount(rows, minlength=split.num_sequences), [2] * len(split.lengths)
    )
    return steps.reshape(-1, 2)


def step0_marked_probability(T: int) -> float:
    """P(step 0 is marked): the first mark is there with 1/10; else the second with 1/(slots)."""
    window = T // 2 - 1
    return 0.1 + sum(0.1 / (window - 1 if f < window else window) for f in range(1, 10))


def test_same_seed_same_arrays_different_seed_different():
    a, b, c = (adding_problem(**SMALL, seed=s) for s in (3, 3, 4))
    for name in ("train", "valid", "test"):
        for field in ("inputs", "targets", "lengths"):
            np.testing.assert_array_equal(
                getattr(a.splits()[name], field), getattr(b.splits()[name], field)
            )
        assert not np.array_equal(a.splits()[name].targets, c.splits()[name].targets)
    assert not np.array_equal(a.valid.targets[:50], a.test.targets[:50])  # distinct split seeds


def test_changing_one_split_size_leaves_the_others():
    a = adding_problem(**SMALL)
    b = adding_problem(**{**SMALL, "n_train": 7})
    np.testing.assert_array_equal(a.test.inputs, b.test.inputs)
    np.testing.assert_array_equal(a.valid.targets, b.valid.targets)


def test_shapes_and_metadata():
    data = load_dataset("adding", **SMALL)
    assert (data.input_size, data.output_size) == (2, 1)
    assert (data.target, data.target_at, data.metric) == ("regression", "last_step", "mse")
    assert data.train.inputs.shape == (300, 22, 2) and data.train.targets.shape == (300, 1)
    assert data.test.num_sequences == 60
    assert data.train.inputs.dtype == data.train.targets.dtype == np.float32
    assert data.train.lengths.dtype == np.int32
    assert data.describe()["input_kind"] == "real"


@pytest.mark.parametrize("T", [11, 20, 100])
def test_target_recomputed_from_inputs(T):
    split = adding_problem(T=T, n_train=2000, n_valid=1, n_test=1).train
    rows = np.arange(split.num_sequences)[:, None]
    values = split.inputs[..., 0]
    expected = 0.5 + values[rows, marks(split)].sum(axis=1) / 4.0
    np.testing.assert_allclose(split.targets[:, 0], expected, atol=1e-6)
    assert split.targets.min() >= 0.0 and split.targets.max() <= 1.0


@pytest.mark.parametrize("T", [11, 20, 100])
def test_marker_rules_lengths_and_padding(T):
    split = adding_problem(T=T, n_train=3000, n_valid=1, n_test=1).train
    n, max_length = split.num_sequences, T + T // 10
    window = T // 2 - 1
    lengths = split.lengths
    assert lengths.min() == T and lengths.max() == max_length  # both ends of [T, T + T//10] drawn

    m = marks(split)
    # One mark among the first 10 steps, the other among the first T/2 - 1, distinct.
    assert np.all(((m[:, 0] < 10) & (m[:, 1] < window)) | ((m[:, 1] < 10) & (m[:, 0] < window)))
    assert m.min() == 0 and m.max() == max(9, window - 1)

    markers, values = split.inputs[..., 1], split.inputs[..., 0]
    rows = np.arange(n)
    first_marked = markers[:, 0] == 1.0
    last_marked = markers[rows, lengths - 1] == 1.0
    assert np.all(markers[~first_marked, 0] == -1.0)
    assert np.all(markers[rows[~last_marked], lengths[~last_marked] - 1] == -1.0)
    assert np.all(values[first_marked, 0] == 0.0)  # a marked first step counts as X1 = 0
    steps = np.arange(max_length)
    inside = steps < lengths[:, None]
    ends = (steps == 0) | (steps == lengths[:, None] - 1)
    assert set(np.unique(markers[inside & ~ends])) == {0.0, 1.0}
    assert np.all(split.inputs[~inside] == 0.0)
    assert np.all(np.abs(values[inside]) <= 1.0)
    assert values[inside].min() < -0.99 and values[inside].max() > 0.99


def test_constant_predictor_mse_matches_theory():
    # Target 0.5 + (X1 + X2) / 4 with X ~ U[-1, 1], Var X = 1/3, and one of the two marked values
    # zeroed with probability p (step 0 marked): Var = (1/3 + (1 - p) / 3) / 16 = (2 - p) / 48.
    data = adding_problem(T=100, n_train=10000, n_valid=1, n_test=20000, seed=1)
    p = step0_marked_probability(100)
    assert p == pytest.approx(0.1 + 0.9 / 48)
    assert np.mean(data.test.inputs[:, 0, 1] == 1.0) == pytest.approx(p, abs=0.01)
    mean = data.train.targets.mean()
    mse = float(np.mean((data.test.targets - mean) ** 2))
    assert mse == pytest.approx((2 - p) / 48, rel=0.03)
    assert mse != pytest.approx(2 / 48, rel=0.03)  # would hold if X1 were never zeroed


def test_solved_fraction():
    targets = np.array([[0.1], [0.5], [0.9], [0.3]], np.float32)
    assert solved_fraction(targets, targets) == 1.0
    assert solved_fraction(targets + 0.03, targets) == 1.0
    assert solved_fraction(targets + 0.05, targets) == 0.0
    assert solved_fraction(targets + np.array([[0.0], [0.1], [0.0], [-0.1]]), targets) == 0.5
    assert solved_fraction(targets + 0.05, targets, tol=0.1) == 1.0
    with pytest.raises(DataError, match="must match"):
        solved_fraction(targets[:, 0], targets)


def test_the_first_mark_never_takes_the_end_marker_at_the_shortest_t():
    """The first mark is among the first 10 steps: T = 11 is the shortest T where that is
    always before the last step, whose -1 marker ends the sequence."""
    data = adding_problem(T=11, n_train=2000, n_valid=1, n_test=1, seed=2)
    markers, lengths = data.train.inputs[..., 1], data.train.lengths
    assert (markers[np.arange(len(lengths)), lengths - 1] == -1.0).all()
    assert ((markers == 1.0).sum(axis=1) == 2).all()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"T": 10}, "T must be at least 11 .*, got 10"),
        (  # a typo with a few zeros too many: refused before drawing, not after minutes
            {"T": 10**12},
            "adding: T=1000000000000 with n_train \\+ n_valid \\+ n_test = 13,000 sequences "
            "would build .* elements .*, above the bound of 1,073,741,824 \\(2\\^30\\) for "
            "adding; lower T or the n_\\* sizes",
        ),
        ({"n_valid": 0}, "n_valid must be at least 1, got 0"),
        ({"seed": -1}, "adding: seed must be at least 0, got -1"),
        ({"T": "abc"}, "dataset.options.T of 'adding' must be an integer, got 'abc'"),
        ({"length": 100}, "unknown option\\(s\\) length; valid options: T, n_train"),
    ],
)
def test_bad_options_are_data_errors(options, message):
    with pytest.raises(DataError, match=message):
        load_dataset("adding", **options)


def test_registry():
    expected = {"adding", "temporal_order", "copy_memory", "arithmetic", "xml", "jsb_chorales"}
    expected |= {"nottingham", "piano_midi", "muse_data", "timit", "iam_online"}
    assert expected <= set(DATASETS)
    assert set(DATASETS) == set(INFO)
    with pytest.raises(DataError) as error:
        load_dataset("foo")
    assert str(error.value).startswith("unknown dataset 'foo'; valid datasets: adding, arithmetic")


def test_solved_fraction_needs_every_output_within_tolerance():
    targets = np.eye(4, dtype=np.float32)[[0, 1, 2, 3]]
    predictions = targets.copy()
    predictions[0, 1] = 0.35  # one wrong unit spoils sequence 0
    predictions[1] += 0.25  # every unit off by 0.25 < 0.3: still correct
    assert solved_fraction(predictions, targets, tol=0.3) == 0.75


def test_an_error_of_exactly_the_tolerance_is_not_solved():
    # The 1997 criterion is a strict bound: |error| < tol. Binary fractions make the errors exact.
    targets = np.array([[0.5], [0.5], [0.5]])
    predictions = np.array([[0.75], [0.25], [0.625]])
    assert solved_fraction(predictions, targets, tol=0.25) == pytest.approx(1 / 3)
