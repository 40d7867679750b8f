"""`lstm-variants dataset=NAME` trains for every registered dataset (issue 3, "Done when").

Each case composes the real Hydra config `dataset=NAME`, made tiny by overrides, and calls
`run_trial` for one epoch. Generated datasets need nothing; file-based ones read a small copy in
the real format that the test writes into a temporary data directory:

- trust-on-first-use files (Nottingham, MuseData, PTB characters) accept the copy as it is;
- sha256-pinned files (JSB Chorales, Piano-midi.de, Tiny Shakespeare, PTB words) are read from
  `$LSTM_VARIANTS_DATA_DIR` when it holds the real file; otherwise the test's copy is read with
  the loader's pinned sha256 replaced, in this process only, by the copy's (as the data tests do),
  so loading, verifying and training still run end to end;
- `text_file` reads the file named by `dataset.options.path`; TIMIT and IAM Online read the
  documented `.npz` export.

Nothing is downloaded (`download=false` wherever the option exists, and `cache.open_url` refuses).
The last test runs the app's command line (in this process: the `app` fixture) for one generated
and one file-based dataset.
"""

import dataclasses
import hashlib
import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lstm_variants.cli import CONFIG_DIR
from lstm_variants.data import DATASETS, INFO, cache, dataset_options, music, ptb, text
from lstm_variants.experiment import run_trial

TINY = ("model.hidden_size=8", "train.max_epochs=1", "train.batch_size=4", "progress=false")
SIZES = ("dataset.options.n_train=8", "dataset.options.n_valid=4", "dataset.options.n_test=4")
STREAMS = ("dataset.options.streams=2", "dataset.options.window=8")
REAL_DIR = os.environ.get(cache.DATA_DIR_ENV)


# --- small copies in the real formats ------------------------------------------------------------


def music_pickle(seed: int) -> bytes:
    """A Boulanger-Lewandowski pickle: splits of sequences of frames of numpy-integer pitches."""
    rng = np.random.default_rng(seed)

    def sequence():
        return [
            tuple(np.int64(p) for p in rng.choice(np.arange(21, 109), rng.integers(0, 4), False))
            for _ in range(rng.integers(2, 9))
        ]

    splits = {"train": 6, "valid": 3, "test": 3}
    return pickle.dumps({s: [sequence() for _ in range(n)] for s, n in splits.items()}, protocol=2)


def prose(seed: int, words: int = 400) -> str:
    """Plain text lines of words from a small vocabulary."""
    rng = np.random.default_rng(seed)
    vocabulary = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away", "N"]
    tokens = rng.choice(vocabulary, words)
    return "\n".join(" ".join(tokens[i : i + 8]) for i in range(0, words, 8)) + "\n"


def ptb_word_files(seed: int) -> dict[str, str]:
    """PTB word format: one sentence a line, words between spaces (valid/test words in train)."""
    lines = prose(seed).splitlines()
    parts = {"train": lines[:36], "valid": lines[36:43], "test": lines[43:]}
    return {split: "".join(f" {line} \n" for line in part) for split, part in parts.items()}


def ptb_char_files(seed: int) -> dict[str, str]:
    """PTB character format: characters separated by spaces, `_` between words."""
    return {
        split: "".join(" ".join(line.replace(" ", "_")) + "\n" for line in content.splitlines())
        for split, content in ptb_word_files(seed).items()
    }


def write_npz_export(directory: Path, dim: int, classes: int) -> None:
    """The licensed sets' documented export: concatenated frames, labels and lengths per split."""
    rng = np.random.default_rng(dim)
    directory.mkdir(parents=True)
    for split, lengths in {"train": [3, 6, 4, 5, 2], "valid": [4, 3], "test": [5, 2]}.items():
        total = sum(lengths)
        np.savez(
            directory / f"{split}.npz",
            inputs=rng.normal(size=(total, dim)).astype(np.float32),
            targets=rng.integers(0, classes, size=total),
            lengths=np.array(lengths),
        )


# --- how each dataset gets its data --------------------------------------------------------------

# A setup gets (data directory, monkeypatch) and returns the extra overrides of its case.
Setup = Callable[[Path, pytest.MonkeyPatch], list[str]]


def generated(*options: str) -> Setup:
    return lambda directory, monkeypatch: list(options)


def real_or_pinned(
    files: dict[str, bytes],
    pin: Callable[[pytest.MonkeyPatch, dict], None],
    small: tuple[str, ...] = (),
) -> Setup:
    """The real files in `$LSTM_VARIANTS_DATA_DIR` if all are there (with the config's own
    options), else the test's copies with their sha256 pinned and the `small` overrides."""

    def setup(directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        if REAL_DIR and all((Path(REAL_DIR) / name).is_file() for name in files):
            return [f"data_dir={REAL_DIR}"]
        for name, payload in files.items():
            (directory / name).write_bytes(payload)
        pin(monkeypatch, {name: hashlib.sha256(p).hexdigest() for name, p in files.items()})
        return list(small)

    return setup


def music_setup(name: str) -> Setup:
    source = music.SOURCES[name]
    payload = music_pickle(seed=len(name))
    if source.sha256 is not None:

        def pin(monkeypatch, sums):
            replaced = dataclasses.replace(source, sha256=sums[source.filename])
            monkeypatch.setitem(music.SOURCES, name, replaced)

        return real_or_pinned({source.filename: payload}, pin)

    def trusted(directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        (directory / source.filename).write_bytes(payload)
        return []

    return trusted


def shakespeare_setup() -> Setup:
    def pin(monkeypatch, sums):
        monkeypatch.setattr(text, "SHAKESPEARE_SHA256", sums[text.SHAKESPEARE_FILENAME])

    return real_or_pinned({text.SHAKESPEARE_FILENAME: prose(1).encode()}, pin, STREAMS)


def ptb_word_setup() -> Setup:
    contents = ptb_word_files(2)
    files = {
        name: contents[split].encode()
        for name, split in zip(ptb.WORD_FILES, ("train", "valid", "test"), strict=True)
    }
    return real_or_pinned(
        files, lambda monkeypatch, sums: monkeypatch.setattr(ptb, "WORD_SHA256", sums), STREAMS
    )


def ptb_char_setup(directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    contents = ptb_char_files(3)
    for name, split in zip(ptb.CHAR_FILES, ("train", "valid", "test"), strict=True):
        (directory / name).write_text(contents[split], encoding="utf-8")
    return [*STREAMS]


def text_file_setup(directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    path = directory / "book.txt"
    path.write_text(prose(4) + "Ünïcode ✓\n", encoding="utf-8")
    return [f"dataset.options.path={path}", *STREAMS]


def licensed_setup(name: str, dim: int, classes: int) -> Setup:
    def setup(directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        write_npz_export(directory / name, dim, classes)
        return []

    return setup


CASES: dict[str, Setup] = {
    "adding": generated("dataset.options.T=11", *SIZES),
    "temporal_order": generated("dataset.options.T=10", *SIZES),
    "copy_memory": generated("dataset.options.delay=5", "dataset.options.length=3", *SIZES),
    "arithmetic": generated("dataset.options.max_digits=2", *SIZES),
    "xml": generated("dataset.options.length=20", *SIZES),
    **{name: music_setup(name) for name in music.MUSIC_DATASETS},
    "timit": licensed_setup("timit", dim=39, classes=61),
    "iam_online": licensed_setup("iam_online", dim=3, classes=7),
    "tiny_shakespeare": shakespeare_setup(),
    "text_file": text_file_setup,
    "ptb_word": ptb_word_setup(),
    "ptb_char": ptb_char_setup,
}


def compose_config(name: str, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"dataset={name}", *TINY, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, offset=0):
        raise AssertionError(f"test tried to fetch {url}")

    monkeypatch.setattr(cache, "open_url", refuse)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_trains_one_epoch(name, tmp_path, monkeypatch, no_network):
    if name not in CASES:
        pytest.fail(f"dataset {name!r} is registered but has no case in {Path(__file__).name}")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    overrides = list(CASES[name](data_dir, monkeypatch))
    if not any(option.startswith("data_dir=") for option in overrides):
        overrides.append(f"data_dir={data_dir}")
    if "download" in dataset_options(name):
        overrides.append("dataset.options.download=false")
    cfg = compose_config(name, overrides)
    assert cfg["dataset"]["name"] == name

    path, record = run_trial(cfg, tmp_path / "out", progress=False)

    assert record is not None and path.is_file()
    assert record["dataset"] == name
    metrics = record["metrics"]
    assert metrics["metric"] == INFO[name].metric
    assert metrics["best_valid"] is not None and math.isfinite(metrics["best_valid"])
    assert len(record["curve"]) == metrics["epochs_run"] == 1


@pytest.mark.slow
def test_cli_trains_a_generated_and_a_file_dataset(tmp_path, monkeypatch, app):
    """`lstm-variants dataset=NAME ...` for copy_memory and nottingham."""
    for name in ("copy_memory", "nottingham"):
        data_dir = tmp_path / name / "data"
        data_dir.mkdir(parents=True)
        overrides = list(CASES[name](data_dir, monkeypatch))
        if "download" in dataset_options(name):
            overrides.append("dataset.options.download=false")
        out = app(f"dataset={name}", *TINY, *overrides, f"data_dir={data_dir}",
                  f"hydra.run.dir={tmp_path / name}")  # fmt: skip
        assert out.returncode == 0, f"{name}: {out.stderr}"
        lines = [line for line in out.stdout.splitlines() if line.startswith("record: ")]
        assert lines and Path(lines[0].removeprefix("record: ")).is_file(), f"{name}: {out.stdout}"
        assert f"on {name}:" in out.stdout
