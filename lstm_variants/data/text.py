"""Character- and word-level language modelling on long texts, as streams for truncated BPTT.

Every text dataset predicts the next token at every step (`target='categorical'`,
`target_at='every_step'`) and is stored as S parallel streams cut into windows (see
`text_streams`): options `streams` (S, default 32) and `window` (the truncated-BPTT window
length, default 100). The loaders return a `text_streams.TextDataset`, whose `vocabulary[i]` is
the symbol of token id i and whose `decode(ids)` turns ids (e.g. a sample) back into text.

| name | what | split | metric |
|---|---|---|---|
| `tiny_shakespeare` | characters of Karpathy's Tiny Shakespeare (1,115,394 characters, 65 symbols) | first 90 % / next 5 % / last 5 % of the characters | bits per character |
| `text_file` | characters of any UTF-8 text file (option `path`) | the last `test_fraction` is test, the `valid_fraction` before it valid, the rest train (default 5 % and 5 %) | bits per character |
| `ptb_word` | Penn Treebank words, Mikolov's 10k vocabulary (see `ptb`) | the files ptb.{train,valid,test}.txt | perplexity |
| `ptb_char` | Penn Treebank characters (see `ptb`) | the files ptb.char.{train,valid,test}.txt | bits per character |

Character vocabularies (`tiny_shakespeare`, `text_file`) are the sorted set of the characters of
the whole file (all three splits), sorted by code point, so every split's characters have an id.
The split is by characters: with N characters, test is the last `round(0.05 N)`, valid the
`round(0.05 N)` before it and train the rest (Tiny Shakespeare: 1,003,854 / 55,770 / 55,770).
Option `split=blocks` takes the same shares from the whole text instead (blocks of `block`
characters; in every 100 blocks the last 5 are test and the 5 before them valid, and a last,
incomplete group of blocks the same shares to the nearest block, see `text_streams.block_split`;
Tiny Shakespeare: 1,004,000 / 56,000 / 55,394): the held-out text then comes from every play,
not only from the last ones. Each split is its own token sequence: its first character is never
a target.

Tiny Shakespeare: Karpathy (2015), "The Unreasonable Effectiveness of Recurrent Neural Networks",
https://github.com/karpathy/char-rnn (data/tinyshakespeare/input.txt), the works of Shakespeare
concatenated; read from the data directory or downloaded and checked against its sha256.

Example:
    >>> from lstm_variants.data import load_dataset
    >>> data = load_dataset("tiny_shakespeare", streams=32, window=100)
    >>> data.input_size, data.train.inputs.shape, data.decode(data.train.inputs[0, :14])
    (65, (10048, 100), 'First Citizen:')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from lstm_variants.data import cache, ptb
from lstm_variants.data.base import DataError
from lstm_variants.data.text_streams import (
    DEFAULT_STREAMS,
    DEFAULT_WINDOW,
    TextDataset,
    char_ids,
    decode_utf8,
    split_tokens,
    text_dataset,
)

SHAKESPEARE_NAME = "tiny_shakespeare"
SHAKESPEARE_FILENAME = "tinyshakespeare.txt"
SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
VALID_FRACTION = 0.05  # Tiny Shakespeare's fixed split, and text_file's default
TEST_FRACTION = 0.05
BLOCK = 1000  # split='blocks': characters per block


def tiny_shakespeare(
    data_dir: str | os.PathLike | None = None,
    streams: int = DEFAULT_STREAMS,
    window: int = DEFAULT_WINDOW,
    download: bool = True,
    split: str = "tail",
    block: int = BLOCK,
) -> TextDataset:
    """Load Tiny Shakespeare as next-character prediction, split 90 / 5 / 5 % by characters.

    Args:
        data_dir: the directory holding `tinyshakespeare.txt`; default `$LSTM_VARIANTS_DATA_DIR`,
            else the user cache (see `cache.resolve_data_dir`).
        streams: S, the number of parallel streams (default 32).
        window: the truncated-BPTT window length (default 100).
        download: when the file is missing, download it from `SHAKESPEARE_URL` into that
            directory (default True); False never touches the network.
        split: 'tail' (default): valid and test are the last 10 % of the file, i.e. the end of
            the last plays; 'blocks': the same shares in blocks of `block` characters taken from
            the whole file (`text_streams.block_split`).
        block: characters per block of split='blocks' (default 1000).

    Returns:
        A `TextDataset` with the 65-character vocabulary of the file and metric 'bits_per_char';
        with the defaults, train holds 314 windows of 32 streams of 100 steps (10,048 rows).

    Raises:
        DataError: the file is missing, fails its sha256 check, or a split is too short for
            `streams`.
    """
    path = cache.fetch_file(
        SHAKESPEARE_FILENAME,
        SHAKESPEARE_URL,
        SHAKESPEARE_SHA256,
        data_dir,
        download_missing=download,
    )
    return char_file_dataset(
        SHAKESPEARE_NAME,
        path,
        VALID_FRACTION,
        TEST_FRACTION,
        streams=streams,
        window=window,
        split=split,
        block=block,
    )


def text_file(
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    valid_fraction: float = VALID_FRACTION,
    test_fraction: float = TEST_FRACTION,
    streams: int = DEFAULT_STREAMS,
    window: int = DEFAULT_WINDOW,
    split: str = "tail",
    block: int = BLOCK,
) -> TextDataset:
    """Load any UTF-8 text file as next-character prediction.

    Args:
        data_dir: ignored (the file is named by `path`); accepted so that every loader takes it.
        path: the text file (required); `~` is expanded.
        valid_fraction: the share of the characters, just before the test part, used for
            validation (default 0.05).
        test_fraction: the share at the end of the file used for testing (default 0.05).
        streams: S, the number of parallel streams (default 32).
        window: the truncated-BPTT window length (default 100).
        split: 'tail' (default: the fractions at the end of the file) or 'blocks' (the same
            shares in blocks of `block` characters from the whole file).
        block: characters per block of split='blocks' (default 1000).

    Returns:
        A `TextDataset` whose vocabulary is the sorted set of the file's characters, metric
        'bits_per_char'.

    Raises:
        DataError: `path` is missing or not a readable file, the file is not UTF-8, empty, a
            split gets no next-character step from the fractions (or `block`), or a split is
            too short for `streams`.
    """
    del data_dir
    if path is None or str(path) == "":
        raise DataError(
            "text_file: option `path` is required: the UTF-8 text file to model "
            "(lstm-variants: `dataset=text_file dataset.options.path=/path/to/book.txt`; "
            "lstm-variants-data: `-o path=/path/to/book.txt`)"
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"text_file: {file} is not a file (option `path`)")
    return char_file_dataset(
        "text_file",
        file,
        valid_fraction,
        test_fraction,
        streams=streams,
        window=window,
        split=split,
        block=block,
    )


def char_file_dataset(
    name: str,
    path: Path,
    valid_fraction: float,
    test_fraction: float,
    streams: int,
    window: int,
    split: str = "tail",
    block: int = BLOCK,
) -> TextDataset:
    """A character-level dataset of one UTF-8 file, cut by `text_streams.split_tokens`.

    Raises:
        DataError: the file cannot be read, is not UTF-8 or is empty, a fraction is invalid,
            or a split is too short for `streams`.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{name}: cannot read {path} ({error.strerror})") from None
    text = decode_utf8(data, path)
    if not text:
        raise DataError(f"{name}: {path} is empty")
    ids, vocabulary = char_ids(text)
    try:
        tokens = split_tokens(ids, valid_fraction, test_fraction, split, block)
    except DataError as error:
        raise DataError(f"{name}: {error}") from None
    return text_dataset(
        name, tokens, vocabulary, "bits_per_char", streams, window, source=str(path)
    )


def published_sha256(filename: str) -> str | None:
    """The published sha256 of a text dataset's file, read when called (tests pin their own);
    None where none is published (`ptb_char`'s files: trust on first use)."""
    if filename == SHAKESPEARE_FILENAME:
        return SHAKESPEARE_SHA256
    return ptb.WORD_SHA256.get(filename)


# Registered into `lstm_variants.data.DATASETS`: name -> loader(data_dir=None, **options).
TEXT_DATASETS: dict[str, Callable[..., TextDataset]] = {
    "tiny_shakespeare": tiny_shakespeare,
    "text_file": text_file,
    "ptb_word": ptb.ptb_word,
    "ptb_char": ptb.ptb_char,
}
# The files each one needs in the data directory (empty: nothing to find there).
TEXT_FILES: dict[str, tuple[str, ...]] = {
    "tiny_shakespeare": (SHAKESPEARE_FILENAME,),
    "text_file": (),
    "ptb_word": ptb.WORD_FILES,
    "ptb_char": ptb.CHAR_FILES,
}
# The metric each one reports (what `lstm-variants-data list` shows without loading the data).
TEXT_METRICS: dict[str, str] = {
    "tiny_shakespeare": "bits_per_char",
    "text_file": "bits_per_char",
    "ptb_word": "perplexity",
    "ptb_char": "bits_per_char",
}
