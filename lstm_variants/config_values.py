"""What the config's keys must hold, checked before anything trains: numbers, yes/no switches,
choices, and a few rules across keys.

Hydra's command line takes ``train.max_epochs=abc`` as the string 'abc' and
``model.hidden_size=-5`` as a number. Without a check, the first surfaces as a ``TypeError``
traceback from deep inside training and the second as a shape error from JAX. ``check_values``
turns either into one ``ConfigError`` line, which names the key, what it must hold, and what it
got.

The rules are data (``RULES``): a dotted key, the kind of value (integer, number, yes/no), its
bounds, and whether ``null`` means "off". A key that a config does not have is not checked,
so one table serves both commands (``lstm-variants`` and ``lstm-variants-diagnose``). A cell's
options (``+cell.options.peepholes=...``) are checked against the cell's own attribute types
(``check_cell_options``): a flag given as 'abc' would otherwise count as true. Values are
only read, never converted: the config, and so every trial id, stays as written (except
relative file paths, which ``with_absolute_paths`` makes absolute).

Hydra's structured configs (dataclass schemas) would type-check at composition, but they also
convert what they check: an override ``train.input_noise=0`` would be stored as ``0.0``. A trial
id hashes the config as written, so records of existing studies could stop matching their
configs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lstm_variants.errors import ConfigError, nearest_hint


@dataclass(frozen=True)
class Rule:
    """A key's kind ('integer', 'number' or 'boolean') and bounds (inclusive unless ``open``)."""

    kind: str
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    low_open: bool = False
    nullable: bool = False
    null_means: str = "off"

    def describe(self) -> str:
        """What the rule asks for, in words: 'an integer >= 1', 'a number in [0, 1)', ..."""
        what = {
            "integer": "an integer",
            "number": "a number",
            "boolean": "true or false",
            "text": "a string",
        }[self.kind]
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            what += f" in {left}{_plain(self.low)}, {_plain(self.high)}{right}"
        elif self.low is not None:
            what += f" {'>' if self.low_open else '>='} {_plain(self.low)}"
        if self.nullable:
            what += f" (or null: {self.null_means})"
        return what

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if self.kind == "boolean":
            return isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str | os.PathLike)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "integer" and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def quote_advice(key: str, value: Any, rule: Rule) -> str | None:
    """How to pass a name that Hydra's command line read as a number or a switch
    (``data_dir=2024`` is the integer 2024), or None where the value is not such a name."""
    if rule.kind != "text" or not isinstance(value, bool | int | float):
        return None
    written = str(value).lower() if isinstance(value, bool) else str(value)
    return f"a name that looks like a number needs quotes: {key}=\"'{written}'\""


def _plain(bound: float) -> str:
    """A bound as written: 4294967295, not 4.29497e+09."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


# JAX keeps 32 bits of a seed (jax.random.key): 2**32 would be seed 0 again.
MAX_SEED = 2**32 - 1
SEED = Rule("integer", low=0, high=MAX_SEED)
COUNT = Rule("integer", low=1)
COUNT_OR_ZERO = Rule("integer", low=0)
# Layer widths: past 2**24 units no device holds one layer, and the products of such shapes
# overflow 32-bit (and, squared, 64-bit) integers before the memory check could say so.
MAX_WIDTH = 2**24
WIDTH = Rule("integer", low=1, high=MAX_WIDTH)
FINITE = Rule("number")
SWITCH = Rule("boolean")

RULES: dict[str, Rule] = {
    "seed": SEED,
    "population_size": COUNT_OR_ZERO,
    "cpu_devices": COUNT_OR_ZERO,
    "cpu_pinning": SWITCH,
    "checkpoint_minutes": Rule("number", low=0, nullable=True),
    "overwrite": SWITCH,
    "progress": SWITCH,
    "save_params": SWITCH,
    "sweep_report": SWITCH,
    "model.hidden_size": WIDTH,
    "model.num_layers": COUNT,
    "model.unroll": COUNT,
    "model.embed_size": Rule("integer", low=0, high=MAX_WIDTH),
    "model.init.input_scale": FINITE,
    "model.init.recurrent_scale": FINITE,
    "model.init.peephole_scale": FINITE,
    "model.init.bias_scale": FINITE,
    "optimizer.learning_rate": Rule("number", low=0),
    "optimizer.momentum": Rule("number", low=0, high=1, nullable=True),
    "optimizer.nesterov": SWITCH,
    "optimizer.clip_norm": Rule("number", low=0, low_open=True, nullable=True),
    "optimizer.clip_value": Rule("number", low=0, low_open=True, nullable=True),
    "train.max_epochs": COUNT,
    "train.patience": COUNT_OR_ZERO,
    "train.batch_size": COUNT,
    "train.eval_batch_size": COUNT,
    "train.input_noise": Rule("number", low=0),
    "train.dropout": Rule("number", low=0, high=1, high_open=True),
    "train.max_padding_waste": Rule("number", low=0, high=1),
    "train.length_buckets": COUNT,
    "search.trials": COUNT,
    "search.seed": COUNT_OR_ZERO,
    "search.shards": COUNT,
    "search.shard": COUNT_OR_ZERO,
    "search.paired": SWITCH,
    "search.rerun.top": COUNT,
    "search.rerun.first_seed": SEED,
    "diagnose.num_sequences": COUNT,
    "diagnose.records_per_cell": COUNT,
    "diagnose.first_lag": COUNT,
    "diagnose.last_lag": COUNT,
    "diagnose.long_memory_mostly": Rule("number", low=0, high=1),
    # Paths: Hydra reads data_dir=2024 as the integer 2024 (quote_advice).
    "data_dir": Rule("text", nullable=True, null_means="$LSTM_VARIANTS_DATA_DIR or the cache"),
    "compilation_cache": Rule("text", nullable=True),
    "out_dir": Rule("text", nullable=True, null_means="the run's own folder"),
    "search.rerun.from": Rule("text", nullable=True, null_means="no rerun"),
}


# Initialisers by name (``initializers.make_initializer``); only the last three fit a vector
# (peepholes, biases): glorot_uniform, lecun_normal and orthogonal need a fan-in and a fan-out.
INITIALIZER_NAMES = ("glorot_uniform", "orthogonal", "uniform", "normal", "lecun_normal", "zeros")
VECTOR_INITIALIZER_NAMES = ("uniform", "normal", "zeros")

# Keys that name one of a few choices. The first five are registries of modules that import
# JAX (``recurrence.RECURRENCES``, ``optimizers.OPTIMIZERS``, ``optimizers.LEARNING_RATE_SCALES``,
# ``optimizers.EVALUATION_POINTS``, ``train.LOSS_NORMALIZATIONS``): a
# test keeps each equal to its copy here, so that this module, and the command-line check that
# runs before a sweep's first job, need no JAX.
CHOICES: dict[str, tuple[str, ...]] = {
    "model.recurrence": ("fast", "xla", "reference"),
    "optimizer.name": ("sgd", "adam"),
    "optimizer.learning_rate_scale": ("none", "one_minus_momentum"),
    "optimizer.evaluate_at": ("lookahead", "theta"),
    "train.loss_normalization": ("frame", "sequence"),
    "diagnose.split": ("train", "valid", "test"),
    "diagnose.average": ("arithmetic", "geometric"),
    **{f"model.init.{kind}": INITIALIZER_NAMES for kind in ("input", "recurrent")},
    **{f"model.init.{kind}": VECTOR_INITIALIZER_NAMES for kind in ("peephole", "bias")},
}


def check_values(cfg: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` for the first value that breaks a rule of this module.

    The rules: ``RULES`` and ``CHOICES``, a study name that is a path, a model key nothing reads,
    a search space that is not one (``search.check_space``), a rerun without the study it
    reruns, and a momentum that Adam would silently ignore.
    """
    drawn = (cfg.get("search") or {}).get("sampled") or {}  # a trial's draws (search.trial_configs)
    for key, rule in RULES.items():
        found, value = _lookup(cfg, key)
        if found and not rule.allows(value):
            how = (
                f"the search draws it from search.space.{key}: change that distribution's fields"
                if isinstance(drawn, Mapping) and key in drawn
                else quote_advice(key, value, rule) or f"set it with {key}=VALUE"
            )
            raise ConfigError(f"{key} must be {rule.describe()}, got {value!r}; {how}")
    for key, choices in CHOICES.items():
        found, value = _lookup(cfg, key)
        if found and value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    check_trial_seeds(cfg)
    # configure_devices claims cpu_devices cores: 0 (one device per core) claims none, and the
    # job would run unpinned without a word.
    if cfg.get("cpu_pinning") is True and cfg.get("cpu_devices") == 0:
        raise ConfigError(
            "cpu_pinning=true claims cpu_devices cores for the job, and cpu_devices=0 (one device "
            "per core) claims none: set cpu_devices=N, the cores to claim, or cpu_pinning=false"
        )
    study = cfg.get("study")
    # The study names the output folders (outputs/<study>/..., multirun/<study>): a path in it,
    # such as ../../etc, would put records outside them.
    if "study" in cfg and study is None:
        raise ConfigError("study=null: give the study a folder name, e.g. study=greff_jsb_small")
    if study is not None and (
        str(study) in {"", ".", ".."} or "/" in str(study) or "\\" in str(study)
    ):
        raise ConfigError(
            f"study must be a folder name, not a path, got {study!r}; e.g. study=greff_jsb_small"
        )
    check_model_keys(cfg.get("model"))
    check_group_keys(cfg, drawn if isinstance(drawn, Mapping) else {})
    optimizer = cfg.get("optimizer") or {}
    from lstm_variants.search import (  # no JAX
        check_rerun_source_given,
        check_shard,
        check_space,
        flat_space,
    )

    search = cfg.get("search") or {}
    check_rerun_source_given(search)
    if isinstance(search.get("shards", 1), int) and isinstance(search.get("shard", 0), int):
        check_shard(search)
    space = search.get("space") or {}
    if "sampled" not in search:  # a trial's space was checked when drawn, maybe by an older rule
        check_space(space)
    space = flat_space(space)
    # Adam keeps its own first-moment decay; a momentum given with it would be recorded, sampled
    # and analysed as a hyperparameter without changing training.
    if optimizer.get("name") == "adam" and (
        optimizer.get("momentum") is not None or "optimizer.momentum" in space
    ):
        given = optimizer.get("momentum", "drawn by the search")
        raise ConfigError(
            f"optimizer.momentum ({given}) is used only by optimizer=sgd (Adam ignores it; "
            "search=greff samples it): add optimizer=sgd, or drop the momentum"
        )
    for key in ("nesterov", "learning_rate_scale", "evaluate_at"):
        if optimizer.get("name") == "adam" and (
            optimizer.get(key) is not None or f"optimizer.{key}" in space
        ):
            raise ConfigError(
                f"optimizer.{key} ({optimizer.get(key, 'drawn by the search')}) is used only by "
                "optimizer=sgd (Adam ignores it): add optimizer=sgd, or drop it"
            )
    # Heavy-ball momentum holds theta_t itself: there is no lookahead point to read instead.
    if optimizer.get("evaluate_at", "lookahead") != "lookahead" and (
        optimizer.get("nesterov") is False or "optimizer.nesterov" in space
    ):
        raise ConfigError(
            f"optimizer.evaluate_at={optimizer['evaluate_at']} needs optimizer.nesterov=true "
            "(plain momentum SGD holds theta_t itself): set optimizer.nesterov=true, or "
            "optimizer.evaluate_at=lookahead"
        )
    if "sampled" not in search:
        check_space_targets(cfg, space)


# Options whose names the cell or the dataset decide, checked there (``check_dataset_options``,
# the cell's constructor): a space may draw one that the base config does not set.
OPEN_SECTIONS = ("cell.options.", "dataset.options.")


def check_space_targets(cfg: Mapping[str, Any], space: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` for a search-space entry that names no setting of ``cfg``
    (``search.space.optimizer.learnig_rate``): it would be drawn and recorded as a
    hyperparameter while training used the default."""
    # Keys the code reads though a config may lack them ('~model.hidden_size' is refused for
    # what it is, elsewhere).
    known = {"model": MODEL_KEYS, "model.init": INIT_KEYS, "optimizer": GROUP_KEYS["optimizer"]}
    for key in space:
        parent, _, name = key.rpartition(".")
        if key.startswith(OPEN_SECTIONS) or _lookup(cfg, key)[0] or name in known.get(parent, ()):
            continue
        found, node = _lookup(cfg, parent) if parent else (True, cfg)
        hint = nearest_hint(name, node) if found and isinstance(node, Mapping) else ""
        raise ConfigError(
            f"search.space.{key} names no setting{hint}: a search draws values for existing "
            f"keys such as optimizer.learning_rate or model.hidden_size"
        )


def with_absolute_paths(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with ``data_dir`` and a ``dataset.options.path`` made absolute (``~`` expanded), and
    a blank ``data_dir`` unset.

    The one exception to "values stay as written": a relative path names a file only together
    with the directory a command ran in, which no record keeps. Stored as given, a record of
    ``dataset=text_file dataset.options.path=book.txt`` could not be loaded again from any other
    directory, and two studies run from different directories would give different books one
    trial id. Absolute, the trial id names the file.
    """
    out = dict(cfg)
    if isinstance(out.get("data_dir"), str) and not out["data_dir"].strip():
        # Blank is unset, as for $LSTM_VARIANTS_DATA_DIR (which an empty export makes blank
        # here): not the current directory, which Path('') would be.
        out["data_dir"] = None
    elif isinstance(out.get("data_dir"), str):
        out["data_dir"] = os.path.abspath(os.path.expanduser(out["data_dir"]))
    dataset = out.get("dataset")
    options = dataset.get("options") if isinstance(dataset, Mapping) else None
    if isinstance(options, Mapping) and isinstance(options.get("path"), str) and options["path"]:
        path = os.path.abspath(os.path.expanduser(options["path"]))
        out["dataset"] = dict(dataset) | {"options": dict(options) | {"path": path}}
    return out


def check_trial_seeds(cfg: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` when a search's trial seeds (``seed + i``, or the rerun's
    ``first_seed + i``) would pass ``MAX_SEED`` and so repeat seeds from 0 on."""
    search = cfg.get("search") or {}
    rerun = search.get("rerun") or {}
    first, key = (
        (rerun.get("first_seed"), "search.rerun.first_seed") if rerun else (cfg.get("seed"), "seed")
    )
    trials = search.get("trials")
    if isinstance(first, int) and isinstance(trials, int) and first + trials - 1 > MAX_SEED:
        raise ConfigError(
            f"{key}={first} with search.trials={trials} gives trial seeds up to "
            f"{first + trials - 1}, past {MAX_SEED} (JAX keeps 32 bits, so they would repeat "
            f"seeds from 0): give {key} <= {MAX_SEED - trials + 1}"
        )


# The keys of conf/model/default.yaml (a test keeps them equal).
MODEL_KEYS = ("hidden_size", "num_layers", "recurrence", "unroll", "init", "embed_size")
INIT_KEYS = tuple(f"{kind}{suffix}" for kind in ("input", "recurrent", "peephole", "bias")
                  for suffix in ("", "_scale"))  # fmt: skip


def check_model_keys(model: Mapping[str, Any] | None) -> None:
    """Raise ``ConfigError`` for a key under ``model`` that nothing reads.

    ``+model.hiden_size=3`` would otherwise train the default size under a new trial id.
    """
    if not isinstance(model, Mapping):
        return
    for prefix, given, known in (
        ("model", model, MODEL_KEYS),
        ("model.init", model.get("init") or {}, INIT_KEYS),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown {prefix} option(s) {unknown}; valid: {', '.join(sorted(known))}"
            )


# The keys that the nodes of these config groups may hold (a test keeps them equal to the union of
# each group's YAML files, with the keys the search writes into a trial's config).
GROUP_KEYS = {
    "optimizer": (
        "name",
        "learning_rate",
        "momentum",
        "nesterov",
        "learning_rate_scale",
        "evaluate_at",
        "clip_norm",
        "clip_value",
    ),
    "cell": ("name", "options"),
    "dataset": ("name", "options"),
    "search": ("trials", "seed", "paired", "shards", "shard", "space", "rerun")
    + ("sampled", "rerun_of", "trial"),  # written by the search into each trial's config
    # lstm-variants-diagnose's own section (conf/diagnose.yaml; a test keeps them equal)
    "diagnose": ("cells", "states", "records", "records_per_cell", "num_sequences", "split")
    + ("layer", "first_lag", "last_lag", "average", "long_memory_mostly", "init_study")
    + ("clipping_study",),
    "diagnose.init_study": ("enabled", "cells", "initializers", "gains"),
    "diagnose.clipping_study": ("enabled", "cells", "initializer", "gains", "clip_norms")
    + ("optimizer",),
}


def check_group_keys(cfg: Mapping[str, Any], drawn: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` for a key under a config group's node that nothing reads
    (``GROUP_KEYS``): ``+optimizer.learning_rat=0.1`` or ``+cell.option.forget_bias=1`` would be
    recorded, change the trial id, and train with the default. A key the search draws says so:
    its space names it (``drawn``, the trial's draws)."""
    for group, known in GROUP_KEYS.items():
        node = _lookup(cfg, group)[1]
        if not isinstance(node, Mapping):
            continue
        for key in sorted(set(node) - set(known)):
            where = (
                f"search.space.{group}.{key} draws it: rename or remove that entry"
                if f"{group}.{key}" in drawn
                else f"remove +{group}.{key}"
            )
            raise ConfigError(
                f"unknown {group} option '{key}'{nearest_hint(key, known)}; valid: "
                f"{', '.join(known)}; {where}"
            )


TYPE_RULES = {"bool": SWITCH, "int": Rule("integer"), "float": FINITE, "str": Rule("text")}


def rule_of_type(annotation: Any) -> Rule | None:
    """The rule of a Python type, given as the type or its name (an annotation under
    ``from __future__ import annotations``); None for any other type (no check).

    ``X | None`` is X's rule that also takes null (the default), and a path
    (``str | os.PathLike``) is a string.
    """
    name = getattr(annotation, "__name__", str(annotation))
    kinds = {part.strip() for part in name.split("|")}
    nullable = "None" in kinds
    kinds = (kinds - {"None", "os.PathLike"}) or kinds
    if len(kinds) != 1 or (rule := TYPE_RULES.get(kinds.pop())) is None:
        return None
    return replace(rule, nullable=True, null_means="the default") if nullable else rule


def check_cell_options(cell: Any, options: Mapping[str, Any], name: str | None = None) -> None:
    """Raise ``ConfigError`` for an option the cell (class or instance) does not have, with the
    nearest one and the valid ones, or whose value does not fit the attribute's type.

    ``name`` is the cell's registry name, for the message (default: its class name).
    """
    fields = getattr(cell, "__dataclass_fields__", {})
    valid = sorted(set(fields) - {"parent", "name", "features", "param_dtype"})
    for key in options:
        if key == "param_dtype":  # the trainer's arrays (data, carries, optimizer) are float32
            raise ConfigError(
                "cell.options.param_dtype is not a training setting: the app trains float32 "
                "parameters (a cell of another dtype is built in Python: lstm_variants.cells)"
            )
        if key not in valid:
            hint = nearest_hint(key, valid)
            label = name or getattr(cell, "__name__", type(cell).__name__)
            raise ConfigError(
                f"cell '{label}' has no option {key!r}{hint}; valid options: {', '.join(valid)}"
            )
    for key, value in options.items():
        field = fields.get(key)
        rule = rule_of_type(field.type) if field is not None else None
        if rule is not None and not rule.allows(value):
            raise ConfigError(
                f"cell.options.{key} must be {rule.describe()}, got {value!r}; "
                + (
                    quote_advice(f"+cell.options.{key}", value, rule)
                    or f"set it with +cell.options.{key}=VALUE"
                )
            )


def _lookup(cfg: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node
