"""Files that appear whole or not at all: records, job statuses, tables, reports and figures.

A command can be cut short at any moment (Ctrl-C, ``kill``, a full disk, a lost node). Every file
this package writes for a reader to trust goes through ``atomic_file``: a temporary file in the
same directory, synced, then renamed over the target, so a reader sees the old file or the new
one, never half of either. A process killed between the two (``kill -9``) leaves a hidden
``.<name>.*.tmp`` file, which ``remove_leftovers`` clears once it is old. No JAX here, so the analysis commands can write this way and still
start fast.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO]:
    """A file handle whose contents appear at ``path`` whole or not at all.

    It writes a temporary file in the same directory, syncs it and renames it into place; on an
    error the temporary file goes and ``path`` is left as it was. The file gets the permissions
    of any new file (0666 less the umask): ``mkstemp``'s private 0600 would hide a study's results
    from the colleagues who share its directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        # UTF-8 whatever the locale, as pandas writes to a path: the tables hold ± and Δ.
        with os.fdopen(handle, mode, encoding=None if "b" in mode else "utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# A temporary file this old was left by a process killed before its rename (``kill -9``, a lost
# node): a write in flight, by this process or another sharing the folder, is seconds old.
LEFTOVER_SECONDS = 3600.0


def remove_leftovers(directory: Path, older_than: float = LEFTOVER_SECONDS) -> list[Path]:
    """Remove the temporary files ``atomic_file`` left in ``directory`` (``.<name>.*.tmp``)
    that were last written more than ``older_than`` seconds ago; return them."""
    removed = []
    now = time.time()
    for path in sorted(Path(directory).glob(".*.tmp")):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            if now - path.stat().st_mtime > older_than and path.is_file():
                path.unlink()
                removed.append(path)
    return removed


def file_identity(path: Path) -> tuple[int, ...] | None:
    """The file at ``path`` as a stat can tell it from another: an atomic write is a new file
    (inode), and a rewrite changes its time or size. The change time too: a rewrite in place that
    keeps the size and sets the old modification time back (``cp -p``, ``rsync --inplace``), or a
    change of permissions, changes it, and no user can set it. None where there is none (or it
    cannot be read). Caches of parsed files key on it."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (another thread creating a
    file meanwhile would get a wrong mode); elsewhere set and put back at once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """``Path(path).write_text(text)``, atomically."""
    with atomic_file(path) as out:
        out.write(text)


def write_table_atomic(path: Path, table: Any) -> None:
    """A pandas table to ``path`` atomically, as Parquet or CSV by the name's suffix."""
    path = Path(path)
    if path.suffix == ".parquet":
        with atomic_file(path, "wb") as out:
            table.to_parquet(out, index=False)
    elif path.suffix == ".csv":
        with atomic_file(path) as out:
            table.to_csv(out, index=False)
    else:
        raise ValueError(f"{path}: a table is written as .parquet or .csv")


def save_figure_atomic(path: Path, figure: Any, **savefig_options: Any) -> Path:
    """``figure.savefig(path, ...)`` atomically, in the format of the name's suffix; ``path``."""
    path = Path(path)
    with atomic_file(path, "wb") as out:
        figure.savefig(out, format=path.suffix.lstrip(".") or None, **savefig_options)
    return path
