"""A rerun skips a recorded trial only if its record was trained on the data its config gives now.

A record keeps the fingerprint of the data it was trained and evaluated on (``data_sha256``,
``SequenceDataset.fingerprint``). If the data changed since (a data file edited or replaced, a
``data_dir`` pointing at another copy), skipping the record would mix results on two versions
of the data in one table without a word. Retraining it would replace a result the user may
still want. So the rerun stops before training, in one line that names a record, the two
fingerprints and the two ways on: ``overwrite=true`` or another output folder. A sweep checks
every record in its study's folder of a dataset it trains before its first job
(``check_study_data``), so that the line comes once, not from each job in turn.

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
from lstm_variants.records import read_record, record_files


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
    kept: Mapping[int, Mapping[str, Any]],
    loaded: dict[str, SequenceDataset],
) -> None:
    """Raise ConfigError if a record to be skipped was trained on other data than its config's.

    Args:
      cfgs, paths: the configs of a run and their record paths.
      kept: the records to be skipped (recorded, no ``overwrite``), by config index, as read.
      loaded: datasets loaded so far, by ``dataset_key``; the ones loaded here are added.
    """
    recorded = [
        (cfgs[index], paths[index], kept[index].get("data_sha256")) for index in sorted(kept)
    ]
    _check_fingerprints(recorded, loaded)


def check_study_data(records_dir: Path, datasets: Collection[str], data_dir: str | None) -> None:
    """Raise ConfigError if a record in ``records_dir`` of one of ``datasets`` was trained on
    other data than its dataset and options give now, read from ``data_dir``.

    A sweep checks its study's records this way before any job starts. Each job would otherwise
    stop on its own stale records, one failed job after another, and a job with new trials
    would record them beside stale ones of the same dataset: two versions of the data in one
    table. Where none of ``datasets`` loads here, no record is read.
    """
    names = {name for name in datasets if loadable_here(name, data_dir)}
    if not names or not Path(records_dir).is_dir():
        return
    recorded = []
    for path in record_files(Path(records_dir)):
        try:
            record = read_record(path)
        except RecordError:
            continue  # the job that meets it says so, and trains its trial again
        dataset = record["config"].get("dataset")
        if isinstance(dataset, Mapping) and dataset.get("name") in names:
            cfg = {"dataset": dataset, "data_dir": data_dir}
            recorded.append((cfg, path, record.get("data_sha256")))
    _check_fingerprints(recorded, {})


def _check_fingerprints(
    recorded: Sequence[tuple[Mapping[str, Any], Path, Any]], loaded: dict[str, SequenceDataset]
) -> None:
    """Raise ConfigError if a (config, record path, recorded ``data_sha256``) names other data
    than the config loads now; records without a fingerprint pass."""
    fingerprints: dict[str, list[tuple[Path, str]]] = {}
    first_config: dict[str, Mapping[str, Any]] = {}
    for cfg, path, fingerprint in recorded:
        if isinstance(fingerprint, str):
            key = dataset_key(cfg)
            fingerprints.setdefault(key, []).append((path, fingerprint))
            first_config.setdefault(key, cfg)
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
            name = cfg["dataset"]["name"]
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
