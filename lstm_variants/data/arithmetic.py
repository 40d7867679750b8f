"""Jozefowicz et al.'s arithmetic task: read two numbers hidden among distractors, write the result.

Jozefowicz, Zaremba & Sutskever (2015), "An Empirical Exploration of Recurrent Network
Architectures", ICML, section 3.1: the network reads the characters of two numbers (up to 8
digits, positive or negative) and an operator, with a random number of distractor symbols
between successive characters, and then emits the digits of the sum or difference one character
at a time. A question and its answer, with distractors a..z:

    input   3 e 3 6 d 9 - h 1 h 3 9 =  | 3 2 3 0 .
    read    "3369 - 139 = "            | answer 3230, then the end mark '.'

Here, as the paper describes it:

- each operand has a number of digits uniform in 1..`max_digits` and a value uniform among the
  numbers with that many digits (0..9 for one digit); with `signed=True` it is negated with
  probability 1/2 and written with a leading '-';
- the operator is drawn uniformly from `operations` (default '+-': the sum or the difference);
- between any two successive question characters (operand digits, signs, the operator, '=')
  there are `g` distractors, g uniform in 0..`max_gap`, each uniform over `distractors` letters.

The sequence is the question, then the answer fed back as input (teacher forcing), so one
recurrent pass reads the question and predicts every answer character from the ones before it:
the input at step t is character t; the target at the '=' step is the first answer character,
at answer step k the answer character k + 1, and at the last step the end mark '.'. Every
question step has the target IGNORE: only the answer is scored (metric 'cross_entropy' over
answer characters), and a sequence is solved when every answer character is right
(`success='exact'`, the paper's accuracy).

Tokens (inputs and targets share them): digits '0'..'9' are 0..9, then '+', '-', '=', '.', then
the distractor letters. Nothing is downloaded: every split is generated from `seed`, each from
its own child of `np.random.SeedSequence(seed)`.

Example:
    >>> data = arithmetic(max_digits=3, n_train=8, n_valid=4, n_test=4, seed=0)
    >>> n = data.train.lengths[0]
    >>> decode(data.train.inputs[0, :n]), decode(data.train.targets[0, :n])
    ('94egg8aei+c-gg7caa=941', '__________________941.')
"""

from __future__ import annotations

import os
import string

import numpy as np

from lstm_variants.data.base import (
    IGNORE,
    MAX_PYTHON_ELEMENTS,
    DataError,
    SequenceDataset,
    Split,
    generated_splits,
)

NAME = "arithmetic"
SYMBOLS = "0123456789+-=."  # then the distractor letters
END = "."
MAX_DISTRACTORS = len(string.ascii_lowercase)
MAX_DIGITS = 18  # operands are drawn as int64: 10**19 is out of range


def vocabulary(distractors: int) -> str:
    """The characters of the token ids 0, 1, ...: digits, '+-=.', then `distractors` letters."""
    return SYMBOLS + string.ascii_lowercase[:distractors]


def decode(ids, distractors: int = MAX_DISTRACTORS) -> str:
    """The string of a sequence of token ids (IGNORE shows as '_')."""
    chars = vocabulary(distractors)
    return "".join("_" if i == IGNORE else chars[i] for i in ids)


def arithmetic(
    data_dir: str | os.PathLike | None = None,
    max_digits: int = 8,
    operations: str = "+-",
    signed: bool = True,
    max_gap: int = 3,
    distractors: int = 10,
    n_train: int = 10000,
    n_valid: int = 1000,
    n_test: int = 2000,
    seed: int = 0,
) -> SequenceDataset:
    """Generate Jozefowicz et al. (2015)'s arithmetic task.

    Args:
        data_dir: ignored (nothing is read); accepted so that every loader takes it.
        max_digits: the most digits of an operand (the paper: 8); 1 to 18.
        operations: the operators to draw from, a non-empty subset of '+-'.
        signed: operands may be negative (written with a leading '-').
        max_gap: the most distractors between two successive question characters; 0 for none.
        distractors: the number of distinct distractor letters (a, b, ...), 1..26.
        n_train: the number of training sequences.
        n_valid: the number of validation sequences.
        n_test: the number of test sequences.
        seed: the seed all three splits derive from.

    Returns:
        A 'categorical' dataset with targets at every step ('IGNORE' on the question), metric
        'cross_entropy', success 'exact' and token inputs over `vocabulary(distractors)`.

    Raises:
        DataError: an option outside its range.
    """
    del data_dir
    if not 1 <= max_digits <= MAX_DIGITS:
        raise DataError(
            f"arithmetic: max_digits must lie in [1, {MAX_DIGITS}] (operands are drawn as 64-bit "
            f"integers), got {max_digits}"
        )
    if not operations or set(operations) - set("+-"):
        raise DataError(
            f"arithmetic: operations must be a non-empty subset of '+-', got {operations!r}"
        )
    if max_gap < 0:
        raise DataError(f"arithmetic: max_gap must be at least 0, got {max_gap}")
    if not 1 <= distractors <= MAX_DISTRACTORS:
        raise DataError(
            f"arithmetic: distractors must lie in [1, {MAX_DISTRACTORS}], got {distractors}"
        )
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}

    def draw(rng: np.random.Generator, n: int) -> Split:
        pairs = [
            question_and_answer(rng, max_digits, operations, signed, max_gap, distractors)
            for _ in range(n)
        ]
        return answer_split(pairs, distractors)

    splits = generated_splits(
        NAME,
        sizes,
        seed,
        draw,
        per_sequence=2 * longest_sequence(max_digits, signed, max_gap),  # inputs and targets
        set_by=f"max_digits={max_digits}, max_gap={max_gap}",
        max_elements=MAX_PYTHON_ELEMENTS,
    )
    size = len(vocabulary(distractors))
    return SequenceDataset(
        name=NAME,
        input_size=size,
        output_size=size,
        target="categorical",
        target_at="every_step",
        metric="cross_entropy",
        success="exact",
        **splits,
    )


def longest_sequence(max_digits: int, signed: bool, max_gap: int) -> int:
    """The most steps a sequence can have: a question of q = 2 (max_digits + signed) + 2
    characters (two operands with their signs, the operator, '='), max_gap distractors between
    each two of them, and an answer of at most max_digits + 1 digits and a sign."""
    question = 2 * (max_digits + int(signed)) + 2
    return question + (question - 1) * max_gap + max_digits + 2


def operand(rng: np.random.Generator, max_digits: int, signed: bool) -> int:
    """A number with 1..max_digits digits (count uniform, then value uniform), maybe negated."""
    digits = int(rng.integers(1, max_digits, endpoint=True))
    low = 0 if digits == 1 else 10 ** (digits - 1)
    value = int(rng.integers(low, 10**digits))
    return -value if signed and rng.integers(0, 2) else value


def question_and_answer(
    rng: np.random.Generator,
    max_digits: int,
    operations: str,
    signed: bool,
    max_gap: int,
    distractors: int,
) -> tuple[str, str]:
    """One question with distractors, e.g. `'3e36d9-h1h39='`, and its answer, e.g. `'3230'`."""
    a, b = operand(rng, max_digits, signed), operand(rng, max_digits, signed)
    operator = operations[int(rng.integers(0, len(operations)))]
    answer = a + b if operator == "+" else a - b
    letters = string.ascii_lowercase[:distractors]
    pieces = []
    for i, char in enumerate(f"{a}{operator}{b}="):
        if i:
            gap = int(rng.integers(0, max_gap, endpoint=True))
            pieces.extend(letters[j] for j in rng.integers(0, distractors, size=gap))
        pieces.append(char)
    return "".join(pieces), str(answer)


def answer_split(pairs: list[tuple[str, str]], distractors: int) -> Split:
    """Pad (question, answer) pairs into a split scored on the answer only.

    Returns:
        A Split whose sequence i has input `question + answer` and target IGNORE over the
        question except its last step ('='), then `answer + '.'`.
    """
    ids = {char: i for i, char in enumerate(vocabulary(distractors))}
    lengths = np.array([len(q) + len(a) for q, a in pairs], np.int32)
    inputs = np.zeros((len(pairs), int(lengths.max())), np.int32)
    targets = np.full(inputs.shape, IGNORE, np.int32)
    for i, (question, answer) in enumerate(pairs):
        inputs[i, : lengths[i]] = [ids[c] for c in question + answer]
        targets[i, len(question) - 1 : lengths[i]] = [ids[c] for c in answer + END]
    return Split(inputs=inputs, targets=targets, lengths=lengths)
