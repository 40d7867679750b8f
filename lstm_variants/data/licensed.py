"""Greff et al.'s licensed datasets, TIMIT and IAM Online, from the user's own array files.

Greff, Srivastava, Koutnik, Steunebrink & Schmidhuber (2017), "LSTM: A Search Space Odyssey",
section 4, use two corpora that cannot be redistributed:

- TIMIT (Garofolo et al. 1993, LDC93S1, https://catalog.ldc.upenn.edu/LDC93S1): framewise
  phoneme classification. Each 10 ms frame of an utterance (Greff et al.: 12 MFCCs plus energy,
  with first and second derivatives, 39 inputs) is labelled with one of the 61 TIMIT phones; a
  softmax over 61 classes at every step, scored here by the cross entropy per frame (nats).
  Greff et al. report the framewise classification error (the fraction of frames whose argmax
  is wrong), which is not yet one of the metrics `base.METRICS` knows; a whole-utterance
  criterion (`success='exact'`) would be near zero and say little, so none is set.
- IAM Online (Liwicki & Bunke 2005, https://fki.tic.heia-fr.ch/databases/iam-on-line-handwriting-database):
  handwritten text lines as pen trajectories, labelled with their characters. Greff et al.
  trained with Connectionist Temporal Classification (CTC), which needs only the character
  sequence of a line. CTC IS NOT IMPLEMENTED in this harness: `iam_online` trains framewise,
  and needs a label for every frame (e.g. from a forced alignment), or IGNORE (-1) for frames
  without one. Its results are therefore not comparable with Greff et al.'s character error.

Neither is downloaded. Export your copy, with your own preprocessing, to one `.npz` per split:

    <data_dir>/timit/train.npz, valid.npz, test.npz
    <data_dir>/iam_online/train.npz, valid.npz, test.npz

each holding (numpy arrays, no pickled objects: files are read with `allow_pickle=False`):

    inputs   (F, D) float   the frames of all N sequences, one after another (F = sum of lengths)
    targets  (F,)   int     the class of every frame, in [0, num_classes), or -1 for none
    lengths  (N,)   int     the number of frames of each sequence, each at least 1

or the same padded: `inputs (N, T, D)`, `targets (N, T)`, `lengths (N,)`. An optional scalar
`num_classes` in a file overrides the loader's option. Write one with e.g.
`np.savez(path, inputs=np.concatenate(frames), targets=np.concatenate(labels),
lengths=[len(f) for f in frames])`.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from lstm_variants.data import cache
from lstm_variants.data.base import IGNORE, DataError, SequenceDataset, Split

SPLITS = ("train", "valid", "test")
TIMIT_CLASSES = 61
OBTAIN = {
    "timit": "TIMIT (LDC93S1, https://catalog.ldc.upenn.edu/LDC93S1)",
    "iam_online": "IAM On-Line (https://fki.tic.heia-fr.ch/databases/iam-on-line-handwriting-database)",
}


def files(name: str) -> tuple[str, ...]:
    """The files `name` needs, relative to the data directory."""
    return tuple(f"{name}/{split}.npz" for split in SPLITS)


def missing_message(name: str, directory: Path) -> str:
    """One line: what to obtain and where to put it."""
    return (
        f"{name}: {directory / name}/{{train,valid,test}}.npz not found; {name} is licensed: "
        f"obtain {OBTAIN[name]}, export framewise features and labels in the format of "
        f"lstm_variants.data.licensed, and put them there (or set {cache.DATA_DIR_ENV})"
    )


def timit(
    data_dir: str | os.PathLike | None = None, num_classes: int = TIMIT_CLASSES
) -> SequenceDataset:
    """TIMIT framewise phoneme classification from the user's `.npz` export.

    Args:
        data_dir: the directory holding `timit/{train,valid,test}.npz`; default
            `$LSTM_VARIANTS_DATA_DIR`, else the user cache.
        num_classes: the number of phone classes (61, the full TIMIT set).

    Returns:
        A 'categorical' dataset with targets at every step and metric 'cross_entropy'; inputs
        `(N, T, D)` float32.

    Raises:
        DataError: a file is missing or not in the documented format.
    """
    return framewise("timit", data_dir, num_classes)


def iam_online(
    data_dir: str | os.PathLike | None = None, num_classes: int | None = None
) -> SequenceDataset:
    """IAM Online with framewise labels (NOT CTC) from the user's `.npz` export.

    Args:
        data_dir: the directory holding `iam_online/{train,valid,test}.npz`.
        num_classes: the number of label classes; None takes the files' `num_classes`, else
            the largest label plus one.

    Returns:
        A 'categorical' dataset with targets at every step and metric 'cross_entropy'; inputs
        `(N, T, D)` float32.

    Raises:
        DataError: a file is missing or not in the documented format.
    """
    return framewise("iam_online", data_dir, num_classes)


def framewise(
    name: str, data_dir: str | os.PathLike | None, num_classes: int | None
) -> SequenceDataset:
    """Load `<data_dir>/<name>/{train,valid,test}.npz` as framewise classification."""
    directory = cache.resolve_data_dir(data_dir)
    paths = [directory / file for file in files(name)]
    if not all(path.exists() for path in paths):
        raise DataError(missing_message(name, directory))
    arrays = {split: read_npz(path) for split, path in zip(SPLITS, paths, strict=True)}
    # First: it checks that each file has its arrays, which the class count reads.
    splits = {
        split: framewise_split(arrays[split], f"{path}")
        for split, path in zip(SPLITS, paths, strict=True)
    }
    declared = set()
    for path, split in zip(paths, SPLITS, strict=True):
        if "num_classes" in arrays[split]:
            value = arrays[split]["num_classes"]
            if (
                value.shape != ()
                or not np.issubdtype(value.dtype, np.number)
                or not (np.isfinite(value) and value >= 1 and value == int(value))
            ):
                raise DataError(f"{path}: num_classes must be one integer >= 1, got {value!r}")
            declared.add(int(value))
    if len(declared) > 1:
        raise DataError(f"{name}: the splits declare different num_classes {sorted(declared)}")
    if declared:
        num_classes = declared.pop()
    elif num_classes is None:
        num_classes = 1 + max(int(split.targets.max(initial=0)) for split in splits.values())
    sizes = {split.inputs.shape[-1] for split in splits.values()}
    if len(sizes) > 1:
        raise DataError(f"{name}: the splits have different input sizes {sorted(sizes)}")
    return SequenceDataset(
        name=name,
        input_size=sizes.pop(),
        output_size=num_classes,
        target="categorical",
        target_at="every_step",
        metric="cross_entropy",
        **splits,
    )


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an `.npz`, read without unpickling anything."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as error:
        raise DataError(f"{path}: {error} (store plain numeric arrays, not objects)") from error
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path}: not a readable .npz ({type(error).__name__}: {error})") from error


def framewise_split(arrays: dict[str, np.ndarray], where: str) -> Split:
    """Build a Split from `inputs`, `targets`, `lengths`, concatenated or padded.

    Raises:
        DataError: a key is missing, the shapes, lengths or labels do not fit together, an input
            is not finite, or no frame is labelled.
    """
    missing = [key for key in ("inputs", "targets", "lengths") if key not in arrays]
    if missing:
        raise DataError(
            f"{where}: missing array(s) {missing}; expected inputs, targets, lengths "
            f"(got {sorted(arrays)})"
        )
    inputs, targets, lengths = arrays["inputs"], arrays["targets"], arrays["lengths"]
    for key, array in (("inputs", inputs), ("targets", targets), ("lengths", lengths)):
        kind = "a real number" if key == "inputs" else "an integer"
        # Not complex: its imaginary part would be dropped when stored as float32.
        wanted = (np.integer, np.floating) if key == "inputs" else (np.integer,)
        if not any(np.issubdtype(array.dtype, dtype) for dtype in wanted):
            raise DataError(f"{where}: {key} must be {kind} array, got dtype {array.dtype}")
    if inputs.ndim in (2, 3) and inputs.shape[-1] == 0:
        raise DataError(
            f"{where}: inputs have no features (shape {inputs.shape}): nothing to learn from"
        )
    if lengths.ndim != 1 or lengths.size == 0 or lengths.min() < 1:
        raise DataError(f"{where}: lengths must be a non-empty 1-D array of counts >= 1")
    # Unsigned counts (np.uint32, say) would make the start offsets below float64 ([0] + uint64).
    lengths = lengths.astype(np.int64)
    if targets.size and targets.min() < IGNORE:
        raise DataError(f"{where}: targets must be class ids >= 0 or {IGNORE}, got {targets.min()}")
    # Stored as int32 below: a larger id would wrap around to another class, silently.
    if targets.size and targets.max() > np.iinfo(np.int32).max:
        raise DataError(
            f"{where}: targets must be class ids below 2**31 (int32), got {targets.max()}"
        )
    n, steps = len(lengths), int(lengths.max())
    if inputs.ndim == 2:
        total = int(lengths.sum())
        if inputs.shape[0] != total or targets.shape != (total,):
            raise DataError(
                f"{where}: concatenated inputs {inputs.shape} and targets {targets.shape} must "
                f"have sum(lengths) = {total} rows"
            )
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        padded_inputs = np.zeros((n, steps, inputs.shape[1]), np.float32)
        padded_targets = np.full((n, steps), IGNORE, np.int32)
        for i, (start, length) in enumerate(zip(starts, lengths, strict=True)):
            padded_inputs[i, :length] = inputs[start : start + length]
            padded_targets[i, :length] = targets[start : start + length]
    elif inputs.ndim == 3:
        if inputs.shape[0] != n or targets.shape != inputs.shape[:2] or inputs.shape[1] < steps:
            raise DataError(
                f"{where}: padded inputs {inputs.shape}, targets {targets.shape} and lengths "
                f"({n},) must be (N, T, D), (N, T), (N,) with T >= max(lengths)"
            )
        padded_inputs = inputs.astype(np.float32)
        padded_targets = targets.astype(np.int32)
        beyond = np.arange(inputs.shape[1]) >= lengths[:, None]
        padded_inputs[beyond] = 0.0
        padded_targets[beyond] = IGNORE
    else:
        raise DataError(f"{where}: inputs must be (F, D) or (N, T, D), got shape {inputs.shape}")
    # Either would train on, or score, nothing: a NaN loss recorded as a diverged trial.
    if not np.isfinite(padded_inputs).all():
        raise DataError(f"{where}: inputs contain NaN or infinite values within the lengths")
    if not (padded_targets != IGNORE).any():
        raise DataError(f"{where}: no labelled frame (every target is {IGNORE}, ignored)")
    return Split(inputs=padded_inputs, targets=padded_targets, lengths=lengths.astype(np.int32))
