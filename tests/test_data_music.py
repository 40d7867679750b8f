"""The four piano-roll sets through one loader; trust-on-first-use checksums; real HTTP downloads.

Small pickles in the real format are written by the tests. Downloads go to a local
`http.server` on 127.0.0.1 (through the real `cache.open_url` and urllib) or to fakes, never to
the internet. The real files are read only when `LSTM_VARIANTS_DATA_DIR` points at them.
"""

import dataclasses
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from piano_rolls import piano_rolls, pickle_bytes

from lstm_variants.data import INFO, DataError, availability, cache, load_dataset, music

NAMES = ["jsb_chorales", "nottingham", "piano_midi", "muse_data"]
TOFU = [name for name in NAMES if music.SOURCES[name].sha256 is None]
REAL_SIZES = {
    "jsb_chorales": (229, 76, 77),
    "nottingham": (694, 173, 170),
    "piano_midi": (87, 12, 25),
    "muse_data": (524, 135, 124),
}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, offset=0):
        raise AssertionError(f"test tried to fetch {url}")

    monkeypatch.setattr(cache, "open_url", refuse)


def use_source(monkeypatch, name, **changes):
    source = dataclasses.replace(music.SOURCES[name], **changes)
    monkeypatch.setitem(music.SOURCES, name, source)
    return source


def pin(monkeypatch, name, payload: bytes):
    """Make `name` expect the sha256 of `payload` (pinned sets) or keep it TOFU."""
    if music.SOURCES[name].sha256 is not None:
        use_source(monkeypatch, name, sha256=hashlib.sha256(payload).hexdigest())


@pytest.mark.parametrize("name", NAMES)
def test_small_pickle_loads_as_next_frame_piano_rolls(tmp_path, monkeypatch, no_network, name):
    payload = pickle_bytes(piano_rolls())
    pin(monkeypatch, name, payload)
    (tmp_path / music.SOURCES[name].filename).write_bytes(payload)

    data = load_dataset(name, data_dir=tmp_path)

    assert data.name == name
    assert (data.target, data.target_at, data.metric) == (
        "multilabel",
        "every_step",
        "nll_per_step",
    )
    assert data.train.inputs.shape == (2, 3, 88)
    np.testing.assert_array_equal(data.train.lengths, [3, 1])
    assert np.flatnonzero(data.train.inputs[0, 0]).tolist() == [39, 43]
    assert np.flatnonzero(data.train.targets[0, 2]).tolist() == [0, 87]
    assert (INFO[name].target, INFO[name].metric) == ("multilabel", "nll_per_step")
    assert availability(name, tmp_path) == f"local {tmp_path / music.SOURCES[name].filename}"


@pytest.mark.parametrize("name", NAMES)
def test_real_file_from_env_dir(no_network, name):
    directory = os.environ.get(cache.DATA_DIR_ENV)
    filename = music.SOURCES[name].filename
    if not directory or not (Path(directory) / filename).exists():
        pytest.skip(f"set {cache.DATA_DIR_ENV} to a directory holding {filename}")
    if music.SOURCES[name].sha256 is None and not os.access(directory, os.W_OK):
        pytest.skip(f"{directory} is read-only: no trust-on-first-use record can be written")
    data = load_dataset(name)
    sizes = tuple(split.num_sequences for split in data.splits().values())
    assert sizes == REAL_SIZES[name]
    for split in data.splits().values():
        for i, length in enumerate(split.lengths):
            np.testing.assert_array_equal(split.targets[i, : length - 1], split.inputs[i, 1:length])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": [], "test": []}, r"missing split\(s\) \['valid'\]"),
        ({"training": [], "valid": [], "test": []}, r"missing split\(s\) \['train'\]"),
        (piano_rolls(valid=[]), "split 'valid' must be a non-empty list"),
        (piano_rolls(train=[[(60,), (20,)]]), "train sequence 0, frame 1: pitch 20 outside"),
        (piano_rolls(test=[[(109,), (60,)]]), "test sequence 0, frame 0: pitch 109 outside"),
        (piano_rolls(train=[[(60,), (61,)], []]), "train sequence 1: needs a list of at least 2"),
    ],
)
def test_malformed_file_is_one_data_error(tmp_path, monkeypatch, no_network, name, data, message):
    payload = pickle_bytes(data)
    pin(monkeypatch, name, payload)
    path = tmp_path / music.SOURCES[name].filename
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message) as error:
        load_dataset(name, data_dir=tmp_path)
    assert "\n" not in str(error.value)
    assert not cache.recorded_sha256_path(path).exists()  # a bad file is never trusted
    assert path.exists()  # the user's own file is left for them to inspect


@pytest.mark.parametrize("name", TOFU)
def test_trust_on_first_use_records_then_verifies(tmp_path, no_network, name):
    path = tmp_path / music.SOURCES[name].filename
    payload = pickle_bytes(piano_rolls())
    path.write_bytes(payload)

    load_dataset(name, data_dir=tmp_path)
    record = cache.recorded_sha256_path(path)
    assert record.read_text().strip() == hashlib.sha256(payload).hexdigest()
    load_dataset(name, data_dir=tmp_path)  # the same bytes: fine

    path.write_bytes(pickle_bytes(piano_rolls(test=[[(80,), (81,)]])))  # changed after first use
    with pytest.raises(DataError, match="recorded on first use in") as error:
        load_dataset(name, data_dir=tmp_path)
    assert str(record) in str(error.value) and "delete it" in str(error.value)


def test_trust_record_with_a_digest_cut_short_is_an_error(tmp_path, no_network):
    path = tmp_path / "nottingham.pickle"
    payload = pickle_bytes(piano_rolls())
    path.write_bytes(payload)
    cache.recorded_sha256_path(path).write_text(hashlib.sha256(payload).hexdigest()[:63] + "\n")
    with pytest.raises(DataError, match="should hold one hex sha256"):
        load_dataset("nottingham", data_dir=tmp_path)


def test_trust_record_that_is_not_a_digest_is_an_error(tmp_path, no_network):
    path = tmp_path / "nottingham.pickle"
    path.write_bytes(pickle_bytes(piano_rolls()))
    cache.recorded_sha256_path(path).write_text("not a digest\n")
    with pytest.raises(DataError, match="should hold one hex sha256"):
        load_dataset("nottingham", data_dir=tmp_path)


def test_a_resumed_download_counts_its_content_length_from_where_it_resumed(tmp_path, monkeypatch):
    # A 206 without Content-Range: the whole file is the bytes held plus the Content-Length.
    import io

    (tmp_path / "x.part").write_bytes(b"a" * 40)

    class Rest(io.BytesIO):
        headers = {"Content-Length": "60"}

    monkeypatch.setattr(cache, "open_url", lambda url, offset=0: (Rest(b"b" * 60), offset))
    cache.download("http://127.0.0.1/x", tmp_path / "x", None)
    assert (tmp_path / "x").read_bytes() == b"a" * 40 + b"b" * 60


def test_a_download_one_byte_short_is_kept_to_resume(tmp_path, monkeypatch):
    import io

    class Short(io.BytesIO):
        headers = {"Content-Length": "100"}

    monkeypatch.setattr(cache, "open_url", lambda url, offset=0: (Short(b"x" * 99), 0))
    with pytest.raises(DataError, match="stopped at 99 of 100 bytes; kept"):
        cache.download("http://127.0.0.1/x", tmp_path / "x", None)
    assert not (tmp_path / "x").exists() and (tmp_path / "x.part").stat().st_size == 99


class Server:
    """A local HTTP server for one file, honouring Range; `cut` stops a response early."""

    def __init__(self, payload: bytes):
        self.payload, self.cut, self.ranges = payload, None, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = int(header[len("bytes=") : -1]) if header else 0
                body = server.payload[start:]
                self.send_response(206 if header else 200)
                if header:
                    total = len(server.payload)
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if server.cut is None else body[: server.cut])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/file.pickle"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    servers = []

    def start(payload: bytes) -> Server:
        servers.append(Server(payload))
        return servers[-1]

    yield start
    for running in servers:
        running.close()


@pytest.mark.parametrize("name", ["piano_midi", "nottingham"])
def test_truncated_http_download_is_reported_then_resumed(tmp_path, monkeypatch, server, name):
    payload = pickle_bytes(piano_rolls())
    http_server = server(payload)
    pin(monkeypatch, name, payload)
    use_source(monkeypatch, name, url=http_server.url)
    path = tmp_path / music.SOURCES[name].filename
    part = path.with_name(path.name + ".part")
    cut = len(payload) // 3
    http_server.cut = cut

    with pytest.raises(DataError) as error:
        load_dataset(name, data_dir=tmp_path)
    message = str(error.value)
    assert "IncompleteRead" in message or f"stopped at {cut} of {len(payload)} bytes" in message
    assert not path.exists() and part.read_bytes() == payload[:cut]
    assert not cache.recorded_sha256_path(path).exists()

    http_server.cut = None
    data = load_dataset(name, data_dir=tmp_path)
    assert http_server.ranges == [None, f"bytes={cut}-"]
    assert path.read_bytes() == payload and not part.exists()
    assert data.train.num_sequences == 2
    if music.SOURCES[name].sha256 is None:
        recorded = cache.recorded_sha256(path)
        assert recorded == hashlib.sha256(payload).hexdigest()


def test_size_check_catches_a_short_body_without_an_http_error(tmp_path, monkeypatch):
    # A stream that ends early without raising (a proxy, a fake): the announced size catches it.
    import io

    class Short(io.BytesIO):
        headers = {"Content-Length": "100"}

    monkeypatch.setattr(cache, "open_url", lambda url, offset=0: (Short(b"x" * 40), 0))
    with pytest.raises(DataError, match="stopped at 40 of 100 bytes; kept"):
        cache.download("http://127.0.0.1/x", tmp_path / "x", None)
    assert (tmp_path / "x.part").stat().st_size == 40

    class Long(io.BytesIO):
        headers = {"Content-Range": "bytes 40-99/100"}

    monkeypatch.setattr(cache, "open_url", lambda url, offset=0: (Long(b"y" * 70), 40))
    with pytest.raises(DataError, match="has 110 bytes, the server announced 100; deleted"):
        cache.download("http://127.0.0.1/x", tmp_path / "x", None)
    assert not (tmp_path / "x.part").exists()


def test_tofu_download_that_is_not_a_pickle_is_deleted_not_trusted(tmp_path, monkeypatch, server):
    http_server = server(b"<html>rate limited</html>")
    use_source(monkeypatch, "muse_data", url=http_server.url)
    with pytest.raises(DataError, match="cannot unpickle"):
        load_dataset("muse_data", data_dir=tmp_path)
    path = tmp_path / "muse_data.pickle"
    assert not path.exists() and not cache.recorded_sha256_path(path).exists()

    http_server.payload = pickle_bytes(piano_rolls())
    assert load_dataset("muse_data", data_dir=tmp_path).test.num_sequences == 1


def test_tofu_redownload_is_checked_against_the_record(tmp_path, monkeypatch, server):
    http_server = server(pickle_bytes(piano_rolls()))
    use_source(monkeypatch, "nottingham", url=http_server.url)
    load_dataset("nottingham", data_dir=tmp_path)
    (tmp_path / "nottingham.pickle").unlink()  # the record stays

    http_server.payload = pickle_bytes(piano_rolls(valid=[[(50,), (51,)]]))  # the source changed
    with pytest.raises(DataError, match="has sha256 .*, expected"):
        load_dataset("nottingham", data_dir=tmp_path)
    assert not (tmp_path / "nottingham.pickle").exists()


def test_missing_without_download_and_availability(tmp_path, no_network):
    for name in NAMES:
        assert availability(name, tmp_path) == "downloadable"
        with pytest.raises(DataError, match="not found") as error:
            load_dataset(name, data_dir=tmp_path, download=False)
        assert music.SOURCES[name].url in str(error.value)
    assert "trust on first use" in INFO["nottingham"].checksum
    assert INFO["piano_midi"].checksum.startswith("sha256 273d593b")


def test_a_file_without_a_sha256_yet_is_listed_as_not_checked(tmp_path, no_network):
    """Nottingham has no published sha256; until a first load records one, a truncated copy
    was listed as plainly 'local', as if checked."""
    path = tmp_path / "nottingham.pickle"
    path.write_bytes(pickle_bytes(piano_rolls())[:40])  # a truncated copy
    assert availability("nottingham", tmp_path) == (
        f"local {path} (not checked yet: its sha256 is recorded at its first load)"
    )
    path.write_bytes(pickle_bytes(piano_rolls()))
    load_dataset("nottingham", data_dir=tmp_path)  # records its sha256
    assert availability("nottingham", tmp_path) == f"local {path}"
