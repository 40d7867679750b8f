"""Datasets as padded arrays plus lengths, by name.

Every loader returns a `SequenceDataset` of three `Split`s (see `base`) and takes `data_dir` plus
its own keyword options, so a config can name a dataset and its options and nothing else:

| name | what | source |
|---|---|---|
| `adding` | the adding problem, generated from a seed | Hochreiter & Schmidhuber 1997 |
| `jsb_chorales` | next frame of Bach chorale piano rolls | Boulanger-Lewandowski et al. 2012 |

Example:
    >>> from lstm_variants.data import load_dataset
    >>> data = load_dataset("adding", T=20, n_train=8, n_valid=4, n_test=4)
    >>> data.metric, data.train.inputs.shape
    ('mse', (8, 22, 2))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from lstm_variants.data.adding import adding_problem, solved_fraction
from lstm_variants.data.base import DataError, SequenceDataset, Split
from lstm_variants.data.jsb import jsb_chorales

DATASETS: dict[str, Callable[..., SequenceDataset]] = {
    "adding": adding_problem,
    "jsb_chorales": jsb_chorales,
}

__all__ = [
    "DATASETS",
    "DataError",
    "SequenceDataset",
    "Split",
    "load_dataset",
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
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid datasets: {', '.join(sorted(DATASETS))}")
    loader = DATASETS[name]
    valid = [option for option in inspect.signature(loader).parameters if option != "data_dir"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DataError(
            f"dataset {name!r} got unknown option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(valid)}"
        )
    return loader(data_dir=data_dir, **options)
