"""A trial's trained parameters in a file beside its record: ``<trial_id>.npz``.

A record holds a trial's numbers; its parameters at the best validation epoch (the ones its test
metrics were computed with) go beside it, one array per parameter, named by its path in the
model's tree. The cells store their parameters under the papers' symbols, so the names read
``params/layer_0/b_f``, ``params/layer_0/R_z``, ``params/readout/kernel``, and
``numpy.load(path)["params/layer_0/b_f"]`` is the learned forget-gate bias.

Why npz and not orbax (which saves the population checkpoints): a study writes one small file per
trial, thousands of them, that a researcher opens with ``numpy.load`` alone, without this package;
an orbax checkpoint is a directory of several files per save. The record keeps the file's sha256,
so a file changed or swapped after training is refused, not silently used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lstm_variants.atomic_files import atomic_file
from lstm_variants.data.cache import sha256_of
from lstm_variants.errors import RecordError
from lstm_variants.records import read_record

SEPARATOR = "/"


def params_path(record_path: Path) -> Path:
    """Where the parameters of the record at ``record_path`` go: ``<trial_id>.npz`` beside it."""
    return Path(record_path).with_suffix(".npz")


def flatten_params(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """{'params/layer_0/W_z': array, ...}: every leaf of a nested dict under its joined path."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    return {SEPARATOR.join(str(key.key) for key in path): np.asarray(leaf) for path, leaf in leaves}


def unflatten_params(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The nested dict ``flatten_params`` came from."""
    nested: dict[str, Any] = {}
    for name, leaf in flat.items():
        *parents, key = name.split(SEPARATOR)
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = leaf
    return nested


def save_params(path: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``params`` to ``path`` (npz) atomically, as records are written (a crash leaves the
    whole file or none); return the record's ``params_file`` entry."""
    path = Path(path)
    with atomic_file(path, "wb") as out:
        np.savez(out, **flatten_params(params))
    return {"name": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size}


def load_params(record_path: Path, record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The trained parameters of the record at ``record_path``, as the nested dict training used.

    Raises:
      RecordError: the record cannot be read, it says no parameters were saved, the file is
        missing, or its sha256 differs from the one the record holds (or the record holds none).
    """
    record_path = Path(record_path)
    if record is None:
        record = read_record(record_path)
    entry = record.get("params_file")
    if not entry:
        if (record.get("metrics") or {}).get("best_valid") is None:
            raise RecordError(
                f"{record_path}: this trial has no trained parameters: it stopped "
                f"({(record.get('metrics') or {}).get('stopped', 'unknown')}) before its first "
                "validation"
            )
        raise RecordError(
            f"{record_path}: no parameters were saved with this trial (trained with "
            "save_params=false, or before parameters were saved); rerun it with "
            "save_params=true overwrite=true"
        )
    path = record_path.parent / entry["name"]
    if not path.is_file():
        raise RecordError(
            f"{path}: parameter file missing; copy it beside its record, or rerun the trial "
            "with overwrite=true"
        )
    if not isinstance(entry.get("sha256"), str):  # an edited record: nothing to check the file by
        raise RecordError(
            f"{record_path}: its params_file entry holds no sha256 to check {path.name} by; "
            "restore the original record, or rerun the trial with overwrite=true"
        )
    if sha256_of(path) != entry["sha256"]:
        raise RecordError(
            f"{path}: not the parameter file its record was written with (sha256 differs); "
            "restore the original, or rerun the trial with overwrite=true"
        )
    with np.load(path, allow_pickle=False) as arrays:
        return unflatten_params({name: arrays[name] for name in arrays.files})
