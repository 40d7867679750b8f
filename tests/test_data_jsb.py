"""JSB Chorales: piano rolls, format errors, checksums, data-dir resolution and downloads.

Small pickles in the real format (dicts of lists of tuples of numpy integers) are written by the
tests; `cache.open_url` is replaced by fakes, so nothing here touches the network. The real file
is read only when `LSTM_VARIANTS_DATA_DIR` points at a directory holding it.
"""

import dataclasses
import hashlib
import io
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from piano_rolls import piano_rolls, pickle_bytes

from lstm_variants.data import DataError, cache, jsb, load_dataset, music

FAKE_URL = "https://example.invalid/jsb_chorales.pickle"


@pytest.fixture
def trust(monkeypatch):
    """Make the loader expect the sha256 of the given bytes (and a fake URL); returns them."""

    def _trust(payload: bytes) -> bytes:
        source = music.SOURCES["jsb_chorales"]
        trusted = dataclasses.replace(
            source, sha256=hashlib.sha256(payload).hexdigest(), url=FAKE_URL
        )
        monkeypatch.setitem(music.SOURCES, "jsb_chorales", trusted)
        return payload

    return _trust


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, offset=0):
        raise AssertionError(f"test tried to fetch {url}")

    monkeypatch.setattr(cache, "open_url", refuse)


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """An empty user cache and no LSTM_VARIANTS_DATA_DIR; returns the cache dir."""
    monkeypatch.delenv(cache.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "lstm_variants"


def write(directory: Path, payload: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / jsb.FILENAME
    path.write_bytes(payload)
    return path


def test_small_pickle_gives_next_frame_piano_rolls(tmp_path, trust, no_network):
    write(tmp_path, trust(pickle_bytes(piano_rolls())))
    data = load_dataset("jsb_chorales", data_dir=tmp_path)

    assert (data.input_size, data.output_size) == (88, 88)
    assert (data.target, data.target_at, data.metric) == (
        "multilabel",
        "every_step",
        "nll_per_step",
    )
    train = data.train
    assert train.inputs.shape == train.targets.shape == (2, 3, 88)
    assert train.inputs.dtype == train.targets.dtype == np.float32
    np.testing.assert_array_equal(train.lengths, [3, 1])
    assert train.lengths.dtype == np.int32
    # Chorale 0: frames {60, 64}, {62}, rest, {21, 108}; pitch p is unit p - 21.
    assert np.flatnonzero(train.inputs[0, 0]).tolist() == [39, 43]
    assert np.flatnonzero(train.targets[0, 0]).tolist() == [41]
    assert np.flatnonzero(train.inputs[0, 1]).tolist() == [41]
    assert not train.inputs[0, 2].any() and not train.targets[0, 1].any()
    assert np.flatnonzero(train.targets[0, 2]).tolist() == [0, 87]
    # Chorale 1: one step, {21} -> {22}, then zero padding.
    assert np.flatnonzero(train.inputs[1, 0]).tolist() == [0]
    assert np.flatnonzero(train.targets[1, 0]).tolist() == [1]
    assert not train.inputs[1, 1:].any() and not train.targets[1, 1:].any()
    assert data.valid.inputs.shape == (1, 2, 88) and data.test.inputs.shape == (1, 1, 88)
    assert np.flatnonzero(data.test.inputs[0, 0]).tolist() == [49, 53]
    summary = data.describe()
    assert summary["input_kind"] == "binary"
    assert summary["splits"]["train"] == {
        "sequences": 2,
        "steps": 4,
        "max_length": 3,
        "mean_length": 2.0,
    }


def test_real_file_from_env_dir(no_network):
    directory = os.environ.get(cache.DATA_DIR_ENV)
    if not directory or not (Path(directory) / jsb.FILENAME).exists():
        pytest.skip(f"set {cache.DATA_DIR_ENV} to a directory holding {jsb.FILENAME}")
    data = load_dataset("jsb_chorales")

    sizes = {name: split.num_sequences for name, split in data.splits().items()}
    assert sizes == {"train": 229, "valid": 76, "test": 77}
    assert data.input_size == data.output_size == 88
    for split in data.splits().values():
        assert split.inputs.shape[2] == 88
        assert set(np.unique(split.inputs)) <= {0.0, 1.0}
        # The target at step t is the input at step t + 1, inside each chorale.
        for i, length in enumerate(split.lengths):
            np.testing.assert_array_equal(split.targets[i, : length - 1], split.inputs[i, 1:length])
            assert not split.inputs[i, length:].any() and not split.targets[i, length:].any()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": [], "test": []}, r"missing split\(s\) \['valid'\]"),
        (piano_rolls(valid=[]), "split 'valid' must be a non-empty list"),
        (piano_rolls(train=[[(60,), (20,)]]), "train sequence 0, frame 1: pitch 20 outside"),
        (piano_rolls(test=[[(109,), (60,)]]), "test sequence 0, frame 0: pitch 109 outside"),
        (piano_rolls(train=[[(60,), (61,)], []]), "train sequence 1: needs a list of at least 2"),
        (
            piano_rolls(valid=[[(60, 64)]]),
            "valid sequence 0: needs a list of at least 2 frames, got 1",
        ),
        ({**piano_rolls(), "train": [[(60.5,), (61,)]]}, "pitch 60.5 is not an integer"),
        ([[(60,), (61,)]], "expected a dict of splits, got list"),
    ],
)
def test_malformed_file_is_a_data_error(tmp_path, trust, no_network, data, message):
    write(tmp_path, trust(pickle_bytes(data)))
    with pytest.raises(DataError, match=message):
        load_dataset("jsb_chorales", data_dir=tmp_path)


def test_truncated_file_is_a_data_error(tmp_path, trust, no_network):
    payload = pickle_bytes(piano_rolls())
    write(tmp_path, trust(payload[: len(payload) // 2]))
    with pytest.raises(DataError, match="cannot unpickle"):
        load_dataset("jsb_chorales", data_dir=tmp_path)


def test_wrong_checksum_names_file_and_both_hashes(tmp_path, no_network):
    payload = pickle_bytes(piano_rolls())
    path = write(tmp_path, payload)
    with pytest.raises(DataError) as error:
        load_dataset("jsb_chorales", data_dir=tmp_path)
    message = str(error.value)
    assert str(path) in message and jsb.SHA256 in message
    assert hashlib.sha256(payload).hexdigest() in message and "delete it" in message
    assert path.read_bytes() == payload  # left for the user to inspect, never used


def test_missing_file_without_download_says_where_to_put_it(tmp_path, no_network):
    with pytest.raises(DataError) as error:
        load_dataset("jsb_chorales", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path / jsb.FILENAME) in message
    # The directory given wins over the variable: no advice to set it (see the test below).
    assert cache.DATA_DIR_ENV not in message and jsb.URL in message


def test_data_dir_resolution_order(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.resolve_data_dir() == tmp_path / "home" / ".cache" / "lstm_variants"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.resolve_data_dir() == tmp_path / "xdg" / "lstm_variants"
    monkeypatch.setenv(cache.DATA_DIR_ENV, str(tmp_path / "env"))
    assert cache.resolve_data_dir() == tmp_path / "env"
    assert cache.resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    with pytest.raises(DataError, match=r"data_dir .*notes.txt is not a directory: point it at"):
        cache.resolve_data_dir(tmp_path / "notes.txt")
    monkeypatch.setenv(cache.DATA_DIR_ENV, str(tmp_path / "notes.txt"))
    with pytest.raises(DataError, match=r"\$LSTM_VARIANTS_DATA_DIR .*notes.txt is not a dir"):
        cache.resolve_data_dir()


class FakeServer:
    """Stands in for `cache.open_url`: serves `payload`, honouring Range unless told not to.

    `fail_after` cuts the stream after that many bytes with a connection reset.
    """

    def __init__(self, payload: bytes, honour_range: bool = True, fail_after: int | None = None):
        self.payload, self.honour_range, self.fail_after = payload, honour_range, fail_after
        self.offsets = []

    def __call__(self, url, offset=0):
        assert url == FAKE_URL
        self.offsets.append(offset)
        start = offset if self.honour_range else 0
        body = self.payload[start:]
        if self.fail_after is None:
            return io.BytesIO(body), start
        return FlakyStream(body, self.fail_after), start


class FlakyStream(io.BytesIO):
    def __init__(self, body: bytes, fail_after: int):
        super().__init__(body)
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(self.fail_after - self.tell())


def test_download_into_cache_then_load(cache_home, trust, monkeypatch):
    payload = trust(pickle_bytes(piano_rolls()))
    server = FakeServer(payload)
    monkeypatch.setattr(cache, "open_url", server)

    data = load_dataset("jsb_chorales")

    assert server.offsets == [0]
    assert (cache_home / jsb.FILENAME).read_bytes() == payload
    assert not (cache_home / (jsb.FILENAME + ".part")).exists()
    assert data.train.num_sequences == 2
    load_dataset("jsb_chorales")  # now cached: no second fetch
    assert server.offsets == [0]


def test_interrupted_download_resumes_from_part(cache_home, trust, monkeypatch):
    payload = trust(pickle_bytes(piano_rolls()))
    cut = len(payload) // 3
    monkeypatch.setattr(cache, "open_url", FakeServer(payload, fail_after=cut))
    with pytest.raises(DataError) as error:
        load_dataset("jsb_chorales")
    message = str(error.value)
    assert "ConnectionResetError" in message and str(cache_home / jsb.FILENAME) in message
    assert cache.DATA_DIR_ENV in message and FAKE_URL in message
    part = cache_home / (jsb.FILENAME + ".part")
    assert part.read_bytes() == payload[:cut] and not (cache_home / jsb.FILENAME).exists()

    server = FakeServer(payload)
    monkeypatch.setattr(cache, "open_url", server)
    load_dataset("jsb_chorales")
    assert server.offsets == [cut]
    assert (cache_home / jsb.FILENAME).read_bytes() == payload and not part.exists()


def test_server_ignoring_range_restarts_the_file(cache_home, trust, monkeypatch):
    payload = trust(pickle_bytes(piano_rolls()))
    write(cache_home, b"stale bytes").rename(cache_home / (jsb.FILENAME + ".part"))
    server = FakeServer(payload, honour_range=False)
    monkeypatch.setattr(cache, "open_url", server)
    load_dataset("jsb_chorales")
    assert server.offsets == [len(b"stale bytes")]
    assert (cache_home / jsb.FILENAME).read_bytes() == payload


def test_corrupt_download_is_rejected_and_not_renamed(cache_home, trust, monkeypatch):
    payload = trust(pickle_bytes(piano_rolls()))
    corrupt = payload[:-5] + bytes([payload[-5] ^ 0xFF]) + payload[-4:]
    monkeypatch.setattr(cache, "open_url", FakeServer(corrupt))
    with pytest.raises(DataError, match=f"download of {FAKE_URL} has sha256"):
        load_dataset("jsb_chorales")
    assert not (cache_home / jsb.FILENAME).exists()
    assert not (cache_home / (jsb.FILENAME + ".part")).exists()


def test_download_false_never_fetches(cache_home, no_network):
    with pytest.raises(DataError, match="not found"):
        load_dataset("jsb_chorales", download=False)


class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, status: int):
        super().__init__(body)
        self.status = status


@pytest.mark.parametrize("status, start", [(206, 10), (200, 0)])
def test_open_url_asks_for_a_range(monkeypatch, status, start):
    requests = []

    def urlopen(request, timeout):
        requests.append(request)
        return FakeResponse(b"rest", status)

    monkeypatch.setattr(cache.urllib.request, "urlopen", urlopen)
    stream, got_start = cache.open_url(FAKE_URL, 10)
    assert requests[0].get_header("Range") == "bytes=10-"
    assert (stream.read(), got_start) == (b"rest", start)
    cache.open_url(FAKE_URL)
    assert requests[1].get_header("Range") is None


def test_open_url_treats_416_as_complete_part(monkeypatch):
    def urlopen(request, timeout):
        raise urllib.error.HTTPError(FAKE_URL, 416, "Range Not Satisfiable", {}, None)

    monkeypatch.setattr(cache.urllib.request, "urlopen", urlopen)
    stream, start = cache.open_url(FAKE_URL, 10)
    assert (stream.read(), start) == (b"", 10)
    with pytest.raises(urllib.error.HTTPError):
        cache.open_url(FAKE_URL, 0)


def test_a_directory_in_the_files_place_is_one_data_error(tmp_path, no_network):
    (tmp_path / jsb.FILENAME).mkdir()
    with pytest.raises(DataError, match="cannot read .*IsADirectoryError"):
        load_dataset("jsb_chorales", data_dir=tmp_path)
    recorded = tmp_path / "other.pickle"
    cache.recorded_sha256_path(recorded).mkdir()  # the trust-on-first-use record, as a directory
    with pytest.raises(DataError, match="delete it to trust"):
        cache.recorded_sha256(recorded)


def test_a_failed_download_leaves_no_directory_it_made(tmp_path, monkeypatch):
    def offline(url, offset=0):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(cache, "open_url", offline)
    fresh = tmp_path / "new" / "data"
    with pytest.raises(DataError, match="could not download") as failed:
        load_dataset("jsb_chorales", data_dir=fresh)
    assert not fresh.exists()
    # A directory given explicitly wins over the variable: no advice to set it.
    assert str(failed.value).endswith(f"put it at {fresh / jsb.FILENAME}")
    monkeypatch.setenv(cache.DATA_DIR_ENV, "")
    monkeypatch.setattr(cache, "user_cache_dir", lambda: fresh)
    with pytest.raises(DataError, match="could not download") as failed:
        load_dataset("jsb_chorales")
    assert str(failed.value).endswith(
        f"(or point {cache.DATA_DIR_ENV} or data_dir at a directory holding it)"
    )
    # Not to be downloaded: the same advice.
    with pytest.raises(DataError, match="not found at") as missing:
        load_dataset("jsb_chorales", download=False)
    assert f"(or point {cache.DATA_DIR_ENV} or data_dir at a directory" in str(missing.value)


def test_fetch_downloads_and_checks_ahead_of_runs_without_network(
    cache_home, trust, monkeypatch, capsys
):
    from lstm_variants.data.cli import main

    server = FakeServer(trust(pickle_bytes(piano_rolls())))
    monkeypatch.setattr(cache, "open_url", server)
    assert main(["fetch", "jsb_chorales", "adding"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"jsb_chorales: local {cache_home / jsb.FILENAME}",
        "adding: generated, nothing to fetch",
    ]
    assert server.offsets == [0]
    # A dataset that cannot be fetched gets its error line; the others are still fetched.
    assert main(["fetch", "timit", "jsb_chorales"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "error: timit: " in captured.err
    assert captured.out.splitlines() == [f"jsb_chorales: local {cache_home / jsb.FILENAME}"]
    assert main(["fetch", "jsb", "nope"]) == 2
    assert "unknown dataset(s) jsb, nope; valid datasets: adding" in capsys.readouterr().err
