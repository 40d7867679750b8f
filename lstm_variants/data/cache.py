"""Where data files live, and getting a verified copy of one there.

A dataset file is looked for in one directory, chosen in this order:

1. the `data_dir` argument of the loader;
2. the environment variable `LSTM_VARIANTS_DATA_DIR`;
3. the user cache, `$XDG_CACHE_HOME/lstm_variants` or `~/.cache/lstm_variants`.

Every file is checked against a sha256 each time it is used, so a corrupt or tampered copy is
never read. The sha256 is the published one where it is known. Where no checksum is published
(`sha256=None`), the file is trusted on first use (TOFU): the sha256 of the first complete copy
that passes the loader's own format check is recorded next to it in `<name>.sha256`, and every
later read, and every later download, is verified against that record. TOFU protects against a
copy that changes or breaks later, not against a first download that was already wrong.

A missing file can be downloaded from its public source: bytes go to `<name>.part` (an
interrupted download resumes from there with an HTTP Range request), the byte count is checked
against the size the server announced (Content-Length / Content-Range), the sha256 is verified,
and only then is the file renamed into place, so the final name only ever holds a complete,
verified file. A short download keeps its `.part` (the next try resumes); a download that is
too long or has the wrong sha256 is deleted (the next try starts afresh). `open_url` is the only
function that touches the network; tests replace it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import re
import shutil
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lstm_variants.atomic_files import write_text_atomic
from lstm_variants.data.base import DataError
from lstm_variants.user_cache import user_cache_dir

DATA_DIR_ENV = "LSTM_VARIANTS_DATA_DIR"
TIMEOUT_S = 60


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The directory to read data files from.

    Args:
        data_dir: an explicit directory; wins over everything else.

    Returns:
        `data_dir`, else `$LSTM_VARIANTS_DATA_DIR`, else `$XDG_CACHE_HOME/lstm_variants`, else
        `~/.cache/lstm_variants`. `~` is expanded; the directory need not exist.

    Raises:
        DataError: the chosen path exists and is not a directory (a file named by mistake).
    """
    if given_dir(data_dir):
        chosen, how = Path(data_dir).expanduser(), "data_dir"
    elif os.environ.get(DATA_DIR_ENV):
        chosen, how = Path(os.environ[DATA_DIR_ENV]).expanduser(), f"${DATA_DIR_ENV}"
    else:
        chosen, how = user_cache_dir(), "the data cache"
    if chosen.exists() and not chosen.is_dir():
        raise DataError(
            f"{how} {chosen} is not a directory: point it at the folder that holds (or will "
            "hold) the dataset's files"
        )
    return chosen


def given_dir(data_dir: str | os.PathLike | None) -> bool:
    """Whether a data directory was given; blank is unset, as for the variable."""
    return data_dir is not None and bool(str(data_dir).strip())


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def open_url(url: str, offset: int = 0) -> tuple[BinaryIO, int]:
    """Open `url` for reading, asking for the bytes from `offset` on.

    Args:
        url: an http(s) URL.
        offset: the number of bytes already held; 0 asks for the whole file.

    Returns:
        `(stream, start)`: a readable binary stream and the byte offset it starts at, which is
        `offset` when the server honoured the Range request and 0 when it sent the whole file.
    """
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S
        )
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing past offset: the .part holds the whole file
            return io.BytesIO(), offset
        raise
    return response, offset if response.status == 206 else 0


def announced_size(stream, start: int) -> int | None:
    """The whole file's size in bytes as the server announced it, or None when it did not.

    Args:
        stream: what `open_url` returned; an HTTP response has `headers`, a test fake may not.
        start: the byte offset the stream starts at.

    Returns:
        The total of a `Content-Range: bytes a-b/total` header, else `start` plus the
        `Content-Length`, else None.
    """
    headers = getattr(stream, "headers", None)
    if headers is None:
        return None
    match = re.fullmatch(r"bytes \d+-\d+/(\d+)", headers.get("Content-Range") or "")
    if match:
        return int(match.group(1))
    length = headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def download(url: str, path: Path, sha256: str | None, elsewhere: str = "") -> None:
    """Download `url` to `path` through `<path>.part`, resuming, verifying, renaming atomically.

    Args:
        url: where to get the file.
        path: where the verified file ends up.
        sha256: the expected hex sha256 of the whole file; None checks only the size.
        elsewhere: how to read the file from another directory instead, added to the advice of
            a failed download (empty where the directory was given explicitly).

    Raises:
        DataError: the download failed or stopped short of the announced size (the `.part` is
            kept so the next try resumes), or it is longer than announced or its sha256 differs
            from `sha256` (the `.part` is deleted so the next try starts afresh).
    """
    part = path.with_name(path.name + ".part")
    yourself = f"or download it yourself and put it at {path}"
    created = not path.parent.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        offset = part.stat().st_size if part.exists() else 0
        stream, start = open_url(url, offset)
        expected_size = announced_size(stream, start)
        with stream, open(part, "ab" if start else "wb") as out:
            shutil.copyfileobj(stream, out)
    except (OSError, http.client.HTTPException) as error:
        if created:  # a failed download leaves no empty directory behind (rmdir only if empty)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        raise DataError(
            f"could not download {url} to {path} ({type(error).__name__}: {error}); retry to "
            f"resume, {yourself}{elsewhere}"
        ) from error
    size = part.stat().st_size
    if expected_size is not None and size < expected_size:
        raise DataError(
            f"download of {url} stopped at {size} of {expected_size} bytes; kept {part}, "
            f"retry to resume, {yourself}"
        )
    if expected_size is not None and size > expected_size:
        part.unlink()
        raise DataError(
            f"download of {url} has {size} bytes, the server announced {expected_size}; "
            f"deleted {part}, retry, {yourself}"
        )
    actual = sha256_of(part)
    if sha256 is not None and actual != sha256:
        part.unlink()
        raise DataError(
            f"download of {url} has sha256 {actual}, expected {sha256}; deleted {part}, retry, "
            f"{yourself}"
        )
    os.replace(part, path)


def recorded_sha256_path(path: Path) -> Path:
    """The trust-on-first-use record of `path`: `<path>.sha256`, holding one hex digest."""
    return path.with_name(path.name + ".sha256")


def recorded_sha256(path: Path) -> str | None:
    """The sha256 recorded for `path` on first use, or None when there is no record."""
    record = recorded_sha256_path(path)
    if not record.exists():
        return None
    try:
        text = record.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(
            f"cannot read {record} ({error}); delete it to trust {path} afresh"
        ) from error
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise DataError(
            f"{record} should hold one hex sha256, got {text[:80]!r}; delete it to trust "
            f"{path} afresh"
        )
    return text


def fetch_file(
    filename: str,
    url: str,
    sha256: str | None,
    data_dir: str | os.PathLike | None = None,
    download_missing: bool = True,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """The path of a verified local copy of a data file, downloading it if allowed and missing.

    Args:
        filename: the file's name inside the data directory.
        url: its public source.
        sha256: its published hex sha256; None trusts the file on first use (see the module
            docstring): the first copy that passes `check` has its sha256 recorded in
            `<filename>.sha256`, and every later use must match that record.
        data_dir: see `resolve_data_dir`.
        download_missing: download the file into the data directory when it is not there.
        check: with `sha256=None`, a format check run on a copy before its sha256 is recorded;
            it raises DataError for a bad file (a bad download is then deleted).

    Returns:
        The path of the file, whose sha256 has just been checked.

    Raises:
        DataError: the file is missing and may not or could not be downloaded, its sha256 is
            not `sha256` (or not the recorded one), or a first copy fails `check`.
    """
    path = resolve_data_dir(data_dir) / filename
    expected = sha256 if sha256 is not None else recorded_sha256(path)
    downloaded = not path.exists()
    if downloaded:
        # Given a directory, the variable would not be read: no advice to set it.
        elsewhere = (
            ""
            if given_dir(data_dir)
            else f" (or point {DATA_DIR_ENV} or data_dir at a directory holding it)"
        )
        if not download_missing:
            raise DataError(
                f"{filename} not found at {path}; put it there{elsewhere}, or allow downloading "
                f"it from {url}"
            )
        download(url, path, expected, elsewhere)
    try:
        actual = sha256_of(path)
    except OSError as error:  # a directory of that name, an unreadable file
        raise DataError(
            f"cannot read {path} ({type(error).__name__}: {error.strerror or error}); "
            f"replace it with the file from {url}"
        ) from error
    if expected is None:
        trust_on_first_use(path, actual, check, downloaded)
    elif actual != expected:
        how = "expected" if sha256 is not None else "recorded on first use in"
        source = expected if sha256 is not None else f"{recorded_sha256_path(path)} ({expected})"
        raise DataError(
            f"{path} has sha256 {actual}, {how} {source}; the file is corrupt or a different "
            f"version: delete it to download it again, or replace it with a copy from {url}"
        )
    return path


def trust_on_first_use(
    path: Path, sha256: str, check: Callable[[Path], None] | None, downloaded: bool
) -> None:
    """Run `check` on a first copy of `path`, then record its sha256 next to it.

    A downloaded copy that fails the check is deleted, so the next try downloads afresh; a copy
    the user put there is left alone. When the directory is read-only the file is used without
    a record (with a warning), and is trusted again on its next use.
    """
    if check is not None:
        try:
            check(path)
        except DataError:
            if downloaded:
                path.unlink()
            raise
    record = recorded_sha256_path(path)
    try:
        write_text_atomic(record, sha256 + "\n")  # half a digest would fail every later check
    except OSError as error:
        warnings.warn(f"could not record the sha256 of {path} in {record}: {error}", stacklevel=3)
