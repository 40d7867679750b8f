"""Random search as data: a declarative space over config keys, sampled inside the job.

A search space maps config keys to distributions (``conf/search/*.yaml``), nested as the config
is, so that the command line reaches every range (``search.space.model.hidden_size.high=100``)::

    space:
      model:
        hidden_size:   {distribution: log_uniform, low: 20, high: 200, integer: true}
        num_layers:    {distribution: choice, values: [1, 2]}
      optimizer:
        learning_rate: {distribution: log_uniform, low: 1.0e-6, high: 1.0e-2}
        momentum:      {distribution: one_minus_log_uniform, low: 0.01, high: 1.0}
      train:
        input_noise:   {distribution: uniform, low: 0.0, high: 1.0}

A dotted key (``model.hidden_size: {...}``) means the same. ``flat_space`` joins the sections into
dotted keys, which is the form trials, records and analyses use; where a key is given twice the
later mapping's fields win, so ``+search.space.model.hidden_size.high=100`` also narrows a space
written with dotted keys.

Distributions (Greff et al. 2017, section 4.1, use the first three):

- ``uniform``: x ~ U(low, high);
- ``log_uniform``: log x ~ U(log low, log high);
- ``one_minus_log_uniform``: x = 1 - y with y log-uniform in [low, high] (Greff's momentum: values
  crowd towards 1, where momentum matters);
- ``choice``: one of ``values``, each equally likely.

``integer: true`` rounds a uniform or log-uniform draw to the nearest integer.

Reproducibility: trial i of a study draws key k (dotted) from ``numpy.random.default_rng((seed,
i, crc32(k)))``, so the study is fixed by (space, seed), adding a key to the space leaves the
other keys' draws alone, and every job can draw its own trials without talking to the others. With
``paired: true`` (the default) every cell of a study gets the same draws for trial i (and the same
model seed), so cells are compared on identical hyperparameters; ``paired: false`` mixes the job's
cell and dataset into the seed (``unpaired_key``), never its number in the multirun, which
changes when a cell is added to the sweep or the trials are sharded.

A rerun (``search.rerun``, ``conf/search/rerun_best.yaml``) draws nothing: it takes an earlier
study's best draws and trains them again with fresh seeds (``rerun_configs``).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstm_variants.atomic_files import file_identity
from lstm_variants.cell_label import cell_label
from lstm_variants.errors import ConfigError

DISTRIBUTIONS = ("uniform", "log_uniform", "one_minus_log_uniform", "choice")
FIELDS = ("distribution", "low", "high", "integer", "values")


def flat_space(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``space`` with its sections joined into dotted keys (module docstring).

    A mapping is a section when it holds only mappings and no field of a distribution (or
    nothing, once ``~search.space.train.input_noise`` took its only key); any other value is a
    distribution (``low`` alone: a range narrowed from the command line, which the same key
    given earlier completes), which ``sample_value`` checks.
    """
    flat: dict[str, Any] = {}
    for name, node in space.items():
        key = f"{prefix}{name}"
        is_section = (
            isinstance(node, Mapping)
            and not set(node) & set(FIELDS)
            and all(isinstance(value, Mapping) for value in node.values())
        )
        entries = flat_space(node, f"{key}.") if is_section else {key: node}
        for entry, spec in entries.items():
            earlier = flat.get(entry)
            both_mappings = isinstance(earlier, Mapping) and isinstance(spec, Mapping)
            flat[entry] = {**earlier, **spec} if both_mappings else spec
    return flat


def sample_value(spec: Mapping[str, Any], rng: np.random.Generator, key: str = "?") -> Any:
    """Draw one value of ``spec`` (see the module docstring) with ``rng``.

    Raises:
      ConfigError: the distribution is missing or unknown, a field is unknown or belongs to
        another distribution, ``integer`` is not a bool, or the bounds are invalid (not finite,
        not ordered, or not positive where a logarithm is taken).
    """
    if not isinstance(spec, Mapping) or "distribution" not in spec:
        raise ConfigError(
            f"search space key {key}: expected {{distribution: {'|'.join(DISTRIBUTIONS)}, ...}}, "
            f"got {dict(spec) if isinstance(spec, Mapping) else spec!r}; name its distribution"
        )
    unknown = sorted(set(spec) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"search space key {key}: unknown field {', '.join(map(repr, unknown))}; "
            f"a distribution takes {', '.join(FIELDS)}"
        )
    name = spec["distribution"]
    if name not in DISTRIBUTIONS:
        raise ConfigError(
            f"search space key {key}: unknown distribution {name!r}; "
            f"valid: {', '.join(DISTRIBUTIONS)}"
        )
    takes = ("values",) if name == "choice" else ("low", "high", "integer")
    misplaced = sorted(set(spec) - {"distribution", *takes})
    if misplaced:
        # A field given with '+' merges into the key's distribution: it must belong to it.
        raise ConfigError(
            f"search space key {key}: {name} takes {', '.join(takes)}, not "
            f"{', '.join(misplaced)}; to change the distribution, replace the whole key: "
            f"'~search.space.{key}' '+search.space.{key}={{distribution: ..., ...}}'"
        )
    if name == "choice":
        values = spec.get("values")
        if not isinstance(values, Sequence) or isinstance(values, str) or not values:
            raise ConfigError(
                f"search space key {key}: choice needs a non-empty 'values' list, got {values!r}"
            )
        return values[int(rng.integers(len(values)))]
    if not isinstance(spec.get("integer", False), bool):
        raise ConfigError(
            f"search space key {key}: integer must be true or false, got {spec['integer']!r}"
        )
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"search space key {key}: {name} needs numeric 'low' and 'high'"
        ) from None
    # An infinite bound is no range to draw from (numpy overflows on it, mid-job).
    if not (math.isfinite(low) and math.isfinite(high) and low <= high) or (
        name != "uniform" and low <= 0
    ):
        raise ConfigError(
            f"search space key {key}: {name} needs finite bounds, "
            f"{'0 < ' if name != 'uniform' else ''}low <= high, got low={low}, high={high}"
        )
    if name == "uniform":
        value = rng.uniform(low, high)
    else:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
        if name == "one_minus_log_uniform":
            value = 1.0 - value
    return int(round(value)) if spec.get("integer", False) else float(value)


def sample_trial(
    space: Mapping[str, Mapping[str, Any]], seed: int, trial: int, job: int | None = None
) -> dict[str, Any]:
    """The values of trial ``trial``: one draw per key of ``space``, reproducible (module docstring).

    Args:
      space: config key -> distribution spec, dotted or in sections (``flat_space``).
      seed: the study's search seed.
      trial: the trial index, from 0.
      job: mixed into the seed unless None (``paired: false``: ``unpaired_key``).
    """
    prefix = (seed, trial) if job is None else (seed, job, trial)
    return {
        key: sample_value(spec, np.random.default_rng((*prefix, zlib.crc32(key.encode()))), key)
        for key, spec in flat_space(space).items()
    }


def check_space(space: Any) -> None:
    """Raise ``ConfigError`` unless ``space`` maps config keys to valid distributions (each is
    drawn once, so a job learns of a bad one before it trains, not a traceback mid-study)."""
    if not isinstance(space, Mapping):
        raise ConfigError(
            f"search.space must map config keys to distributions, got {space!r}; e.g. "
            "{model.hidden_size: {distribution: log_uniform, low: 20, high: 200, integer: true}}"
        )
    if "seed" in flat_space(space):
        raise ConfigError(
            "search.space cannot draw seed: trial i trains with seed + i, so the draw would be "
            "replaced; set the first trial's seed with seed=N (search.seed seeds the draws)"
        )
    sample_trial(space, seed=0, trial=0)


def set_dotted(cfg: dict, key: str, value: Any) -> None:
    """``cfg[a][b][c] = value`` for ``key = 'a.b.c'``, creating missing sections.

    Raises:
      ConfigError: a section on the way is not a mapping.
    """
    *sections, last = key.split(".")
    node = cfg
    for section in sections:
        node = node.setdefault(section, {})
        if node is None or not isinstance(node, dict):
            raise ConfigError(f"search space key {key}: '{section}' is not a config section")
    node[last] = value


def check_shard(search: Mapping[str, Any]) -> None:
    """Raise ConfigError unless ``search.shard`` is one of 0 to ``search.shards`` - 1."""
    shards, shard = int(search.get("shards", 1)), int(search.get("shard", 0))
    if not 0 <= shard < shards:
        raise ConfigError(
            f"search.shard must be one of 0 to search.shards - 1, got shard={shard}, "
            f"shards={shards}; e.g. search.shards={max(shards, 1)} "
            f"'search.shard=range({max(shards, 1)})'"
        )


def unpaired_key(cfg: Mapping[str, Any], space: Mapping[str, Any]) -> int:
    """What an unpaired job (``paired: false``) mixes into its draws' seed: a hash of its cell
    (``cell_label``, without the options ``space`` draws) and its dataset (name and options, but
    ``download``, which says how to get the files). Hydra's job number would not do: it is the
    job's place in the grid, so a cell added to the sweep, the cells in another order, or the
    trials sharded differently would draw, and train, other trials than the study holds."""
    dataset = cfg.get("dataset") or {}
    options = {k: v for k, v in (dataset.get("options") or {}).items() if k != "download"}
    cell = cell_label({"cell": cfg.get("cell") or {}, "search": {"sampled": dict(space)}})
    text = json.dumps([cell, dataset.get("name"), options], sort_keys=True, default=str)
    return zlib.crc32(text.encode())


def trial_configs(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The trial configs of one job: its resolved config with each trial's draws filled in.

    ``cfg['search']`` holds ``space``, ``trials``, ``seed``, ``paired`` and the job's share of the
    trials (``shard`` of ``shards``: trials i with ``i % shards == shard``). Each trial config has
    the drawn values at their keys, ``seed = cfg['seed'] + i`` (the model's init and data seed),
    and ``search`` reduced to what identifies the trial: ``{'seed', 'trial', 'space', 'sampled'}``
    (the space, for analyses that need each key's range and scale), so that
    asking for more trials, or sharding them differently, leaves every trial's id unchanged.
    """
    search = cfg.get("search") or {}
    if "rerun" in search:
        return rerun_configs(cfg)
    space = search.get("space") or {}
    check_space(space)
    space = flat_space(space)
    trials = int(search.get("trials", 1))
    check_shard(search)
    shards, shard = int(search.get("shards", 1)), int(search.get("shard", 0))
    if trials < 1:
        raise ConfigError(f"search.trials must be at least 1, got {trials}")
    seed = int(search.get("seed", 0))
    job_key = None if search.get("paired", True) else unpaired_key(cfg, space)
    base = {key: value for key, value in cfg.items() if key != "search"}
    configs = []
    for trial in range(shard, trials, shards):
        sampled = sample_trial(space, seed, trial, job_key)
        trial_cfg = copy.deepcopy(base)
        for key, value in sampled.items():
            set_dotted(trial_cfg, key, value)
        trial_cfg["seed"] = int(cfg["seed"]) + trial
        trial_cfg["search"] = {"seed": seed, "trial": trial, "space": space, "sampled": sampled}
        configs.append(trial_cfg)
    return configs


def check_rerun_source_given(search: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` if ``search`` is a rerun (``search=rerun_best``) without the study
    to rerun (``search.rerun.from``)."""
    if "rerun" in search and not (search["rerun"] or {}).get("from"):
        raise ConfigError(
            "search.rerun.from is not set: name the study to rerun, e.g. "
            "search.rerun.from=multirun/greff_jsb"
        )


def rerun_configs(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The trial configs of one job of a rerun: an earlier study's best draws with fresh seeds.

    The best of N random-search trials is an optimistic estimate of its configuration: it won
    partly by the luck of its seed. ``cfg['search']['rerun']`` names the earlier study (``from``)
    and how many of its best trials of the job's cell and dataset to take (``top``, ranked by
    validation); each is trained ``search.trials`` times with model seeds ``first_seed``,
    ``first_seed + 1``, ... A trial is identified by its draw (``rerun_of``, the trial it reruns,
    and ``sampled``, its values) and its seed index (``trial``), so asking for more seeds or a
    larger ``top`` leaves the existing trials' ids alone. The job's share (``shard`` of
    ``shards``) is taken from the (draw, seed) pairs in order.

    Raises:
      ConfigError: ``from`` holds no usable trial of this cell on this dataset.
    """
    search = cfg["search"]
    rerun = search["rerun"] or {}
    check_rerun_source_given(search)
    seeds, top = int(search.get("trials", 1)), int(rerun.get("top", 1))
    check_shard(search)
    shards, shard = int(search.get("shards", 1)), int(search.get("shard", 0))
    if seeds < 1 or top < 1:
        raise ConfigError(
            f"a rerun needs search.trials >= 1 and search.rerun.top >= 1, got trials={seeds}, "
            f"top={top}"
        )
    draws = best_draws(rerun["from"], cell_label(cfg), cfg["dataset"], top)
    base = {key: value for key, value in cfg.items() if key != "search"}
    check_trained_alike(source_training(rerun["from"], cfg["dataset"]), base, rerun["from"])
    configs = []
    for index in range(shard, len(draws) * seeds, shards):
        draw, trial = draws[index // seeds], index % seeds
        trial_cfg = copy.deepcopy(base)
        for key, value in draw["sampled"].items():
            set_dotted(trial_cfg, key, value)
        trial_cfg["seed"] = int(rerun.get("first_seed", 1000)) + trial
        trial_cfg["search"] = {
            "seed": int(search.get("seed", 0)),
            "trial": trial,
            "space": draw["space"],
            "sampled": draw["sampled"],
            "rerun_of": draw["trial_id"],
        }
        configs.append(trial_cfg)
    return configs


def best_draws(
    source: str, cell: str, dataset: Mapping[str, Any], top: int
) -> list[dict[str, Any]]:
    """The draws of the ``top`` trials of ``cell`` (a label of ``cell_label``: the name
    and the options the cell was built with) on ``dataset`` (its name and options) with the best
    validation result under ``source``: ``[{'trial_id', 'sampled', 'space'}]``, best first."""
    # pandas: imported for reruns only
    from lstm_variants.analysis.best import ranked_by_validation
    from lstm_variants.analysis.collect import AnalysisError

    try:
        trials = _source_trials(source)
    except AnalysisError as error:
        raise ConfigError(f"search.rerun.from: {error}") from None
    same_dataset = trials["config_json"].map(
        lambda text: json.loads(text).get("dataset") == dataset
    )
    usable = ranked_by_validation(trials[(trials["cell"].astype(str) == cell) & same_dataset])
    if usable.empty:
        raise ConfigError(
            f"search.rerun.from: no trial of cell '{cell}' on {dataset.get('name')} with these "
            f"dataset options has a result under {source}; cells there: "
            + ", ".join(sorted(trials["cell"].astype(str).unique()))
        )
    draws: dict[str, dict[str, Any]] = {}  # one per distinct draw: a rerun study repeats them
    for row in usable.itertuples():
        search = json.loads(row.config_json).get("search") or {}
        sampled = search.get("sampled") or {}
        key = json.dumps(sampled, sort_keys=True)
        if key not in draws:
            draws[key] = {
                "trial_id": search.get("rerun_of") or row.trial_id,
                "sampled": sampled,
                "space": search.get("space") or {},
            }
        if len(draws) == top:
            break
    return list(draws.values())


# The optimizer settings a rerun must share with the trials it reruns, at the value that records
# written before each setting existed were trained with (``check_trained_alike``).
RERUN_AS_TRAINED = {"learning_rate_scale": "none", "evaluate_at": "lookahead"}


def trained_as(cfg: Mapping[str, Any]) -> dict[str, str]:
    """A trial config's ``RERUN_AS_TRAINED`` optimizer settings; records that predate one have
    its old value."""
    optimizer = cfg.get("optimizer") or {}
    return {key: optimizer.get(key) or old for key, old in RERUN_AS_TRAINED.items()}


def source_training(source: str, dataset: Mapping[str, Any]) -> list[dict[str, str]]:
    """``trained_as`` of every trial on ``dataset`` (its name and options) under ``source``, every
    cell's: a rerun compares its cells, so it takes each cell's best draws one way."""
    trials = _source_trials(source)
    configs = (json.loads(text) for text in trials["config_json"])
    return [trained_as(cfg) for cfg in configs if cfg.get("dataset") == dataset]


def check_trained_alike(
    trained: Sequence[Mapping[str, str]], base: Mapping[str, Any], source: str
) -> None:
    """Raise ConfigError where a rerun would step or select differently from the trials it reruns
    (``trained``: their ``trained_as`` settings, ``source_training``).

    A drawn learning rate eta means a step of eta under ``learning_rate_scale: none`` and of
    eta (1 - mu) under ``one_minus_momentum``: rerun under the other setting, the best draws
    of the source study would be other configurations, and their means would say nothing about
    it (V's 24 draws of ``docs/studies/greff_jsb``, rescaled, ended a median 2.3 nats worse).
    ``evaluate_at`` likewise: the point validated picks the best epoch and is the one tested, so
    the rerun's results would not be the source's draws measured again.

    The source's trials must agree among themselves too: in a study resumed after its setting
    changed, some cells' best draws were trained one way and some the other, so any one rerun
    setting would be refused for some cells, each job's error line asking for the other value.
    """
    wanted = trained_as(base)
    for key in RERUN_AS_TRAINED:
        values = sorted({settings[key] for settings in trained})
        if len(values) > 1:
            raise ConfigError(
                f"search.rerun.from: the trials under {source} were trained with "
                f"optimizer.{key}={' and '.join(values)} (a study resumed after the setting "
                "changed?), and a rerun takes one: move one setting's records (records/<trial "
                "id>.json and .npz) into a directory of their own and rerun from it"
            )
        others = sorted(set(values) - {wanted[key]})
        if others:
            raise ConfigError(
                f"search.rerun.from: the trials under {source} were trained with "
                f"optimizer.{key}={others[0]}, this rerun has {wanted[key]}: add "
                f"optimizer.{key}={others[0]} to rerun them as they were trained"
            )


# The last source study's trials table, with its record files as they were read. A rerun's jobs
# in one process (Hydra's basic launcher) then read it once, not once per cell (8 s per job at
# 5,400 records).
_last_source: dict[tuple[Any, ...], Any] = {}


def _source_trials(source: str) -> Any:
    """The trials table of the records under ``source`` (``collect``), read again only when its
    record files are not the ones read last (added, removed or rewritten)."""
    from lstm_variants.analysis.collect import collect, find_record_files, require_trials

    key = (
        str(Path(source).resolve()),
        # An unreadable file has no identity; collect says so in its skipped list.
        tuple((str(path), file_identity(path)) for path in find_record_files([source])),
    )
    if key not in _last_source:
        _last_source.clear()
        collection = collect([source])
        _last_source[key] = require_trials(collection)
        if collection.skipped_line() is not None:  # a cell's best draw may be the one left out
            print(
                f"lstm-variants: warning: search.rerun.from: {collection.skipped_line()}",
                file=sys.stderr,
            )
    return _last_source[key]


def space_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The sampled keys of a list of trial configs, in order of first appearance."""
    keys: dict[str, None] = {}
    for cfg in configs:
        keys.update(dict.fromkeys((cfg.get("search") or {}).get("sampled", {})))
    return list(keys)
