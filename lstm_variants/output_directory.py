"""Whether a folder given for a command's files can be written, asked before any work starts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from lstm_variants.errors import ConfigError


def check_output_directory(directory: Path, key: str) -> None:
    """Raise ``ConfigError`` unless ``directory`` is, or can become, a folder files can be put in.

    Tried with a temporary file in its nearest existing folder: permission bits do not tell
    (root may write anywhere, except where the file system refuses, such as /proc), and making
    the folder itself here would leave an empty one when the job later fails.
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
