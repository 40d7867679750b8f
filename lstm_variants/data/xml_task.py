"""Jozefowicz et al.'s XML-modelling task: predict the next character of well-nested tags.

Jozefowicz, Zaremba & Sutskever (2015), "An Empirical Exploration of Recurrent Network
Architectures", ICML, section 3.2: synthetic XML documents of randomly named tags, one tag a
line, indented by its depth; the network predicts every next character. A document:

    <ko>
     <qmlsev>
      <ub>
      </ub>
     </qmlsev>
     <xjrh>
    ...

Generation (our reading of the paper's description): start by opening a tag; then at each step,
when no tag is open, open one; when `max_depth` tags are open, close the innermost; otherwise
open a new tag with probability `p_open` and close the innermost one with probability
1 - `p_open`. A tag name has a length uniform in `min_tag`..`max_tag` and letters uniform over
a..z. Opening at depth d writes `' ' * d + '<name>\\n'`; closing writes `' ' * d + '</name>\\n'`
at the depth the tag was opened at. Every sequence is the first `length` + 1 characters of its
own document: input characters 0..length-1, target characters 1..length (next character,
'categorical' every step, metric 'cross_entropy' in nats; bits per character are nats / ln 2).

The closing tags are what makes the task about memory: once '</' is read, the rest of the line
is determined by the innermost open tag, however long ago it was opened, so a model that keeps
the stack of open tags predicts those characters exactly; the names of new tags are random.

Tokens: '\\n', ' ', '/', '<', '>', then a..z. Nothing is downloaded: every split is generated
from `seed`, each from its own child of `np.random.SeedSequence(seed)`.

Example:
    >>> data = xml_modelling(length=40, n_train=8, n_valid=4, n_test=4, seed=0)
    >>> decode(data.train.inputs[0])[:12]
    '<yaitsfdzk>\\n'
"""

from __future__ import annotations

import os
import string

import numpy as np

from lstm_variants.data.base import (
    MAX_PYTHON_ELEMENTS,
    DataError,
    SequenceDataset,
    Split,
    generated_splits,
)

NAME = "xml"
VOCABULARY = "\n /<>" + string.ascii_lowercase


def decode(ids) -> str:
    """The string of a sequence of token ids."""
    return "".join(VOCABULARY[i] for i in ids)


def xml_modelling(
    data_dir: str | os.PathLike | None = None,
    length: int = 100,
    max_depth: int = 4,
    p_open: float = 0.5,
    min_tag: int = 2,
    max_tag: int = 10,
    n_train: int = 5000,
    n_valid: int = 500,
    n_test: int = 1000,
    seed: int = 0,
) -> SequenceDataset:
    """Generate Jozefowicz et al. (2015)'s XML-modelling task.

    Args:
        data_dir: ignored (nothing is read); accepted so that every loader takes it.
        length: the number of steps of every sequence; at least 1.
        max_depth: the most tags open at once; at least 1.
        p_open: the probability of opening a tag when one may be opened or closed, in (0, 1).
        min_tag: the shortest tag name; at least 1.
        max_tag: the longest tag name; at least `min_tag`.
        n_train: the number of training sequences.
        n_valid: the number of validation sequences.
        n_test: the number of test sequences.
        seed: the seed all three splits derive from.

    Returns:
        A 'categorical' dataset with targets at every step, metric 'cross_entropy', token
        inputs and targets `(N, length)` over `VOCABULARY`.

    Raises:
        DataError: an option outside its range.
    """
    del data_dir
    for option, value, low in (
        ("length", length, 1),
        ("max_depth", max_depth, 1),
        ("min_tag", min_tag, 1),
        ("max_tag", max_tag, min_tag),
    ):
        if value < low:
            raise DataError(f"xml: {option} must be at least {low}, got {value}")
    if not 0.0 < p_open < 1.0:
        raise DataError(f"xml: p_open must lie in (0, 1), got {p_open}")
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    ids = {char: i for i, char in enumerate(VOCABULARY)}

    def draw(rng: np.random.Generator, n: int) -> Split:
        texts = [document(rng, length + 1, max_depth, p_open, min_tag, max_tag) for _ in range(n)]
        tokens = np.array([[ids[c] for c in text] for text in texts], np.int32)
        return Split(
            inputs=tokens[:, :-1], targets=tokens[:, 1:], lengths=np.full(n, length, np.int32)
        )

    splits = generated_splits(
        NAME,
        sizes,
        seed,
        draw,
        # An input and a target a step, and the last line drawn past the cut: at most
        # max_depth - 1 spaces, '</', the name, '>' and the newline.
        per_sequence=2 * length + max_depth + max_tag + 3,
        set_by=f"length={length}, max_depth={max_depth}, max_tag={max_tag}",
        max_elements=MAX_PYTHON_ELEMENTS,
    )
    return SequenceDataset(
        name=NAME,
        input_size=len(VOCABULARY),
        output_size=len(VOCABULARY),
        target="categorical",
        target_at="every_step",
        metric="cross_entropy",
        **splits,
    )


def document(
    rng: np.random.Generator, size: int, max_depth: int, p_open: float, min_tag: int, max_tag: int
) -> str:
    """The first `size` characters of one random document (see the module docstring)."""
    lines, stack, total = [], [], 0
    while total < size:
        if not stack or (len(stack) < max_depth and rng.random() < p_open):
            name_length = int(rng.integers(min_tag, max_tag, endpoint=True))
            name = "".join(string.ascii_lowercase[i] for i in rng.integers(0, 26, name_length))
            line = " " * len(stack) + f"<{name}>\n"
            stack.append(name)
        else:
            name = stack.pop()
            line = " " * len(stack) + f"</{name}>\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)[:size]
