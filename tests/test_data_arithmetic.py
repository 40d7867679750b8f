"""Jozefowicz et al. (2015)'s arithmetic task."""

import string

import numpy as np
import pytest
from scipy import stats

from lstm_variants.data import DataError, load_dataset
from lstm_variants.data.arithmetic import arithmetic, decode, vocabulary
from lstm_variants.data.base import IGNORE

SMALL = dict(n_train=1000, n_valid=10, n_test=10)


def independent_answer(question: str) -> int:
    """Strip the distractors and evaluate 'a op b' with Python's own integers."""
    text = question.rstrip("=")
    text = "".join(c for c in text if c not in string.ascii_lowercase)
    # 'a op b' where a and b may carry a leading '-': find the operator after the first digit.
    first_digit = next(i for i, c in enumerate(text) if c.isdigit())
    operator = next(i for i in range(first_digit, len(text)) if text[i] in "+-")
    a, b = int(text[:operator]), int(text[operator + 1 :])
    return a + b if text[operator] == "+" else a - b


def test_same_seed_same_data():
    a, b, c = (arithmetic(**SMALL, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.train.inputs, b.train.inputs)
    np.testing.assert_array_equal(a.train.targets, b.train.targets)
    assert not np.array_equal(a.train.lengths, c.train.lengths) or not np.array_equal(
        a.train.inputs, c.train.inputs
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_digits": 2, "operations": "+", "signed": False, "max_gap": 0},
        {"max_digits": 3, "operations": "-", "distractors": 26, "max_gap": 5},
    ],
)
def test_answer_recomputed_from_the_question(options):
    data = arithmetic(**SMALL, **options)
    assert (data.target, data.target_at, data.metric, data.success) == (
        "categorical",
        "every_step",
        "cross_entropy",
        "exact",
    )
    assert data.input_size == data.output_size == len(vocabulary(options.get("distractors", 10)))
    split = data.train
    operators, lengths = set(), []
    for x, y, n in zip(split.inputs, split.targets, split.lengths, strict=True):
        text, targets = decode(x[:n]), decode(y[:n])
        assert np.all(x[n:] == 0) and np.all(y[n:] == IGNORE)
        question, answer = text[: text.index("=") + 1], text[text.index("=") + 1 :]
        assert answer == str(independent_answer(question))
        # Targets: IGNORE over the question except '=', then the answer and the end mark.
        assert targets == "_" * (len(question) - 1) + answer + "."
        if options.get("max_gap") == 0:
            assert not set(question) & set(string.ascii_lowercase)
        plain = "".join(c for c in question if c not in string.ascii_lowercase)
        digits = [
            len(part) for part in plain.rstrip("=").replace("+", " ").replace("-", " ").split()
        ]
        assert max(digits) <= options.get("max_digits", 8)
        lengths.extend(digits)
        operators |= set(plain) & set(options.get("operations", "+-"))
    assert operators == set(options.get("operations", "+-"))
    assert set(lengths) == set(range(1, options.get("max_digits", 8) + 1))


def test_distractors_are_uniform_over_their_letters():
    split = arithmetic(**SMALL, distractors=4, max_gap=4).train
    text = "".join(decode(x[:n]) for x, n in zip(split.inputs, split.lengths, strict=True))
    counts = np.array([text.count(c) for c in "abcd"])
    assert counts.min() > 0.9 * counts.mean() and "e" not in text


def test_operands_have_each_number_of_digits_equally_often():
    # The number of digits is drawn first, uniform over 1..max_digits, then the value among the
    # numbers of that many digits: short sums are as common as long ones. Drawing 0..10^k - 1
    # for k digits would make 1-digit operands 11% more common and 3-digit ones 10% rarer: with
    # these 6,000 operands a chi-square of about 44 expected (p = 4e-6 on this seed's draws),
    # against p = 0.12 as drawn.
    split = arithmetic(
        n_train=3000, n_valid=1, n_test=1, max_digits=3, operations="+", signed=False, max_gap=0
    ).train
    digits = []
    for x, n in zip(split.inputs, split.lengths, strict=True):
        text = decode(x[:n])
        digits += [len(number) for number in text[: text.index("=")].split("+")]
    counts = [digits.count(k) for k in (1, 2, 3)]
    assert sum(counts) == 6000
    assert stats.chisquare(counts).pvalue > 1e-3


def test_last_digit_of_a_sum_is_uniform_so_chance_is_a_tenth():
    # A predictor that ignores the question gets the units digit right 1/10 of the time.
    split = arithmetic(n_train=4000, n_valid=1, n_test=1, operations="+", signed=False).train
    units = [decode(x[:n])[-1] for x, n in zip(split.inputs, split.lengths, strict=True)]
    frequencies = np.array([units.count(d) for d in "0123456789"]) / len(units)
    assert np.allclose(frequencies, 0.1, atol=0.02)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_digits": 0}, "max_digits must lie in \\[1, 18\\] .*, got 0"),
        ({"max_digits": 19}, "max_digits must lie in \\[1, 18\\] .*, got 19"),
        ({"operations": 1}, "dataset.options.operations of 'arithmetic' must be a string, got 1"),
        ({"operations": "*"}, "operations must be a non-empty subset of '\\+-', got '\\*'"),
        ({"distractors": 27}, "distractors must lie in \\[1, 26\\], got 27"),
        ({"max_gap": -1}, "max_gap must be at least 0, got -1"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(DataError, match=message):
        load_dataset("arithmetic", **options)
