"""Advice for an override Hydra refuses: its error on one line, or the keys that do exist.

Hydra answers a misspelt key with "use +key=value" (which would add a key nothing reads) and a
missing group option with its search path, over several lines. ``unknown_key`` names the nearest
existing keys instead, and inside a search space says how to add or reach a key;
``unreadable_override`` names an override the grammar cannot read (``study=étude``: Hydra says
"LexerNoViableAltException" and points at a column) and how to quote it;
``hydra_error_line`` puts Hydra's other errors on one line.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lstm_variants.config_folders import CONFIG_DIR, group_choices
from lstm_variants.errors import nearest_hint

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic"


def unreadable_override(overrides: list[str]) -> str | None:
    """One line for the first of ``overrides`` that Hydra's grammar cannot read, else None.

    An unquoted value holds only ASCII letters, digits, spaces and a few signs (``_-+./:\\``);
    anything else, a non-ASCII letter or a parenthesis, needs quotes, which the shell
    strips unless the whole override is quoted again: ``study="'étude'"``.
    """
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except HydraException:
            key, _, value = override.partition("=")
            if set(value) & set("'\"[]{}"):  # a list, a mapping or a quote left open
                advice = "check its brackets and quotes"
            elif value.startswith("~/"):  # quoted, most folder keys would keep a folder named ~
                advice = f"give the full path, {key}=$HOME/{value[2:]}"
            else:
                advice = f"quote the value, {key}=\"'{value}'\""
            return f"cannot read the override {override!r}: {advice} ({GRAMMAR})"
    return None


def hydra_error_line(error: BaseException) -> str:
    """Hydra's composition error in one line: its first two lines, the cause of an override that
    could not be merged (a value of the wrong type), the options it lists for a missing one, and,
    for several values without ``-m`` (``cell=vanilla,gru``), that a multirun sweeps them: its
    first two lines offered a list, which no group and few keys take."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    ambiguous = re.match(r"Ambiguous value for argument '(([^=]+)=(.*))'$", lines[0])
    if ambiguous:  # Hydra's ways out are on three lines; the one a sweep needs is the last
        override, key, value = ambiguous.groups()
        return (
            f"{override} gives several values, which only a multirun sweeps: add -m to run one "
            f"job per value (one value with commas in it goes in quotes: {key}=\"'{value}'\")"
        )
    if lines[0].startswith("Error merging override") and error.__cause__ is not None:
        return f"{lines[0]}: {str(error.__cause__).splitlines()[0]}"
    if len(lines) > 1 and lines[1].startswith("Available options in"):
        options = []
        for line in lines[2:]:
            if line.startswith("Config search path"):
                break
            options.append(line)
        return f"{lines[0]}; {lines[1].rstrip(':').lower()}: {', '.join(options)}"
    return " ".join(lines[:2])


def unknown_key(key: str, overrides: list[str], config_name: str) -> str:
    """One line for an override of a key the config does not have, naming the nearest ones.

    The advice is about the first part of ``key`` that is missing (``modle`` in
    ``modle.hidden_size``), among the keys of the section that lacks it. A section of a search
    space takes new keys with ``+``, as the space itself does (``command_line.FREE_FORM``).
    """
    others = [o for o in overrides if o.partition("=")[0].lstrip("+~") != key]
    parts = key.split(".")
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            node = compose(
                config_name, overrides=others, return_hydra_config=key.startswith("hydra.")
            )
    except (HydraException, OmegaConfBaseException):
        return f"unknown key {key}"
    space = OmegaConf.select(node, "search.space")
    depth = 0
    while depth < len(parts) and isinstance(node, DictConfig) and parts[depth] in node:
        node, depth = node[parts[depth]], depth + 1
    if depth == len(parts):  # it exists: a mapping given keys it lacks, which it takes only with +
        return (
            f"{key} takes no new keys in place: add one with '+{key}.NAME=VALUE', or replace "
            f"the whole mapping with '~{key}' '+{key}=VALUE'"
        )
    parent, missing = ".".join(parts[:depth]), ".".join(parts[: depth + 1])
    known = [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []
    near = difflib.get_close_matches(parts[depth], known, n=3)
    if f"{parent}.".startswith("search.space.") and "distribution" not in known and not near:
        return unknown_space_key(key.removeprefix("search.space."), space)
    of = f" (in {key})" if missing != key else ""
    group = nearest_added_group(parts[0], known) if not parent else None
    if group is not None:
        return (
            f"unknown key {missing}{of}; did you mean the config group {group}, chosen with "
            f"+{group}=NAME? (its names: {', '.join(group_choices(group))})"
        )
    if near:
        where = f"{parent}." if parent else ""
        return f"unknown key {missing}{of}; did you mean {', '.join(where + k for k in near)}?"
    if known:
        return f"unknown key {missing}{of}; the keys of {parent or 'the config'}: " + ", ".join(
            known
        )
    return f"unknown key {key}"


def nearest_added_group(name: str, keys: list[str]) -> str | None:
    """The config group nearest a misspelt top-level ``name`` when it is nearer than any of the
    config's ``keys`` and not one of them: a group the defaults leave out (``sweep``) is no key
    until it is added, so the keys alone never name it (``+swep=quickstart``)."""
    groups = sorted(path.name for path in Path(CONFIG_DIR).iterdir() if path.is_dir())
    near = difflib.get_close_matches(name, keys + groups, n=1)
    return near[0] if near and near[0] not in keys else None


def unknown_dataset_option(key: str, overrides: list[str], config_name: str) -> str | None:
    """One line for ``dataset.options.<name>=...`` where the dataset has no such option, naming
    the nearest and the valid ones; None for an option of its loader that its YAML leaves out,
    which Hydra's advice (add it with ``+``) is right for."""
    from lstm_variants.data import dataset_options  # numpy: only here

    others = [o for o in overrides if o.partition("=")[0].lstrip("+~") != key]
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            dataset = OmegaConf.select(compose(config_name, overrides=others), "dataset.name")
        valid = list(dataset_options(str(dataset)))
    except (HydraException, OmegaConfBaseException, KeyError):
        return None
    option = key.split(".")[2]
    if option in valid:
        return None
    return (
        f"dataset {dataset!r} has no option {option!r}{nearest_hint(option, valid)}; "
        f"valid options: {', '.join(valid)}"
    )


def unknown_space_key(rest: str, space: DictConfig | None) -> str:
    """The advice for ``search.space.<rest>``, which the space lacks: add the config key, or
    reach a key the space writes dotted (``model.hidden_size: {...}``) with ``+``."""
    from lstm_variants.search import FIELDS  # numpy: only here

    section, _, last = rest.rpartition(".")
    is_field = last in FIELDS or difflib.get_close_matches(last, FIELDS, n=1)  # .hgh: a typo
    config_key = section if is_field and section else rest
    for dotted in map(str, space or {}):
        if "." in dotted and (rest == dotted or rest.startswith(f"{dotted}.")):
            sections = "{...}"
            for part in reversed(dotted.split(".")):
                sections = f"{{{part}: {sections}}}"
            return (
                f"search.space writes {dotted} as one dotted key, which an override cannot "
                f"reach: give the field with '+search.space.{rest}=VALUE' (it completes "
                f"{dotted}), or write the space in sections, {sections}"
            )
    add = f"'+search.space.{config_key}={{distribution: NAME, ...}}'"
    if not space:
        return (
            f"the search space is empty (no search chosen), so it has no {config_key}: choose "
            f"one, e.g. search=greff, or add the key with {add}"
        )
    return f"{config_key} is not in the search space: add it with {add}"
