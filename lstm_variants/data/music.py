"""Polyphonic music: predict the next frame of a piano roll (four Boulanger-Lewandowski sets).

The benchmark of Boulanger-Lewandowski, Bengio & Vincent (2012), "Modeling Temporal Dependencies
in High-Dimensional Sequences", ICML: four collections of polyphonic music, each as piano rolls
over the 88 keys of a piano (MIDI pitches 21..108) with the authors' train / valid / test split.

| name | what | sequences (train / valid / test) |
|---|---|---|
| `jsb_chorales` | 382 four-part chorales by J. S. Bach, quarter notes | 229 / 76 / 77 |
| `nottingham` | folk tunes (the Nottingham database), melody and chords | 694 / 173 / 170 |
| `piano_midi` | classical piano pieces from piano-midi.de | 87 / 12 / 25 |
| `muse_data` | orchestral and piano music from the MuseData library | 524 / 135 / 124 |

Greff et al. (2017), "LSTM: A Search Space Odyssey", section 4, use JSB Chorales as one of their
three tasks; Jozefowicz et al. (2015) use all four. The task: 88 binary inputs (frame t), 88
sigmoid outputs (frame t + 1), scored by the negative log-likelihood per time step,

    NLL = - (1 / F) sum_{sequences} sum_{t} sum_{k=1}^{88} [v_{t+1,k} log p_{t,k}
                                                             + (1 - v_{t+1,k}) log (1 - p_{t,k})]

summed over the 88 notes and averaged over all F frames of a split.

Every file is a pickle from pyro-ppl/datasets (`polyphonic/<name>.pickle`, copies of the
authors' files): a dict with keys 'train', 'valid', 'test'; each a list of sequences; each
sequence a list of frames; each frame a tuple of the MIDI pitches sounding (numpy integers in
21..108; a rest is an empty tuple). A sequence of L frames gives L - 1 steps: input frame t,
target frame t + 1. The pickles hold numpy scalars, so they are read with the restricted
unpickler of `safe_pickle` (numpy scalars only, never arbitrary code), by one loader for all four.

Checksums: JSB Chorales' sha256 is the published one (DESIGN.md, `../shared/data/README.md`).
Piano-midi.de's is the one recorded for the authors' original `Piano-midi.de.pickle` (7,413,484
bytes; the JSB copy on pyro-ppl/datasets is byte-identical to the authors' original, so the
Piano-midi copy is expected to be as well). For Nottingham and MuseData no checksum is
published: they are trusted on first use (`cache.fetch_file` with `sha256=None`): the sha256 of
the first complete copy that loads is recorded in `<file>.sha256` next to it, and every later
read or download is verified against that record.

Example (reads or downloads the file; see `lstm_variants.data.cache`):
    >>> from lstm_variants.data import load_dataset
    >>> data = load_dataset("jsb_chorales")
    >>> data.train.inputs.shape[0], data.input_size
    (229, 88)
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from pathlib import Path

import numpy as np

from lstm_variants.data import cache
from lstm_variants.data.base import DataError, SequenceDataset, Split
from lstm_variants.data.safe_pickle import restricted_load

SPLITS = ("train", "valid", "test")
LOWEST_PITCH = 21  # A0, the lowest key of an 88-key piano
NUM_PITCHES = 88  # A0 (21) .. C8 (108)
BASE_URL = "https://github.com/pyro-ppl/datasets/raw/master/polyphonic"


@dataclasses.dataclass(frozen=True)
class PianoRollSource:
    """Where one piano-roll pickle comes from.

    Attributes:
        name: the registry name, e.g. `'nottingham'`.
        title: what the collection is, for `describe`.
        filename: the file's name in the data directory.
        url: its public source.
        sha256: its hex sha256, or None to trust it on first use (see the module docstring).
    """

    name: str
    title: str
    filename: str
    url: str
    sha256: str | None

    @property
    def checksum(self) -> str:
        """How the file is verified, in words."""
        if self.sha256 is not None:
            return f"sha256 {self.sha256}"
        return f"trust on first use: sha256 recorded in {self.filename}.sha256 on first load"


def _source(name: str, title: str, sha256: str | None) -> PianoRollSource:
    return PianoRollSource(name, title, f"{name}.pickle", f"{BASE_URL}/{name}.pickle", sha256)


SOURCES: dict[str, PianoRollSource] = {
    source.name: source
    for source in (
        _source(
            "jsb_chorales",
            "J. S. Bach chorales",
            "69dc4c3e52800959ac0ab3b82aa3e5f55285ce64f1705acb3e3a8ef77a5c051c",
        ),
        _source("nottingham", "Nottingham folk tunes", None),
        _source(
            "piano_midi",
            "Piano-midi.de classical piano",
            "273d593b13d9a348410d261c0223d47523e2a9b41702137aaab5922242518296",
        ),
        _source("muse_data", "MuseData orchestral and piano music", None),
    )
}


def load_piano_rolls(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> SequenceDataset:
    """Load one of the `SOURCES` as next-frame prediction on 88-note piano rolls.

    Args:
        name: a key of `SOURCES`.
        data_dir: the directory holding the pickle; default `$LSTM_VARIANTS_DATA_DIR`, else the
            user cache (see `cache.resolve_data_dir`).
        download: when the file is missing, download it into that directory (default True);
            False never touches the network.

    Returns:
        A 'multilabel' dataset with targets at every step and metric 'nll_per_step'; inputs and
        targets are `(N, T, 88)` binary float32 with T the longest sequence of the split minus
        one.

    Raises:
        DataError: the file is missing, fails its sha256 check, or is not in the format above.
    """
    source = SOURCES[name]
    path = cache.fetch_file(
        source.filename,
        source.url,
        source.sha256,
        data_dir,
        download_missing=download,
        check=lambda path: read_piano_rolls(name, path),
    )
    return read_piano_rolls(name, path)


def read_piano_rolls(name: str, path: Path) -> SequenceDataset:
    """Unpickle `path` (restricted) and build the dataset; see `piano_roll_dataset`."""
    with open(path, "rb") as file:
        sequences = restricted_load(file)
    return piano_roll_dataset(name, sequences, source=str(path))


def jsb_chorales(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> SequenceDataset:
    """JSB Chorales (229 / 76 / 77 chorales); see `load_piano_rolls`."""
    return load_piano_rolls("jsb_chorales", data_dir, download)


def nottingham(data_dir: str | os.PathLike | None = None, download: bool = True) -> SequenceDataset:
    """Nottingham folk tunes (694 / 173 / 170), trusted on first use; see `load_piano_rolls`."""
    return load_piano_rolls("nottingham", data_dir, download)


def piano_midi(data_dir: str | os.PathLike | None = None, download: bool = True) -> SequenceDataset:
    """Piano-midi.de (87 / 12 / 25 pieces); see `load_piano_rolls`."""
    return load_piano_rolls("piano_midi", data_dir, download)


def muse_data(data_dir: str | os.PathLike | None = None, download: bool = True) -> SequenceDataset:
    """MuseData (524 / 135 / 124 pieces), trusted on first use; see `load_piano_rolls`."""
    return load_piano_rolls("muse_data", data_dir, download)


MUSIC_DATASETS = {
    "jsb_chorales": jsb_chorales,
    "nottingham": nottingham,
    "piano_midi": piano_midi,
    "muse_data": muse_data,
}


def piano_roll_dataset(name: str, sequences, source: str) -> SequenceDataset:
    """Turn a dict of train/valid/test lists of pitch-tuple sequences into a next-frame dataset.

    Args:
        name: the dataset's name.
        sequences: the unpickled dict, in the format of the module docstring.
        source: where it came from, for error messages.

    Returns:
        The dataset, every split built by `next_frame_split`.

    Raises:
        DataError: a split is missing or empty, or a sequence or pitch is malformed.
    """
    if not isinstance(sequences, dict):
        raise DataError(f"{source}: expected a dict of splits, got {type(sequences).__name__}")
    missing = [split for split in SPLITS if split not in sequences]
    if missing:
        raise DataError(f"{source}: missing split(s) {missing}; expected keys {list(SPLITS)}")
    splits = {}
    for split in SPLITS:
        items = sequences[split]
        if not isinstance(items, list | tuple) or not items:
            raise DataError(f"{source}: split '{split}' must be a non-empty list of sequences")
        splits[split] = next_frame_split(
            [piano_roll(seq, f"{source}: {split} sequence {i}") for i, seq in enumerate(items)]
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
