"""JSB Chorales: predict the next frame of a Bach chorale piano roll.

The polyphonic-music benchmark of Boulanger-Lewandowski, Bengio & Vincent (2012): 382 four-part
chorales by J. S. Bach, quantised to quarter notes, split 229 / 76 / 77. Greff et al. (2017),
section 4, use it as one of their three tasks. It shares its loader with the other three
piano-roll sets; see `lstm_variants.data.music` for the format, the metric and the checksum.
This module keeps the JSB names importable.
"""

from __future__ import annotations

from lstm_variants.data.music import (
    LOWEST_PITCH,
    NUM_PITCHES,
    SOURCES,
    SPLITS,
    jsb_chorales,
    next_frame_split,
    piano_roll,
    piano_roll_dataset,
)

NAME = "jsb_chorales"
FILENAME = SOURCES[NAME].filename
URL = SOURCES[NAME].url
SHA256 = SOURCES[NAME].sha256

__all__ = [
    "FILENAME",
    "LOWEST_PITCH",
    "NAME",
    "NUM_PITCHES",
    "SHA256",
    "SPLITS",
    "URL",
    "jsb_chorales",
    "next_frame_split",
    "piano_roll",
    "piano_roll_dataset",
]
