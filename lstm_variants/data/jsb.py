"""JSB Chorales: predict the next frame of a Bach chorale piano roll.

The polyphonic-music benchmark of Boulanger-Lewandowski, Bengio & Vincent (2012), "Modeling
Temporal Dependencies in High-Dimensional Sequences", ICML: 382 four-part chorales by J. S. Bach,
quantised to quarter notes, split 229 / 76 / 77 into train / valid / test. Greff et al. (2017),
"LSTM: A Search Space Odyssey", section 4, use it as one of their three tasks: 88 binary inputs
(the piano roll's frame t), 88 sigmoid outputs (frame t + 1), scored by the negative
log-likelihood per time step, summed over the 88 notes and averaged over all frames of a split.

The file is the public pickle `jsb_chorales.pickle` (pyro-ppl/datasets): a dict with keys
'train', 'valid', 'test'; each a list of chorales; each chorale a list of frames; each frame a
tuple of the MIDI pitches sounding (numpy integers in 21..108; a rest is an empty tuple). A
chorale of L frames gives L - 1 steps: input frame t, target frame t + 1.

Example (reads or downloads the file; see `lstm_variants.data.cache`):
    >>> from lstm_variants.data import load_dataset
    >>> data = load_dataset("jsb_chorales")
    >>> data.train.inputs.shape[0], data.input_size
    (229, 88)
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from lstm_variants.data import cache
from lstm_variants.data.base import DataError, SequenceDataset, Split
from lstm_variants.data.safe_pickle import restricted_load

NAME = "jsb_chorales"
FILENAME = "jsb_chorales.pickle"
URL = "https://github.com/pyro-ppl/datasets/raw/master/polyphonic/jsb_chorales.pickle"
SHA256 = "69dc4c3e52800959ac0ab3b82aa3e5f55285ce64f1705acb3e3a8ef77a5c051c"
SPLITS = ("train", "valid", "test")
LOWEST_PITCH = 21  # A0, the lowest key of an 88-key piano
NUM_PITCHES = 88  # A0 (21) .. C8 (108)


def jsb_chorales(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> SequenceDataset:
    """Load JSB Chorales as next-frame prediction on 88-note piano rolls.

    Args:
        data_dir: the directory holding `jsb_chorales.pickle`; default `$LSTM_VARIANTS_DATA_DIR`,
            else the user cache (see `cache.resolve_data_dir`).
        download: when the file is missing, download it from `URL` into that directory
            (default True); False never touches the network.

    Returns:
        A 'multilabel' dataset with targets at every step and metric 'nll_per_step'; inputs and
        targets are `(N, T, 88)` binary float32 with T the longest chorale of the split minus one.

    Raises:
        DataError: the file is missing, fails its sha256 check, or is not in the format above.
    """
    path = cache.fetch_file(FILENAME, URL, SHA256, data_dir, download_missing=download)
    with open(path, "rb") as file:
        chorales = restricted_load(file)
    return piano_roll_dataset(NAME, chorales, source=str(path))


def piano_roll_dataset(name: str, chorales, source: str) -> SequenceDataset:
    """Turn a dict of train/valid/test lists of pitch-tuple sequences into a next-frame dataset.

    Args:
        name: the dataset's name.
        chorales: the unpickled dict, in the format of the module docstring.
        source: where it came from, for error messages.

    Returns:
        The dataset, every split built by `next_frame_split`.

    Raises:
        DataError: a split is missing or empty, or a sequence or pitch is malformed.
    """
    if not isinstance(chorales, dict):
        raise DataError(f"{source}: expected a dict of splits, got {type(chorales).__name__}")
    missing = [split for split in SPLITS if split not in chorales]
    if missing:
        raise DataError(f"{source}: missing split(s) {missing}; expected keys {list(SPLITS)}")
    splits = {}
    for split in SPLITS:
        sequences = chorales[split]
        if not isinstance(sequences, list | tuple) or not sequences:
            raise DataError(f"{source}: split '{split}' must be a non-empty list of sequences")
        splits[split] = next_frame_split(
            [piano_roll(seq, f"{source}: {split} sequence {i}") for i, seq in enumerate(sequences)]
        )
    return SequenceDataset(
        name=name,
        input_size=NUM_PITCHES,
        output_size=NUM_PITCHES,
        target="multilabel",
        target_at="every_step",
        metric="nll_per_step",
        **splits,
    )


def piano_roll(frames, where: str) -> np.ndarray:
    """The binary piano roll of one sequence of pitch tuples.

    Args:
        frames: a list of frames, each a tuple of integer MIDI pitches in 21..108.
        where: names the sequence in error messages.

    Returns:
        `(L, 88)` float32, 1 where pitch `LOWEST_PITCH + k` sounds in frame t, else 0.

    Raises:
        DataError: fewer than two frames (nothing to predict), a frame that is not a tuple or
            list, or a pitch that is not an integer in 21..108.
    """
    if not isinstance(frames, list | tuple) or len(frames) < 2:
        count = len(frames) if isinstance(frames, list | tuple) else type(frames).__name__
        raise DataError(f"{where}: needs a list of at least 2 frames, got {count}")
    roll = np.zeros((len(frames), NUM_PITCHES), np.float32)
    for t, frame in enumerate(frames):
        if not isinstance(frame, list | tuple):
            raise DataError(f"{where}, frame {t}: expected a tuple of pitches, got {frame!r}")
        for pitch in frame:
            if not isinstance(pitch, numbers.Integral) or isinstance(pitch, bool):
                raise DataError(f"{where}, frame {t}: pitch {pitch!r} is not an integer")
            if not LOWEST_PITCH <= pitch < LOWEST_PITCH + NUM_PITCHES:
                raise DataError(
                    f"{where}, frame {t}: pitch {int(pitch)} outside the piano range "
                    f"{LOWEST_PITCH}..{LOWEST_PITCH + NUM_PITCHES - 1}"
                )
            roll[t, pitch - LOWEST_PITCH] = 1.0
    return roll


def next_frame_split(rolls: list[np.ndarray]) -> Split:
    """Pad piano rolls into a split whose target at step t is the frame after the input.

    Args:
        rolls: `(L_i, D)` arrays with `L_i >= 2`.

    Returns:
        A Split with inputs `roll[:-1]` and targets `roll[1:]` of each sequence, zero-padded to
        the longest, and lengths `L_i - 1`.
    """
    lengths = np.array([len(roll) - 1 for roll in rolls], np.int32)
    shape = (len(rolls), int(lengths.max()), rolls[0].shape[1])
    inputs, targets = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    for i, roll in enumerate(rolls):
        inputs[i, : lengths[i]] = roll[:-1]
        targets[i, : lengths[i]] = roll[1:]
    return Split(inputs=inputs, targets=targets, lengths=lengths)
