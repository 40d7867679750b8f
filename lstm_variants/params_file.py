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

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lstm_variants.errors import RecordError
from lstm_variants.records import atomic_file

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
    return {"name": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size}


def load_params(record_path: Path, record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The trained parameters of the record at ``record_path``, as the nested dict training used.

    Raises:
      RecordError: the record cannot be read, it says no parameters were saved, the file is
        missing, or its sha256 differs from the one the record holds.
    """
    record_path = Path(record_path)
    if record is None:
        record = read_run_record(record_path)
    entry = record.get("params_file")
    if not entry:
        raise RecordError(
            f"{record_path}: no parameters were saved with this trial (trained with "
            "save_params=false, or before parameters were saved); rerun it with overwrite=true"
        )
    path = record_path.parent / entry["name"]
    if not path.is_file():
        raise RecordError(
            f"{path}: parameter file missing; copy it beside its record, or rerun the trial "
            "with overwrite=true"
        )
    if _sha256(path) != entry["sha256"]:
        raise RecordError(
            f"{path}: not the parameter file its record was written with (sha256 differs); "
            "restore the original, or rerun the trial with overwrite=true"
        )
    with np.load(path, allow_pickle=False) as arrays:
        return unflatten_params({name: arrays[name] for name in arrays.files})


def read_run_record(path: Path) -> dict[str, Any]:
    """The record at ``path``, or RecordError in one line if it is missing or not a record."""
    try:
        with open(path) as handle:
            record = json.load(handle)
    except FileNotFoundError:
        raise RecordError(f"{path}: no such record") from None
    except (OSError, ValueError) as error:
        raise RecordError(f"{path}: not a readable record ({error})") from None
    if not isinstance(record, dict) or "config" not in record:
        raise RecordError(f"{path}: not a run record of lstm-variants (it has no 'config')")
    return record


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
