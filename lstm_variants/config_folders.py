"""Where configs come from: the shipped ``conf/`` and the folders a command line adds.

Hydra composes a run's config from ``conf/`` and from any folder given with ``--config-dir`` or
``hydra.searchpath`` (a user's own ``search/wide.yaml``, say). The command-line check
(``command_line``) composes the same config before Hydra runs, so it needs the same folders:
this module names the shipped one (``CONFIG_DIR``), lists a group's choices across all of them,
turns the flags into the search path the check composes with, and registers the resolvers the
shipped YAML uses.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import ListConfig, OmegaConf

from lstm_variants.records import recorded_names
from lstm_variants.user_cache import user_cache_dir

_HERE = Path(__file__).resolve().parent
# The repo's conf/ in a checkout (editable install); the copy packaged into the wheel otherwise.
CONFIG_DIR = str(_HERE.parent / "conf" if (_HERE.parent / "conf").is_dir() else _HERE / "conf")
# ${user_cache_dir:} in conf/ (oc.env would take an empty $XDG_CACHE_HOME as the path ''). A run's
# .hydra/config.yaml keeps it unresolved: resolve one with lstm_variants imported.
OmegaConf.register_new_resolver("user_cache_dir", lambda: str(user_cache_dir()), replace=True)


def diagnosis_folder(dataset: str, records: Any) -> str:
    """The last part of a diagnosis's default folder (``conf/diagnose.yaml``): the dataset it
    measures, or, when ``diagnose.records`` names recorded trials, their studies and datasets
    (``greff_jsb_best_jsb_chorales``): ``dataset=`` is then not what is measured, and a
    diagnosis of fresh cells on that dataset, or of another study's records, keeps its own
    folder (a diagnosis removes the figures in its folder that it did not draw)."""
    if isinstance(records, ListConfig):
        records = OmegaConf.to_container(records)
    sources = [records] if isinstance(records, str) else records
    if not sources or not all(isinstance(source, str) for source in sources):
        return dataset
    studies, datasets = recorded_names(tuple(sources))
    if not datasets:
        return "records"  # none readable: the diagnosis says why in one line
    return f"{'+'.join(studies)}_{'+'.join(datasets)}"


OmegaConf.register_new_resolver("diagnosis_folder", diagnosis_folder, replace=True)


def invocation_name() -> str:
    """A readable name unique to one command: when it started (UTC), on which host, as which
    process, e.g. ``2025-05-01_12-00-00_node7_4242``; names sort by start time. The host tells
    apart two commands of one second whose process ids match, as the first processes of two
    containers' do."""
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname().split(".")[0]) or "host"
    return f"{time.strftime('%Y-%m-%d_%H-%M-%S', time.gmtime())}_{host}_{os.getpid()}"


# ${invocation:} in a multirun's hydra.sweep.subdir (conf/config.yaml): each command's jobs get
# folders of their own, so that two commands writing one study at once (two shards, two SLURM
# submissions) do not share job folders. Cached, as Hydra's ${now:} is: resolved once in the
# command's own config (``lstm_variants.sweep.invocation``, at the multirun's start), the value
# travels with that config, resolver cache and all, to every job, in this process or in a joblib,
# submitit or SLURM one (Hydra's ``load_sweep_config`` copies the cache into each job's config).
OmegaConf.register_new_resolver("invocation", invocation_name, use_cache=True, replace=True)


CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def group_choices(group: str, extra_dirs: Sequence[Path] = ()) -> list[str]:
    """The options of a config group: the YAML files under ``conf/<group>/`` and under the same
    group of each of ``extra_dirs`` (``added_config_dirs``), a subfolder's as ``team/wide``."""
    names = set()
    for folder in [Path(CONFIG_DIR), *extra_dirs]:
        for path in (folder / group).rglob("*.yaml"):
            names.add(path.relative_to(folder / group).with_suffix("").as_posix())
    return sorted(names)


def is_group(name: str, extra_dirs: Sequence[Path] = ()) -> bool:
    """Whether ``name`` (``search``, ``+sweep``) is a config group of conf/ or of ``extra_dirs``."""
    name = name.lstrip("+~")
    return any((folder / name).is_dir() for folder in [Path(CONFIG_DIR), *extra_dirs])


def split_config_dir_flags(argv: list[str]) -> tuple[list[Path], list[str]]:
    """(the folders of ``--config-dir DIR``, ``-cd DIR`` and ``--config-dir=DIR`` in ``argv``,
    ``argv`` without those flags): the check's composition gets the folders as
    ``hydra.searchpath`` instead (``searchpath_override``)."""
    folders, rest, flag_before = [], [], False
    for argument in argv:
        flag, sep, value = argument.partition("=")
        if flag_before:
            folders.append(Path(argument).expanduser())
            flag_before = False
        elif argument in CONFIG_DIR_FLAGS:
            flag_before = True
        elif sep and flag in CONFIG_DIR_FLAGS:
            folders.append(Path(value).expanduser())
        else:
            rest.append(argument)
    return folders, rest


def added_config_dirs(argv: list[str]) -> list[Path] | None:
    """The config folders the command line adds to Hydra's search path: ``--config-dir DIR``
    and ``file://`` entries of ``hydra.searchpath``. None when it changes the search path in a
    way not followed here (``--config-path``, a ``pkg://`` entry), so that the names of its
    groups are not known."""
    if any(argument.partition("=")[0] in ("--config-path", "-cp") for argument in argv):
        return None
    folders, _ = split_config_dir_flags(argv)
    for argument in argv:
        if argument.partition("=")[0].lstrip("+") != "hydra.searchpath":
            continue
        try:
            entries = OverridesParser.create().parse_override(argument).value()
        except HydraException:
            return None  # Hydra says what is wrong with it
        for entry in entries if isinstance(entries, list) else [entries]:
            if not str(entry).startswith("file://"):
                return None
            folders.append(Path(str(entry).removeprefix("file://")).expanduser())
    return folders


def searchpath_override(folders: Sequence[Path]) -> str:
    """``hydra.searchpath=[...]`` naming ``folders``, each quoted, so that a folder such as
    ``Dropbox (Personal)/conf`` reads as one path in Hydra's override grammar."""
    quoted = []
    for folder in folders:
        text = f"file://{Path(folder).resolve()}".replace("'", "\\'")
        quoted.append(f"'{text}'")
    return f"hydra.searchpath=[{','.join(quoted)}]"


def missing_config_dir(argv: list[str]) -> str | None:
    """One line when a ``--config-dir`` folder does not exist (Hydra's own report is a
    traceback, and the group names it would hold read as unknown). A missing
    ``hydra.searchpath`` entry is left to Hydra, which warns and goes on."""
    for folder in split_config_dir_flags(argv)[0]:
        if not folder.is_dir():
            return (
                f"--config-dir {folder} does not exist; give the folder that holds your config "
                "groups, e.g. myconf for myconf/search/wide.yaml"
            )
    return None
