"""Generated datasets refuse an absurd size before drawing anything, in one line.

A length or size with a few zeros too many (`xml length=1000000000`) used to run for minutes in
Python loops, or allocate terabytes, before a MemoryError; now each generator bounds the
elements it would build, computed from its options (`base.generated_splits`).
"""

import importlib

import numpy as np
import pytest

from lstm_variants.data import DataError, load_dataset
from lstm_variants.data.base import MAX_ELEMENTS, MAX_PYTHON_ELEMENTS, Split, generated_splits

# The modules by name: `lstm_variants.data.temporal_order` (an attribute) is the loader function.
adding, arithmetic, copy_memory, temporal_order, xml_task = (
    importlib.import_module(f"lstm_variants.data.{name}")
    for name in ("adding", "arithmetic", "copy_memory", "temporal_order", "xml_task")
)

# Each generator's drawing function, which must not run for a refused size.
DRAWS = {
    "adding": (adding, "adding_split"),
    "temporal_order": (temporal_order, "temporal_order_split"),
    "copy_memory": (copy_memory, "copy_split"),
    "arithmetic": (arithmetic, "question_and_answer"),
    "xml": (xml_task, "document"),
}


@pytest.fixture
def never_draw(monkeypatch):
    """Make every generator's drawing function fail the test if it is called."""

    def fail(*args, **kwargs):
        raise AssertionError("drew sequences before checking the size")

    for module, function in DRAWS.values():
        monkeypatch.setattr(module, function, fail)


@pytest.mark.parametrize(
    "name, options, lower",
    [
        ("xml", {"length": 10**9}, "length or max_depth or max_tag"),
        ("xml", {"max_tag": 10**9}, "length or max_depth or max_tag"),
        ("xml", {"n_train": 10**8}, "length or max_depth or max_tag"),
        ("arithmetic", {"n_train": 10**9}, "max_digits or max_gap"),
        ("arithmetic", {"max_gap": 10**9, "n_train": 10}, "max_digits or max_gap"),
        ("adding", {"T": 10**8}, "T"),
        ("temporal_order", {"T": 10**8}, "T"),
        ("copy_memory", {"delay": 10**9}, "delay or length"),
    ],
)
def test_an_absurd_size_is_one_line_before_anything_is_drawn(never_draw, name, options, lower):
    with pytest.raises(DataError) as error:
        load_dataset(name, **options)
    message = str(error.value)
    assert message.startswith(f"{name}: ") and "\n" not in message
    bound = MAX_PYTHON_ELEMENTS if name in ("xml", "arithmetic") else MAX_ELEMENTS
    assert f"above the bound of {bound:,}" in message
    assert message.endswith(f"; lower {lower} or the n_* sizes")
    assert "with n_train + n_valid + n_test = " in message  # the sizes, and the other options:
    assert all(f"{key}={value}" in message for key, value in options.items() if key != "n_train")


class StopDrawing(Exception):
    """Raised by a drawing function: the size check has passed."""


@pytest.mark.parametrize(
    "name, options",
    [
        # The papers' largest settings, with 100,000 training sequences.
        ("adding", {"T": 1000}),  # Hochreiter & Schmidhuber 1997, experiment 4
        ("temporal_order", {"T": 1000, "variant": "6b"}),
        ("copy_memory", {"delay": 2000}),  # Arjovsky et al. 2016's longest delay
        ("arithmetic", {"max_digits": 8}),  # Jozefowicz et al. 2015
        ("xml", {"length": 100, "max_depth": 10}),
    ],
)
def test_paper_sized_settings_pass_the_bound(monkeypatch, name, options):
    module, function = DRAWS[name]

    def stop(*args, **kwargs):  # reached only once the size is accepted; saves the drawing
        raise StopDrawing

    monkeypatch.setattr(module, function, stop)
    with pytest.raises(StopDrawing):
        load_dataset(name, **options, n_train=100_000, n_valid=1000, n_test=2000)


def test_the_bound_is_inclusive():
    def draw(rng, n):
        return Split(np.zeros((n, 1), np.int32), np.zeros((n, 1), np.int32), np.ones(n, np.int32))

    sizes = {"train": 3, "valid": 1, "test": 1}
    assert generated_splits("toy", sizes, 0, draw, per_sequence=4, set_by="T=2", max_elements=20)
    with pytest.raises(DataError, match="^toy: T=2 with n_train \\+ n_valid \\+ n_test = 5 seq"):
        generated_splits("toy", sizes, 0, draw, per_sequence=4, set_by="T=2", max_elements=19)


@pytest.mark.parametrize("max_digits, signed, max_gap", [(1, True, 0), (3, False, 2), (8, True, 3)])
def test_arithmetic_longest_sequence_bounds_every_drawn_one(max_digits, signed, max_gap):
    data = load_dataset(
        "arithmetic",
        max_digits=max_digits,
        signed=signed,
        max_gap=max_gap,
        n_train=2000,
        n_valid=1,
        n_test=1,
    )
    longest = arithmetic.longest_sequence(max_digits, signed, max_gap)
    assert data.train.lengths.max() <= longest
    if max_gap == 0:  # reached: '-9+-9=' and '-18' (or '-9-9=' ...) take the 9 steps
        assert data.train.lengths.max() == longest


def test_a_split_that_does_not_fit_under_the_bound_is_still_one_line():
    def draw(rng, n):
        raise MemoryError("Unable to allocate 6.00 GiB")

    with pytest.raises(DataError, match="^toy: the train split of 3 sequences does not fit in"):
        generated_splits("toy", {"train": 3}, 0, draw, per_sequence=4, set_by="T=2")
