"""Token sequences as streams of truncated-BPTT windows, and the dataset type every text loader returns.

A text is one long sequence of token ids. Next-token prediction reads it as inputs `tokens[:-1]`
and targets `tokens[1:]`: step t sees token t and must predict token t + 1. Training on it with
truncated backpropagation through time (Williams & Peng 1990; the layout of Zaremba, Sutskever &
Vinyals 2014, "Recurrent Neural Network Regularization", and of Karpathy's char-rnn) cuts those
`n = len(tokens) - 1` steps into S parallel *streams* and each stream into *windows*:

1. Streams: `m = n // S` steps each; stream s is steps `[s * m, (s + 1) * m)`, contiguous in the
   text. The last `n - S * m` (< S) steps are dropped; `dropped_steps` counts them and
   `TextDataset.describe` reports them per split.
2. Windows: each stream is cut into `W = ceil(m / window)` windows of `T = min(window, m)` steps;
   the last window holds the `m - (W - 1) * T` steps that are left, the same number in every
   stream, zero-padded after them (inputs 0, targets `IGNORE`).
3. Layout: window-major, as `base` defines streams: row `w * S + s` is window w of stream s, so
   rows `[w * S, (w + 1) * S)` are batch w and row s of batch w + 1 continues row s of batch w.
   Concatenating the valid steps of rows s, S + s, 2S + s, ... gives stream s back exactly.

`stream_windows` is that layout as one pure function; every text loader goes through it.

Example:
    >>> import numpy as np
    >>> split = stream_windows(np.arange(8), streams=2, window=2)
    >>> split.inputs.tolist()  # steps 0..6; stream 0 = 0 1 2, stream 1 = 3 4 5; step 6 dropped
    [[0, 1], [3, 4], [2, 0], [5, 0]]
    >>> split.targets.tolist(), split.lengths.tolist()
    ([[1, 2], [4, 5], [3, -1], [6, -1]], [2, 2, 1, 1])
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from lstm_variants.data.base import IGNORE, DataError, SequenceDataset, Split

SPLITS = ("train", "valid", "test")
DEFAULT_STREAMS = 32
DEFAULT_WINDOW = 100


@dataclasses.dataclass(frozen=True, eq=False)
class TextDataset(SequenceDataset):
    """A `SequenceDataset` of token streams that also knows its vocabulary.

    Attributes (beyond `SequenceDataset`'s):
        vocabulary: the symbol of each token id, `vocabulary[i]` for id i (default empty).
        separator: what `decode` puts between symbols: `''` for characters, `' '` for words.
        window: the truncated-BPTT window length the streams were cut with (default 0).
        dropped_steps: per split, the next-token steps dropped so that S streams have equal
            length (default empty).
        source: where the text came from, e.g. a file path (default empty).
    """

    vocabulary: tuple[str, ...] = ()
    separator: str = ""
    window: int = 0
    dropped_steps: dict = dataclasses.field(default_factory=dict)
    source: str = ""

    def decode(self, ids) -> str:
        """The text of a sequence of token ids (e.g. a sample); `IGNORE` ids are skipped.

        Args:
            ids: integer token ids in `[0, len(vocabulary))`, or `IGNORE`.

        Returns:
            The symbols joined by `separator`.
        """
        return self.separator.join(self.vocabulary[i] for i in np.asarray(ids).ravel() if i >= 0)

    def describe(self) -> dict:
        """`SequenceDataset.describe()` plus the vocabulary size, window, source and, per split,
        the steps dropped to make the streams equal (see the module docstring)."""
        summary = super().describe()
        summary.update(vocabulary_size=len(self.vocabulary), window=self.window, source=self.source)
        for name, split_summary in summary["splits"].items():
            split_summary["dropped_steps"] = self.dropped_steps.get(name, 0)
        return summary


def check_stream_options(name: str, streams: int, window: int) -> None:
    """Raise DataError unless `streams` and `window` are positive integers."""
    for option, value in (("streams", streams), ("window", window)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise DataError(f"{name}: {option} must be a positive integer, got {value!r}")


def dropped_steps(num_tokens: int, streams: int) -> int:
    """The next-token steps `stream_windows` drops: `(num_tokens - 1) mod streams`."""
    return max(num_tokens - 1, 0) % streams


def stream_windows(tokens, streams: int, window: int, where: str = "text") -> Split:
    """Cut a token sequence into S streams of next-token windows, stored window-major.

    Args:
        tokens: a 1-D sequence of `n + 1` integer token ids.
        streams: S, the number of parallel streams.
        window: the truncated-BPTT window length (the last window may be shorter).
        where: names the text in error messages, e.g. `'tiny_shakespeare: valid'`.

    Returns:
        A Split with `W * S` rows of `T = min(window, n // S)` steps: row `w * S + s` holds steps
        `[s * m + w * T, s * m + (w + 1) * T)` of the text (m = n // S), inputs int32 token ids
        (0 after the length), targets the next token ids (`IGNORE` after the length), and
        lengths T except for the rows of the last window, which share one shorter length.

    Raises:
        DataError: `tokens` is not 1-D, has fewer than 2 tokens (no step at all), or fewer than
            `streams + 1` (no stream would get a step).
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise DataError(f"{where}: tokens must be a 1-D sequence, got shape {tokens.shape}")
    steps = len(tokens) - 1
    per_stream = steps // streams if steps > 0 else 0
    if steps < 1:  # no number of streams gives such a text a step
        raise DataError(
            f"{where}: {len(tokens)} token(s) give no next-token step; the text is empty or "
            "too short: check its file"
        )
    if per_stream < 1:
        raise DataError(
            f"{where}: {len(tokens)} tokens give {max(steps, 0)} next-token steps, fewer than "
            f"streams={streams}; lower `streams` (or use a longer text)"
        )
    used = streams * per_stream
    inputs = tokens[:used].reshape(streams, per_stream)
    targets = tokens[1 : used + 1].reshape(streams, per_stream)
    length = min(window, per_stream)
    num_windows = math.ceil(per_stream / length)
    pad = num_windows * length - per_stream
    inputs = np.pad(inputs, ((0, 0), (0, pad)), constant_values=0)
    targets = np.pad(targets, ((0, 0), (0, pad)), constant_values=IGNORE)

    def window_major(array: np.ndarray) -> np.ndarray:
        # (S, W * T) -> (S, W, T) -> (W, S, T) -> (W * S, T): row w * S + s = window w of s.
        windows = array.reshape(streams, num_windows, length).transpose(1, 0, 2)
        return np.ascontiguousarray(windows.reshape(num_windows * streams, length), np.int32)

    lengths = np.full((num_windows, streams), length, np.int32)
    lengths[-1] = per_stream - (num_windows - 1) * length
    return Split(
        inputs=window_major(inputs), targets=window_major(targets), lengths=lengths.reshape(-1)
    )


SPLIT_KINDS = ("tail", "blocks")
BLOCKS_PER_GROUP = 100  # split='blocks': shares are counted in groups of this many blocks


def split_tokens(
    ids: np.ndarray, valid_fraction: float, test_fraction: float, split: str, block: int
) -> dict[str, np.ndarray]:
    """A text's token ids cut into train / valid / test.

    'tail' (`fraction_split`): the end of the text is test, the part before it valid, the rest
    train. 'blocks' (`block_split`): the same shares, taken as blocks from every part of the text.

    Raises:
        DataError: an unknown `split`, invalid fractions or block length, or a split left
            without a next-token step (fewer than 2 symbols), naming the option to change.
    """
    if split == "tail":
        train_end, valid_end = fraction_split(len(ids), valid_fraction, test_fraction)
        parts = {
            "train": ids[:train_end],
            "valid": ids[train_end:valid_end],
            "test": ids[valid_end:],
        }
    elif split == "blocks":
        which = block_split(len(ids), valid_fraction, test_fraction, block)
        parts = {name: ids[which == code] for code, name in enumerate(("train", "valid", "test"))}
    else:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLIT_KINDS)}")
    fractions = {"valid": valid_fraction, "test": test_fraction}
    for name, part in parts.items():
        if len(part) >= 2:
            continue
        # Not the streams: no number of streams gives a split without text a step.
        if len(ids) < 2 * len(parts):  # nor any fractions or block: each split needs 2 symbols
            raise DataError(
                f"the text has {len(ids)} symbol(s), too few for train, valid and test splits "
                f"of at least 2 symbols each (one next-symbol step); use a longer text"
            )
        if name == "train":
            fix = "lower valid_fraction + test_fraction"
        else:
            fix = f"raise {name}_fraction (now {fractions[name]})"
        if split == "blocks":
            fix += f", lower block (now {block}) or use split=tail"
        raise DataError(
            f"the {name} split gets {len(part)} of the text's {len(ids)} symbols with "
            f"split={split}, too few for one next-symbol step; {fix}"
        )
    return parts


def block_split(
    num_symbols: int, valid_fraction: float, test_fraction: float, block: int
) -> np.ndarray:
    """Which split each symbol belongs to (0 train, 1 valid, 2 test), in interleaved blocks.

    The text is cut into blocks of `block` symbols and the blocks into groups of
    `BLOCKS_PER_GROUP`; in every group the last `round(100 * test_fraction)` blocks are test and
    the `round(100 * valid_fraction)` before them valid. A last, incomplete group (the text's
    length is rarely a multiple of `100 * block`) gets the same shares to the nearest whole block
    (`group_boundaries`), so the splits' shares of the whole text are those of a complete group
    up to half a block each: Tiny Shakespeare's 1,115,394 characters in blocks of 1000 give
    1,004,000 / 56,000 / 55,394, not the 1,005,394 / 55,000 / 55,000 of complete groups alone.
    Valid and test text then comes from the whole work (every play of Tiny Shakespeare, not only
    the last), at the price of a few discontinuities where a split's blocks are joined.

    Raises:
        DataError: a fraction outside [0, 1), fractions that leave no training blocks, a
            fraction that rounds to no block of a group (below about 1 / 100), or `block` < 1.
    """
    fraction_split(num_symbols, valid_fraction, test_fraction)  # the same checks
    if block < 1:
        raise DataError(f"block must be a positive number of symbols, got {block!r}")
    num_test = round(BLOCKS_PER_GROUP * test_fraction)
    num_valid = round(BLOCKS_PER_GROUP * valid_fraction)
    for option, fraction, count in (
        ("valid_fraction", valid_fraction, num_valid),
        ("test_fraction", test_fraction, num_test),
    ):
        # A share is a whole number of blocks in every group, whatever `block` is: a smaller
        # block cannot give such a split any text.
        if count == 0:
            raise DataError(
                f"{option}={fraction!r} rounds to 0 of every {BLOCKS_PER_GROUP} blocks with "
                f"split=blocks (shares are whole blocks per {BLOCKS_PER_GROUP}); raise it to at "
                f"least {1 / BLOCKS_PER_GROUP}, or use split=tail for a smaller share"
            )
    group = BLOCKS_PER_GROUP * block
    last_group_start = num_symbols - num_symbols % group
    full = group_boundaries(group, num_valid, num_test, block)
    last = group_boundaries(num_symbols - last_group_start, num_valid, num_test, block)
    index = np.arange(num_symbols)
    in_last_group = index >= last_group_start
    position = index - np.where(in_last_group, last_group_start, index // group * group)
    which = np.zeros(num_symbols, np.int8)
    which[position >= np.where(in_last_group, last[0], full[0])] = 1
    which[position >= np.where(in_last_group, last[1], full[1])] = 2
    return which


def group_boundaries(size: int, num_valid: int, num_test: int, block: int) -> tuple[int, int]:
    """Where valid and test start in a group of `size` symbols, at block edges.

    With p_v = num_valid / 100 and p_t = num_test / 100 (the shares of a complete group of 100
    blocks), test is the last whole blocks of the group whose length is nearest `p_t * size`
    (the last block may be short), valid the whole blocks just before it whose length is
    nearest `p_v * size`; ties go to the longer share. A complete group (`size = 100 * block`)
    gets exactly `num_test` and `num_valid` blocks.

    Returns:
        `(valid_start, test_start)`, offsets into the group, `valid_start <= test_start <= size`.
    """
    # Block edges and the group's end: a split's text starts at one of them.
    edges = np.append(np.arange(0, size, block, dtype=np.int64), size)
    # |100 * length - size * share| is 100 times the distance from the ideal length, in integers.
    test_start = edges[np.argmin(np.abs(BLOCKS_PER_GROUP * (size - edges) - size * num_test))]
    before = edges[edges <= test_start]
    valid_start = before[
        np.argmin(np.abs(BLOCKS_PER_GROUP * (test_start - before) - size * num_valid))
    ]
    return int(valid_start), int(test_start)


def fraction_split(num_symbols: int, valid_fraction: float, test_fraction: float) -> tuple:
    """Where a text is cut into train / valid / test: the last fractions are valid, then test.

    Args:
        num_symbols: the length N of the text.
        valid_fraction: the share of the text for validation, in [0, 1).
        test_fraction: the share for testing, in [0, 1).

    Returns:
        `(train_end, valid_end)`: train is `[0, train_end)`, valid `[train_end, valid_end)` and
        test `[valid_end, N)`, with `N - valid_end = round(N * test_fraction)` and
        `valid_end - train_end = round(N * valid_fraction)`.

    Raises:
        DataError: a fraction lies outside [0, 1) or the two leave nothing for training.
    """
    for option, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise DataError(f"{option} must lie in [0, 1), got {value!r}")
    if valid_fraction + test_fraction >= 1.0:
        raise DataError(
            f"valid_fraction + test_fraction must be below 1, got {valid_fraction + test_fraction}"
        )
    num_test = round(num_symbols * test_fraction)
    num_valid = round(num_symbols * valid_fraction)
    return num_symbols - num_valid - num_test, num_symbols - num_test


def decode_utf8(data: bytes, source: str | os.PathLike) -> str:
    """The text of UTF-8 bytes, or one DataError naming the source and the first bad byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{source} is not UTF-8 text: byte 0x{data[error.start]:02x} at byte offset "
            f"{error.start} ({error.reason}); convert it to UTF-8 (e.g. iconv -t UTF-8)"
        ) from None


def char_ids(text: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Character ids of a text and its vocabulary.

    Args:
        text: any non-empty string.

    Returns:
        `(ids, vocabulary)`: `vocabulary` the sorted set of the characters of `text` (sorted by
        code point, as Python sorts strings) and `ids` int32 with `vocabulary[ids[i]] == text[i]`.
    """
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    alphabet = np.unique(code_points)
    ids = np.searchsorted(alphabet, code_points).astype(np.int32)
    return ids, tuple(chr(c) for c in alphabet)


def symbol_ids(symbols: list[str], vocabulary: tuple[str, ...], where: str) -> np.ndarray:
    """The int32 ids of `symbols` in `vocabulary`, or DataError naming the first unknown one."""
    index = {symbol: i for i, symbol in enumerate(vocabulary)}
    try:
        return np.fromiter((index[s] for s in symbols), np.int32, count=len(symbols))
    except KeyError as error:
        raise DataError(
            f"{where}: symbol {error.args[0]!r} is not in the vocabulary of the training split"
        ) from None


def text_dataset(
    name: str,
    tokens: dict[str, np.ndarray],
    vocabulary: tuple[str, ...],
    metric: str,
    streams: int,
    window: int,
    separator: str = "",
    source: str = "",
) -> TextDataset:
    """A next-token dataset of streams from the token ids of each split.

    Args:
        name: the dataset's registry name.
        tokens: `{'train': ids, 'valid': ids, 'test': ids}`, 1-D integer ids into `vocabulary`.
        vocabulary: the symbol of each id.
        metric: `'bits_per_char'` or `'perplexity'`.
        streams: S, see `stream_windows`.
        window: the window length, see `stream_windows`.
        separator: see `TextDataset.separator`.
        source: see `TextDataset.source`.

    Returns:
        A categorical `TextDataset` with targets at every step, `streams=S` and
        `input_size = output_size = len(vocabulary)`.

    Raises:
        DataError: an option is not a positive integer or a split is too short for S streams.
    """
    check_stream_options(name, streams, window)
    splits = {
        split: stream_windows(tokens[split], streams, window, f"{name}: {split} split")
        for split in SPLITS
    }
    return TextDataset(
        name=name,
        input_size=len(vocabulary),
        output_size=len(vocabulary),
        target="categorical",
        target_at="every_step",
        metric=metric,
        streams=streams,
        vocabulary=tuple(vocabulary),
        separator=separator,
        window=window,
        dropped_steps={split: dropped_steps(len(tokens[split]), streams) for split in SPLITS},
        source=source,
        **splits,
    )
