"""Where configs come from: the shipped ``conf/`` and the folders a command line adds.

Hydra composes a run's config from ``conf/`` and from any folder given with ``--config-dir`` or
``hydra.searchpath`` (a user's own ``search/wide.yaml``, say). The command-line check
(``command_line``) composes the same config before Hydra runs, so it needs the same folders:
this module names the shipped one (``CONFIG_DIR``), lists a group's choices across all of them,
turns the flags into the search path the check composes with, and registers the resolver the
shipped YAML uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from lstm_variants.user_cache import user_cache_dir

_HERE = Path(__file__).resolve().parent
# The repo's conf/ in a checkout (editable install); the copy packaged into the wheel otherwise.
CONFIG_DIR = str(_HERE.parent / "conf" if (_HERE.parent / "conf").is_dir() else _HERE / "conf")
# ${user_cache_dir:} in conf/: oc.env would take an empty $XDG_CACHE_HOME as the path ''.
OmegaConf.register_new_resolver("user_cache_dir", lambda: str(user_cache_dir()), replace=True)


def group_choices(group: str, extra_dirs: Sequence[Path] = ()) -> list[str]:
    """The options of a config group: the YAML files in ``conf/<group>/`` and in the same group
    of each of ``extra_dirs`` (``added_config_dirs``)."""
    folders = [Path(CONFIG_DIR), *extra_dirs]
    return sorted({path.stem for folder in folders for path in (folder / group).glob("*.yaml")})


def added_config_dirs(argv: list[str]) -> list[Path] | None:
    """The config folders the command line adds to Hydra's search path: ``--config-dir DIR``
    (``-cd``) and ``file://`` entries of ``hydra.searchpath``. None when it changes the search
    path in a way not followed here (``--config-path``, a ``pkg://`` entry), so that the names
    of its groups are not known."""
    folders = []
    for index, argument in enumerate(argv):
        flag, sep, value = argument.partition("=")
        if flag in ("--config-path", "-cp"):
            return None
        if flag in ("--config-dir", "-cd"):
            value = value if sep else (argv[index + 1] if index + 1 < len(argv) else "")
            folders.append(Path(value).expanduser())
        elif flag.lstrip("+") == "hydra.searchpath":
            for entry in value.strip("[]").split(","):
                entry = entry.strip().strip("'\"")
                if not entry.startswith("file://"):
                    return None
                folders.append(Path(entry.removeprefix("file://")).expanduser())
    return folders


def missing_config_dir(argv: list[str]) -> str | None:
    """One line when a config folder the command line adds does not exist (Hydra's own report
    is a traceback, and the group names it would hold read as unknown)."""
    for folder in added_config_dirs(argv) or []:
        if not folder.is_dir():
            return (
                f"config folder {folder} (--config-dir or hydra.searchpath) does not exist; give "
                "the folder that holds your config groups, e.g. myconf for myconf/search/wide.yaml"
            )
    return None


CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def without_config_dir_flags(argv: list[str]) -> list[str]:
    """``argv`` less ``--config-dir DIR`` (``-cd DIR``, ``--config-dir=DIR``): the check's
    composition gets the folders as ``hydra.searchpath`` instead (``added_config_dirs``)."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument in CONFIG_DIR_FLAGS:
            skip = True
        elif argument.partition("=")[0] not in CONFIG_DIR_FLAGS:
            kept.append(argument)
    return kept
