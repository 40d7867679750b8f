"""Datasets as padded arrays plus lengths, by name.

Every loader returns a `SequenceDataset` of three `Split`s (see `base`) and takes `data_dir` plus
its own keyword options, so a config can name a dataset and its options and nothing else:

| name | what | source |
|---|---|---|
| `adding` | the adding problem, generated from a seed | Hochreiter & Schmidhuber 1997 |
| `temporal_order` | classify by the order of 2 or 3 far-apart symbols, generated | Hochreiter & Schmidhuber 1997 |
| `copy_memory` | copy symbols back after a delay, generated | Arjovsky et al. 2016 |
| `arithmetic` | sum / difference of two numbers among distractors, generated | Jozefowicz et al. 2015 |
| `xml` | next character of well-nested synthetic tags, generated | Jozefowicz et al. 2015 |
| `jsb_chorales`, `nottingham`, `piano_midi`, `muse_data` | next frame of piano rolls | Boulanger-Lewandowski et al. 2012 |
| `timit`, `iam_online` | framewise labels from the user's licensed copy | Greff et al. 2017 |
| text datasets (`text.TEXT_DATASETS`) | next character / word | see `text` |

`INFO` says, without loading anything, what each dataset predicts, its metric and which files it
needs; `availability` turns that into 'generated', 'local <path>', 'corrupt: <which file and
how to fix it>', 'downloadable' or 'missing: <what to obtain>' (`lstm-variants-data list`). `padding_report` measures how much of a
split's batches would be padding, with and without bucketing by length.

Example:
    >>> from lstm_variants.data import load_dataset
    >>> data = load_dataset("adding", T=20, n_train=8, n_valid=4, n_test=4)
    >>> data.metric, data.train.inputs.shape
    ('mse', (8, 22, 2))
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lstm_variants.config_values import quote_advice, rule_of_type
from lstm_variants.data import cache, licensed, music, text
from lstm_variants.data.adding import adding_problem, solved_fraction
from lstm_variants.data.arithmetic import arithmetic
from lstm_variants.data.base import DataError, SequenceDataset, Split
from lstm_variants.data.cache import resolve_data_dir
from lstm_variants.data.copy_memory import copy_memory
from lstm_variants.data.temporal_order import temporal_order
from lstm_variants.data.xml_task import xml_modelling
from lstm_variants.errors import nearest_hint

DATASETS: dict[str, Callable[..., SequenceDataset]] = {
    "adding": adding_problem,
    "temporal_order": temporal_order,
    "copy_memory": copy_memory,
    "arithmetic": arithmetic,
    "xml": xml_modelling,
    **music.MUSIC_DATASETS,
    "timit": licensed.timit,
    "iam_online": licensed.iam_online,
    **text.TEXT_DATASETS,
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset predicts and needs, known without loading it.

    Attributes:
        target: its `SequenceDataset.target` ('multilabel', 'categorical' or 'regression').
        metric: its `SequenceDataset.metric`, or None where only loading it tells.
        files: the files it reads, relative to the data directory; () when it reads none.
        downloadable: a missing file can be downloaded (the loader's `download` option).
        user_path: it reads a file the user names with its `path` option.
        obtain: what to obtain when files are missing and cannot be downloaded.
        checksum: how its files are verified, in words (None when it reads none).
    """

    target: str
    metric: str | None
    files: tuple[str, ...] = ()
    downloadable: bool = False
    user_path: bool = False
    obtain: str | None = None
    checksum: str | None = None


def _text_info(name: str) -> DatasetInfo:
    """Info for a text dataset, from `text.TEXT_FILES` and the loader's signature."""
    options = inspect.signature(text.TEXT_DATASETS[name]).parameters
    return DatasetInfo(
        target="categorical",
        metric=getattr(text, "TEXT_METRICS", {}).get(name),
        files=tuple(text.TEXT_FILES.get(name, ())),
        downloadable="download" in options,
        user_path="path" in options,
    )


INFO: dict[str, DatasetInfo] = {
    "adding": DatasetInfo("regression", "mse"),
    "temporal_order": DatasetInfo("regression", "mse"),
    "copy_memory": DatasetInfo("categorical", "cross_entropy"),
    "arithmetic": DatasetInfo("categorical", "cross_entropy"),
    "xml": DatasetInfo("categorical", "cross_entropy"),
    **{
        name: DatasetInfo(
            "multilabel",
            "nll_per_step",
            files=(source.filename,),
            downloadable=True,
            checksum=source.checksum,
        )
        for name, source in music.SOURCES.items()
    },
    **{
        name: DatasetInfo(
            "categorical",
            "cross_entropy",
            files=licensed.files(name),
            obtain=f"{licensed.OBTAIN[name]}, exported as {name}/{{train,valid,test}}.npz",
        )
        for name in ("timit", "iam_online")
    },
    **{name: _text_info(name) for name in text.TEXT_DATASETS},
}

__all__ = [
    "DATASETS",
    "INFO",
    "DataError",
    "DatasetInfo",
    "SequenceDataset",
    "Split",
    "availability",
    "loadable_here",
    "check_dataset_options",
    "length_buckets",
    "load_dataset",
    "padding_fraction",
    "padding_report",
    "solved_fraction",
]


def load_dataset(name: str, data_dir: str | None = None, **options) -> SequenceDataset:
    """Load a dataset by its registry name.

    Args:
        name: a key of `DATASETS`.
        data_dir: the directory holding downloaded files (see `cache.resolve_data_dir`);
            generated datasets ignore it.
        **options: the loader's own keyword options, e.g. `T=200` for `adding`.

    Returns:
        The dataset.

    Raises:
        DataError: the name or an option is unknown, or the loader cannot load the data.
    """
    check_dataset_options(name, options)
    loader = DATASETS[name]
    return loader(data_dir=data_dir, **options)


def check_dataset_options(name: str, options: dict) -> None:
    """Raise DataError for an unknown dataset ``name``, or an option it does not have, or of the
    wrong kind."""
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}{nearest_hint(str(name), DATASETS)}; "
            f"valid datasets: {', '.join(sorted(DATASETS))}"
        )
    valid = dataset_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DataError(
            f"dataset {name!r} got unknown option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(valid)}"
        )
    parameters = inspect.signature(DATASETS[name]).parameters
    for key, value in options.items():
        # An option takes the kind of its annotation; its range is the loader's own check.
        rule = rule_of_type(parameters[key].annotation)
        if rule is not None and not rule.allows(value):
            advice = quote_advice(f"dataset.options.{key}", value, rule)
            raise DataError(
                f"dataset.options.{key} of {name!r} must be {rule.describe()}, got {value!r}"
                + (f"; {advice}" if advice else "")
            )


def dataset_options(name: str) -> dict[str, object]:
    """The options of dataset `name` and their defaults (`inspect.Parameter.empty` if none)."""
    parameters = inspect.signature(DATASETS[name]).parameters
    return {key: p.default for key, p in parameters.items() if key != "data_dir"}


def availability(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Whether dataset `name` can be loaded here, without loading it.

    Returns:
        'generated' (reads no file), 'user file (option path)', 'local <path>' (every file
        it needs is in the data directory and matches its sha256; the directory when it needs
        several; '... (not checked yet: ...)' for a file trusted on first use whose first
        load has not yet recorded its sha256, so that a truncated copy does not look checked),
        'corrupt: <which file, and how to fix it>' (a file is there but does not
        match its sha256, or is a directory, `file_problem`: its loader would refuse it),
        'downloadable' (a file is missing, the loader fetches it) or 'missing: <what to
        obtain>'.

    Raises:
        DataError: the data directory is a file (`cache.resolve_data_dir`).
    """
    info = INFO[name]
    if info.user_path and not info.files:
        return "user file (option path)"
    if not info.files:
        return "generated"
    directory = resolve_data_dir(data_dir)
    for file in info.files:
        problem = file_problem(name, directory / file)
        if problem is not None:
            fix = (
                f"delete it and run `lstm-variants-data fetch {name}` to download it again"
                if info.downloadable
                else f"replace it with a good copy (`lstm-variants-data describe {name}` "
                "says where from)"
            )
            return f"corrupt: {problem}; {fix}"
    missing = [file for file in info.files if not (directory / file).is_file()]
    if not missing:
        where = directory / info.files[0] if len(info.files) == 1 else directory
        trusted_on_first_use = (info.checksum or "").startswith("trust on first use")
        if trusted_on_first_use and reference_sha256(name, directory / info.files[0]) is None:
            return f"local {where} (not checked yet: its sha256 is recorded at its first load)"
        return f"local {where}"
    if info.downloadable:
        return "downloadable"
    return f"missing: {info.obtain or ', '.join(missing)} in {directory}"


def published_sha256(name: str, path: Path) -> str | None:
    """The sha256 published for dataset `name`'s file at `path`, or None."""
    return music.SOURCES[name].sha256 if name in music.SOURCES else text.published_sha256(path.name)


def reference_sha256(name: str, path: Path) -> str | None:
    """The sha256 the file at `path` must match: its published one, else the one recorded on
    first use (`<path>.sha256`), else None. Raises DataError for a malformed record."""
    return published_sha256(name, path) or cache.recorded_sha256(path)


def file_problem(name: str, path: Path) -> str | None:
    """Why the loader of dataset `name` would refuse the file at `path` before reading it, or None.

    It must be a readable file matching its published sha256, else the one recorded on first
    use in `<path>.sha256` (`cache`); None when it does, is not there (a download, or the
    missing-file message, is the loader's answer), or has neither sha256 to match.
    """
    published = published_sha256(name, path)
    if not path.exists():
        return None
    if not path.is_file():  # the loaders would not download over it, nor read it
        return f"{path} is a {'directory' if path.is_dir() else 'special file'}, not the data file"
    try:
        expected = reference_sha256(name, path)
        if expected is None:
            return None
        actual = cache.sha256_of(path)
    except DataError as error:  # an unreadable or malformed record
        return str(error)
    except OSError as error:
        return f"cannot read {path} ({error.strerror or error})"
    if actual == expected:
        return None
    against = (
        "its published sha256"
        if published
        else f"the sha256 recorded in {cache.recorded_sha256_path(path)} on first use"
    )
    return f"{path} is there but does not match {against} (truncated or corrupt?)"


def loadable_here(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether dataset ``name`` loads without a download: generated, a user's file, or every
    file already in the data directory (``availability``). A check made before any job (on a
    login node, say) or for records kept loads only such a dataset."""
    # A corrupt file is refused by its loader without a download: loading it says so early.
    return availability(name, data_dir).startswith(
        ("generated", "user file", "local ", "corrupt: ")
    )


def padding_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """The fraction of padded steps when each batch is padded to its longest sequence.

    With batches b of lengths L_i, the fraction is 1 - sum_i L_i / sum_b |b| max_{i in b} L_i.
    """
    valid = sum(int(lengths[batch].sum()) for batch in batches)
    padded = sum(len(batch) * int(lengths[batch].max()) for batch in batches)
    return 1.0 - valid / padded


def length_buckets(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of sequence indices with similar lengths: sorted by length, then cut in order.

    Args:
        lengths: `(N,)` the length of each sequence.
        batch_size: the number of sequences per batch (the last batch may be smaller).

    Returns:
        The index arrays of the batches, shortest sequences first.
    """
    order = np.argsort(lengths, kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def padding_report(split: Split, batch_size: int, seed: int = 0) -> dict[str, float]:
    """How much of a split's batches is padding, three ways.

    Args:
        split: the split.
        batch_size: the number of sequences per batch; at least 1.
        seed: the seed of the random batches.

    Returns:
        A dict with the padding fraction of the whole split padded to its longest sequence
        ('whole_split', what the stored arrays hold), of random batches each padded to its own
        longest ('random_batches', a shuffled epoch), and of batches bucketed by length
        ('bucketed', `length_buckets`).
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    lengths = split.lengths.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(lengths))
    random_batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return {
        "whole_split": padding_fraction(lengths, [np.arange(len(lengths))]),
        "random_batches": padding_fraction(lengths, random_batches),
        "bucketed": padding_fraction(lengths, length_buckets(lengths, batch_size)),
    }
