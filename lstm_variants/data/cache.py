"""Where data files live, and getting a verified copy of one there.

A dataset file is looked for in one directory, chosen in this order:

1. the `data_dir` argument of the loader;
2. the environment variable `LSTM_VARIANTS_DATA_DIR`;
3. the user cache, `$XDG_CACHE_HOME/lstm_variants` or `~/.cache/lstm_variants`.

Every file is checked against its published sha256 each time it is used, so a corrupt or
tampered copy is never read. A missing file can be downloaded from its public source: bytes go
to `<name>.part` (an interrupted download resumes from there with an HTTP Range request), the
result is verified, and only then renamed into place, so the final name only ever holds a
verified file. `open_url` is the only function that touches the network; tests replace it.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from lstm_variants.data.base import DataError

DATA_DIR_ENV = "LSTM_VARIANTS_DATA_DIR"
TIMEOUT_S = 60


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The directory to read data files from.

    Args:
        data_dir: an explicit directory; wins over everything else.

    Returns:
        `data_dir`, else `$LSTM_VARIANTS_DATA_DIR`, else `$XDG_CACHE_HOME/lstm_variants`, else
        `~/.cache/lstm_variants`. `~` is expanded; the directory need not exist.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "lstm_variants"


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


def download(url: str, path: Path, sha256: str) -> None:
    """Download `url` to `path` through `<path>.part`, resuming, verifying, renaming atomically.

    Args:
        url: where to get the file.
        path: where the verified file ends up.
        sha256: the expected hex sha256 of the whole file.

    Raises:
        DataError: the download failed (the `.part` is kept so the next try resumes), or its
            sha256 differs from `sha256` (the `.part` is deleted so the next try starts afresh).
    """
    part = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        offset = part.stat().st_size if part.exists() else 0
        stream, start = open_url(url, offset)
        with stream, open(part, "ab" if start else "wb") as out:
            shutil.copyfileobj(stream, out)
    except (OSError, http.client.HTTPException) as error:
        raise DataError(
            f"could not download {url} to {path} ({type(error).__name__}: {error}); retry to "
            f"resume, or download it yourself and put it at {path} (or set {DATA_DIR_ENV} to a "
            "directory holding it)"
        ) from error
    actual = sha256_of(part)
    if actual != sha256:
        part.unlink()
        raise DataError(
            f"download of {url} has sha256 {actual}, expected {sha256}; deleted {part}, retry, "
            f"or download it yourself and put it at {path}"
        )
    os.replace(part, path)


def fetch_file(
    filename: str,
    url: str,
    sha256: str,
    data_dir: str | os.PathLike | None = None,
    download_missing: bool = True,
) -> Path:
    """The path of a verified local copy of a data file, downloading it if allowed and missing.

    Args:
        filename: the file's name inside the data directory.
        url: its public source.
        sha256: its published hex sha256.
        data_dir: see `resolve_data_dir`.
        download_missing: download the file into the data directory when it is not there.

    Returns:
        The path of the file, whose sha256 has just been checked.

    Raises:
        DataError: the file is missing and may not or could not be downloaded, or its sha256
            is not `sha256`.
    """
    path = resolve_data_dir(data_dir) / filename
    if not path.exists():
        if not download_missing:
            raise DataError(
                f"{filename} not found at {path}; put it there (or pass data_dir / set "
                f"{DATA_DIR_ENV} to a directory holding it), or allow downloading it from {url}"
            )
        download(url, path, sha256)
    actual = sha256_of(path)
    if actual != sha256:
        raise DataError(
            f"{path} has sha256 {actual}, expected {sha256}; the file is corrupt or a different "
            f"version: delete it to download it again, or replace it with a copy from {url}"
        )
    return path
