"""A rerun skips a recorded trial only if its record was trained on the data its config gives now.

A record keeps the fingerprint of the data it was trained and evaluated on (``data_sha256``,
``SequenceDataset.fingerprint``). If the data changed since (a data file edited or replaced, a
``data_dir`` pointing at another copy), skipping the record would mix results on two versions
of the data in one table without a word. Retraining it would replace a result the user may
still want. So the rerun stops before training, in one line that names a record, the two
fingerprints and the two ways on: ``overwrite=true`` or another output folder.

Records written before ``data_sha256`` existed carry none and are not checked. A dataset that
cannot be loaded here (its files are not on this machine) is not checked either: a rerun that
has nothing to train still rebuilds a finished study's tables without its data.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from lstm_variants.data import DataError, SequenceDataset, load_dataset, loadable_here
from lstm_variants.errors import ConfigError, RecordError
from lstm_variants.records import read_record


def dataset_key(cfg: Mapping[str, Any]) -> str:
    """What decides the data a config trains on: the dataset's name, options and directory."""
    dataset = cfg["dataset"]
    return json.dumps(
        [dataset["name"], dataset.get("options") or {}, cfg.get("data_dir")],
        sort_keys=True,
        default=str,
    )


def config_dataset(cfg: Mapping[str, Any], loaded: dict[str, SequenceDataset]) -> SequenceDataset:
    """The dataset ``cfg`` trains on, loaded once per ``dataset_key`` into ``loaded``."""
    key = dataset_key(cfg)
    if key not in loaded:
        dataset = cfg["dataset"]
        loaded[key] = load_dataset(
            dataset["name"], data_dir=cfg.get("data_dir"), **(dataset.get("options") or {})
        )
    return loaded[key]


def check_recorded_data(
    cfgs: Sequence[Mapping[str, Any]],
    paths: Sequence[Path],
    skipped: Collection[int],
    loaded: dict[str, SequenceDataset],
) -> None:
    """Raise ConfigError if a record to be skipped was trained on other data than its config's.

    Args:
      cfgs, paths: the configs of a run and their record paths.
      skipped: the indices of the configs whose records are kept (recorded, no ``overwrite``).
      loaded: datasets loaded so far, by ``dataset_key``; the ones loaded here are added.
    """
    fingerprints: dict[str, list[tuple[Path, str]]] = {}
    first_config: dict[str, Mapping[str, Any]] = {}
    for index in sorted(skipped):
        try:
            recorded = read_record(paths[index]).get("data_sha256")
        except RecordError:
            continue  # said already; its trial trains again
        if isinstance(recorded, str):
            key = dataset_key(cfgs[index])
            fingerprints.setdefault(key, []).append((paths[index], recorded))
            first_config.setdefault(key, cfgs[index])
    for key, records in fingerprints.items():
        cfg = first_config[key]
        if key not in loaded and not loadable_here(cfg["dataset"]["name"], cfg.get("data_dir")):
            continue  # the data is not here (no download for a check): nothing to compare with
        try:
            now = config_dataset(cfg, loaded).fingerprint()
        except DataError:
            continue  # a data file that does not load: the records stand
        other = [(path, recorded) for path, recorded in records if recorded != now]
        if other:
            path, recorded = other[0]
            name = first_config[key]["dataset"]["name"]
            # The stale records can be many among many more: a way to list them all.
            stale = " ".join(f"-e {sha}" for sha in sorted({sha for _, sha in other}))
            listing = f"grep -l {stale} {path.parent}/*.json"
            raise ConfigError(
                f"{len(other)} of {len(records)} records of {name} were trained on other data "
                f"than it gives now (e.g. {path}: data_sha256 {recorded[:12]}, now {now[:12]}); "
                "the data changed since they were written. To retrain only those, remove them "
                f"and their .npz files (list them with: {listing}); to retrain every trial, "
                "overwrite=true; to keep both, write to another folder (study=<name> for a "
                "sweep, hydra.run.dir=<dir> for a run)"
            )
