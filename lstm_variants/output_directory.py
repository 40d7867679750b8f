"""Whether a folder given for a command's files can be written, asked before any work starts."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from lstm_variants.errors import ConfigError

# Less free space than this is a full disk: Hydra's first file there (the job's config) would
# fail with a traceback, and a record or its parameters would not fit.
LEAST_FREE_BYTES = 1 << 20


def check_output_directory(directory: Path, key: str) -> None:
    """Raise ``ConfigError`` unless ``directory`` is, or can become, a folder files can be put in.

    Tried with a temporary file in its nearest existing folder: permission bits do not tell
    (root may write anywhere, except where the file system refuses, such as /proc), and making
    the folder itself here would leave an empty one when the job later fails. An empty file
    fits on a full disk, so the free space is asked for too (``LEAST_FREE_BYTES``).
    """
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a directory", str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(
            f"{key}={directory} cannot be written ({existing}: {error.strerror or error}); "
            f"give another {key}"
        ) from None
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # not known here: the files themselves are the test
    if free < LEAST_FREE_BYTES:
        raise ConfigError(
            f"{key}={directory}: no space left on its disk ({free // 1024} KiB free in "
            f"{existing}); free some space or give another {key}"
        )
