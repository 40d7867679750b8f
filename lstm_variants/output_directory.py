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

    A path starting with ``~`` is refused: the shell leaves ``'~/runs'`` quoted as Hydra's
    grammar asks, and neither Hydra nor the loggers expand it, so the files would go to a
    folder named ``~`` in the current directory, one ``rm -r ~`` away from the home folder.
    """
    if directory.parts and directory.parts[0].startswith("~"):
        rest = Path(*directory.parts[1:]) if len(directory.parts) > 1 else Path("NAME")
        raise ConfigError(
            f"{key}={directory} would make a folder named {directory.parts[0]!r} in the current "
            f"directory ({key} does not expand ~): give the full path, e.g. {key}=$HOME/{rest}"
        )
    existing = nearest_existing(directory)
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
    free = free_bytes(existing)
    if free is not None and free < LEAST_FREE_BYTES:
        raise ConfigError(
            f"{key}={directory}: no space left on its disk ({free // 1024} KiB free in "
            f"{existing}); free some space or give another {key}"
        )


def nearest_existing(path: Path) -> Path:
    """``path``, or its nearest ancestor that exists (the folder it would be made in)."""
    return next(folder for folder in (path, *path.parents) if folder.exists())


def free_bytes(path: Path) -> int | None:
    """The free bytes of the disk ``path`` is (or would be made) on; None where the file system
    does not say (then what is written is the test)."""
    try:
        return shutil.disk_usage(nearest_existing(Path(path))).free
    except OSError:
        return None
