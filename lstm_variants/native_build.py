"""Compile the native LSTM kernel (``native/lstm_recurrence.cc``) once per machine and load it.

The kernel is C++ against the XLA FFI headers that ship with jaxlib (``jax.ffi.include_dir()``),
compiled for the CPU it runs on (``-march=native``) with the system's C++ compiler (``$CXX``, else
``c++``, ``g++`` or ``clang++``). The library is kept in the user cache
(``$XDG_CACHE_HOME/lstm_variants/native``, by default under ``~/.cache``) under a name that
hashes everything it depends on: the source, jaxlib's version, the flags and the CPU, then the
compiler and its version. Where the user cache cannot be written (a read-only home), a folder of
the user's in the temporary directory serves instead. A second process
waits on a file lock while the first compiles (about 4 s), and a library appears only whole
(written under a temporary name, then renamed), so parallel test workers or sweep jobs never load
half a file; one found cut short all the same (a partial copy of the cache) is compiled again
(``is_whole``).

Why not at install time: the package stays pure Python (``uv sync`` needs no compiler), and a
machine without a compiler still trains, on the XLA recurrence (``native_lstm.available``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import secrets
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from filelock import FileLock

from lstm_variants.user_cache import user_cache_dir

SOURCE = Path(__file__).parent / "native" / "lstm_recurrence.cc"
COMPILERS = ("c++", "g++", "clang++")
# -w: jaxlib's FFI headers warn under g++ 12 (-Wreturn-type, -Wattributes); not ours to fix.
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w")
LOCK_TIMEOUT_SECONDS = 300
PARTIAL_PREFIX = ".building-"
ABANDONED_AFTER_SECONDS = 3600
# A library no run has loaded for this long was built from an older source, jaxlib or compiler
# (an upgrade names a new one); another environment still using it would touch it when it loads.
UNUSED_AFTER_SECONDS = 30 * 24 * 3600


class NativeBuildError(RuntimeError):
    """The kernel could not be compiled or loaded; the message says why in one line."""


class NoCompilerError(NativeBuildError):
    """No C++ compiler, and no library built here before in the folder looked in."""


def find_compiler() -> list[str]:
    """The C++ compiler's command (arguments included, as in ``CXX="ccache g++"``): ``$CXX`` if
    set, else the first of ``COMPILERS`` on the PATH."""
    named = os.environ.get("CXX", "").strip()
    if named:
        try:
            words = shlex.split(named)
        except ValueError as error:  # an unbalanced quote
            raise NoCompilerError(f"CXX={named} is not a command line: {error}") from None
        found = shutil.which(words[0])
        if not found:
            raise NoCompilerError(f"CXX={named} is not an executable on the PATH")
        return [found, *words[1:]]
    for name in COMPILERS:
        found = shutil.which(name)
        if found:
            return [found]
    raise NoCompilerError(f"no C++ compiler found (tried $CXX, {', '.join(COMPILERS)})")


def _compiler_version(compiler: list[str]) -> str:
    try:
        done = subprocess.run(
            [*compiler, "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise NativeBuildError(f"{shlex.join(compiler)} --version failed: {error}") from None
    return done.stdout


def _cpu_identity() -> str:
    """What ``-march=native`` compiles for: the CPU's model and instruction-set flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU part")
    return "\n".join(sorted({line for line in lines if line.split(":")[0].strip() in wanted}))


def _include_dir() -> str:
    import jax
    import jaxlib

    try:
        include = jax.ffi.include_dir()
    except (AttributeError, OSError) as error:
        raise NativeBuildError(f"jaxlib has no FFI headers: {error}") from None
    if not (Path(include) / "xla" / "ffi" / "api" / "ffi.h").is_file():
        raise NativeBuildError(f"jaxlib {jaxlib.__version__} has no xla/ffi/api/ffi.h in {include}")
    return include


def _digest(*parts: bytes) -> str:
    key = hashlib.sha256()
    for part in parts:
        key.update(hashlib.sha256(part).digest())
    return key.hexdigest()[:12]


def library_path(cache: Path | None = None) -> Path:
    """Where the library for this machine lives (it may not exist yet).

    Its name is ``lstm_recurrence-<what it is built from>-<what built it>.so``: the source,
    jaxlib's version, the flags and the CPU; then the compiler (its resolved path, arguments and
    version). Without a compiler, a library built here before from the same source for the same
    CPU is used, whichever compiler built it.
    """
    import jaxlib

    folder = cache if cache is not None else user_cache_dir() / "native"
    built_from = _digest(
        SOURCE.read_bytes(),
        jaxlib.__version__.encode(),
        " ".join(FLAGS).encode(),
        _cpu_identity().encode(),
    )
    try:
        compiler = find_compiler()
    except NativeBuildError as error:
        earlier = list(folder.glob(f"lstm_recurrence-{built_from}-*.so"))
        whole = [path for path in earlier if is_whole(path)]
        if whole:
            return max(whole, key=lambda path: path.stat().st_mtime)
        if earlier:
            raise NoCompilerError(
                f"{error}, and the library built here before is cut short ({earlier[0]})"
            ) from None
        raise
    resolved = [os.path.realpath(compiler[0]), *compiler[1:]]
    built_by = _digest(shlex.join(resolved).encode(), _compiler_version(compiler).encode())
    return folder / f"lstm_recurrence-{built_from}-{built_by}.so"


def fallback_folder() -> Path:
    """Where the library goes when the user cache cannot be written (a read-only home): a folder
    of this user's in the temporary directory."""
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"lstm_variants-{user}" / "native"


def build(cache: Path | None = None) -> Path:
    """The compiled library's path, compiling it first if this machine has none yet.

    Without ``cache``, the library goes to the user cache, or to ``fallback_folder()`` when that
    cannot be written: the kernel is worth 4 s of compiling in every such session.

    Raises:
      NativeBuildError: no compiler, no headers, a failed compilation (the compiler's output is
        kept in a ``.log`` beside where the library would be), no folder that can be written,
        or a lock held too long.
    """
    if cache is not None:
        folders = [cache]
    else:
        try:
            folders = [user_cache_dir() / "native", fallback_folder()]
        except RuntimeError:  # no home directory to find the user cache in
            folders = [fallback_folder()]
    problem: Exception | None = None
    for folder in folders:
        try:
            return _build_in(folder)
        except (NoCompilerError, OSError) as error:  # filelock's Timeout is an OSError too
            # The next folder may hold a library built before, or be writable. A missing
            # compiler is the reason worth reporting, whichever folder found it.
            if not isinstance(problem, NoCompilerError):
                problem = error
    if isinstance(problem, NativeBuildError):
        raise problem
    raise NativeBuildError(f"cannot build the kernel: {problem}") from None


def _build_in(folder: Path) -> Path:
    target = library_path(folder)
    if is_whole(target):
        _mark_used(target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock", timeout=LOCK_TIMEOUT_SECONDS):
        if not is_whole(target):  # none yet, or one cut short: compiled again, replacing it
            _compile(target)
    return target


def is_whole(library: Path) -> bool:
    """Whether ``library`` exists and is as long as its ELF header says.

    A shared library cut short (a copied or restored cache, a full disk, a file system that lost
    its tail) loads, and then kills the process with SIGBUS when code in its missing pages runs:
    no fallback to XLA can catch that. The linker writes the section header table last, at
    ``e_shoff`` with ``e_shnum`` entries of ``e_shentsize`` bytes, so a file cut anywhere ends
    before ``e_shoff + e_shnum * e_shentsize``. A file that is not ELF is whole only off Linux
    (a Mach-O library, left to the loader).
    """
    try:
        with library.open("rb") as file:
            header = file.read(64)
            size = os.fstat(file.fileno()).st_size
    except OSError:
        return False
    if header[:4] != b"\x7fELF":
        return not sys.platform.startswith("linux")
    wide, order = header[4] == 2, "<" if header[5] == 1 else ">"
    layout = f"{order}Q10xHH" if wide else f"{order}I10xHH"  # e_shoff .. e_shentsize, e_shnum
    start = 0x28 if wide else 0x20
    if len(header) < start + struct.calcsize(layout):
        return False
    table, entry_size, entries = struct.unpack_from(layout, header, start)
    return table + entries * entry_size <= size


def _mark_used(library: Path) -> None:
    """Set the library's modification time to now, at most once a day, so that
    ``_remove_unused`` keeps it (a read-only cache is left as it is)."""
    with contextlib.suppress(OSError):
        if time.time() - library.stat().st_mtime > 24 * 3600:
            os.utime(library)


def _remove_abandoned(folder: Path) -> None:
    """Remove partial libraries that a compilation killed part-way left behind (an hour old:
    older than any compilation still running, which times out after 10 minutes)."""
    for partial in folder.glob(f"{PARTIAL_PREFIX}*"):
        with contextlib.suppress(OSError):
            if time.time() - partial.stat().st_mtime > ABANDONED_AFTER_SECONDS:
                partial.unlink()


def _remove_unused(folder: Path) -> None:
    """Remove the libraries, with their lock and log files, that no run has loaded for
    ``UNUSED_AFTER_SECONDS``: each upgrade of the package, jaxlib or the compiler builds a new one,
    and the old ones would otherwise pile up. A process that has one loaded keeps its mapping."""
    for library in folder.glob("lstm_recurrence-*.so"):
        with contextlib.suppress(OSError):
            if time.time() - library.stat().st_mtime > UNUSED_AFTER_SECONDS:
                library.unlink()
                for leftover in (Path(f"{library}.lock"), library.with_suffix(".log")):
                    leftover.unlink(missing_ok=True)


def _compile(target: Path) -> None:
    compiler = find_compiler()
    _remove_abandoned(target.parent)
    _remove_unused(target.parent)
    # The compiler creates the file, so it gets the usual permissions (a shared cache stays
    # readable by others); the name is this process's own.
    partial = target.parent / f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.so"
    log = target.with_suffix(".log")
    command = [*compiler, *FLAGS, "-I", _include_dir(), str(SOURCE), "-o", str(partial)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            log.write_text(shlex.join(command) + "\n" + done.stdout + done.stderr)
            raise NativeBuildError(
                f"{Path(compiler[0]).name} could not compile {SOURCE.name} (exit "
                f"{done.returncode}); its output is in {log}"
            )
        # On disk before it has the name that every later run loads: a library cut short by a
        # crash would have to be compiled again (``is_whole``).
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
    except subprocess.TimeoutExpired:
        raise NativeBuildError(f"compiling {SOURCE.name} took over 600 s") from None
    finally:
        partial.unlink(missing_ok=True)


def load(cache: Path | None = None) -> ctypes.CDLL:
    """Build if needed, then load the library (its handlers are ``LstmRecurrenceForward`` and
    ``LstmRecurrenceBackward``)."""
    path = build(cache)
    try:
        return ctypes.CDLL(str(path))
    except OSError as error:
        raise NativeBuildError(f"cannot load {path}: {error}") from None
