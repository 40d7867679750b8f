"""Jozefowicz et al. (2015)'s XML-modelling task."""

import re

import numpy as np
import pytest

from lstm_variants.data import DataError, load_dataset
from lstm_variants.data.xml_task import VOCABULARY, decode, xml_modelling

SMALL = dict(length=200, n_train=300, n_valid=5, n_test=5)
LINE = re.compile(r"( *)<(/?)([a-z]+)>")


def test_same_seed_same_data():
    a, b, c = (xml_modelling(**SMALL, seed=s) for s in (2, 2, 3))
    np.testing.assert_array_equal(a.train.inputs, b.train.inputs)
    assert not np.array_equal(a.train.inputs, c.train.inputs)


@pytest.mark.parametrize("max_depth", [1, 4])
def test_next_character_of_well_nested_indented_tags(max_depth):
    data = xml_modelling(**SMALL, max_depth=max_depth)
    assert data.input_size == data.output_size == len(VOCABULARY)
    assert (data.target, data.target_at, data.metric) == (
        "categorical",
        "every_step",
        "cross_entropy",
    )
    split = data.train
    assert split.inputs.shape == split.targets.shape == (300, 200) and np.all(split.lengths == 200)
    depths = set()
    for x, y in zip(split.inputs, split.targets, strict=True):
        text = decode(x) + decode(y[-1:])
        assert decode(y) == text[1:]  # the target is the next character
        stack = []
        for line in text.split("\n")[:-1]:  # the last line may be cut off
            match = LINE.fullmatch(line)
            assert match, line
            indent, closing, name = match.groups()
            if closing:
                assert stack and stack.pop() == name  # closes the innermost open tag
                assert len(indent) == len(stack)
            else:
                assert len(indent) == len(stack) < max_depth and 2 <= len(name) <= 10
                stack.append(name)
            depths.add(len(stack))
    assert max(depths) == max_depth


def test_a_stack_predicts_every_closing_tag_exactly():
    # The memory part: after '</' the rest of the line is the innermost open tag's name and '>'.
    split = xml_modelling(**SMALL).train
    predictable = predicted = 0
    for x, y in zip(split.inputs, split.targets, strict=True):
        text = decode(x)
        stack, line_start = [], 0
        for t, char in enumerate(text):
            if char == "\n":
                match = LINE.fullmatch(text[line_start:t])
                if match and not match.group(2):
                    stack.append(match.group(3))
                elif match:
                    stack.pop()
                line_start = t + 1
            line = text[line_start : t + 1]
            if "</" in line:
                guess = (stack[-1] + ">\n")[len(line.split("</")[1])]
                predictable += 1
                predicted += VOCABULARY[y[t]] == guess
    assert predictable > 1000 and predicted == predictable


@pytest.mark.parametrize(
    "options, message",
    [
        ({"length": 0}, "length must be at least 1, got 0"),
        ({"max_tag": 1}, "max_tag must be at least 2, got 1"),
        ({"p_open": 1.0}, "p_open must lie in \\(0, 1\\), got 1.0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(DataError, match=message):
        load_dataset("xml", **options)
