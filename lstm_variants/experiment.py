"""From resolved configs (plain dicts) to trained runs and their records.

This is the seam between configuration and code: the Hydra entry point (``cli``), tests and
notebooks all call ``run_trials`` (or ``run_trial`` for one) with plain dicts, so a run is
reproducible from (config, seed) alone and its record says everything needed to repeat it. The
dicts are resolved trial configs: ``compose.compose_trials`` builds them from overrides, as the
command does.

Configs that differ only in ``MEMBER_KEYS`` (hidden size, optimizer numbers, input noise, dropout,
forget bias, seed) are trained together as one population (``population.train_population``); each
still gets the record it would get alone.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from lstm_variants import native_lstm
from lstm_variants.atomic_files import file_identity, remove_leftovers
from lstm_variants.cells import LSTMCell, check_cell, make_cell
from lstm_variants.config_values import check_values
from lstm_variants.data import SequenceDataset
from lstm_variants.durations import format_duration
from lstm_variants.errors import ConfigError, RecordError
from lstm_variants.initializers import make_initializer
from lstm_variants.loggers import make_logger
from lstm_variants.model import SequenceModel
from lstm_variants.optimizers import make_member_optimizer, member_hyperparameters
from lstm_variants.params_file import params_path, save_params
from lstm_variants.population import Member, train_population
from lstm_variants.population_checkpoint import TRIALS, CheckpointSettings, signals_deferred
from lstm_variants.population_lock import LOCKS, population_key, population_lock
from lstm_variants.recorded_data import check_recorded_data, config_dataset
from lstm_variants.records import (
    RECORD_VERSION,
    code_version,
    environment,
    read_record,
    trial_id,
    write_json_atomic,
)
from lstm_variants.train import TrainSettings, parameter_count

# The config keys whose values may differ inside one population, as (section, key) paths.
MEMBER_KEYS = (
    ("model", "hidden_size"),
    ("optimizer", "learning_rate"),
    ("optimizer", "momentum"),
    ("optimizer", "clip_norm"),
    ("optimizer", "clip_value"),
    ("train", "input_noise"),
    ("train", "dropout"),
    ("cell", "options", "forget_bias"),
    ("seed",),
)

# The ``train`` keys that are member values, not ``TrainSettings``.
MEMBER_TRAIN_KEYS = tuple(path[1] for path in MEMBER_KEYS if path[0] == "train")


def cell_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Cell attributes from ``cfg['cell']['options']`` and the initialisers in ``cfg['model']['init']``."""
    init = cfg["model"]["init"]
    options = {
        "kernel_init": make_initializer(init["input"], init.get("input_scale", 1.0)),
        "recurrent_kernel_init": make_initializer(
            init["recurrent"], init.get("recurrent_scale", 1.0)
        ),
        "peephole_init": make_initializer(init["peephole"], init.get("peephole_scale", 0.1)),
        "bias_init": make_initializer(init["bias"], init.get("bias_scale", 1.0)),
    }
    return options | dict(cfg["cell"].get("options") or {})


def build_model(cfg: Mapping[str, Any], data: SequenceDataset) -> SequenceModel:
    """The sequence model of ``cfg`` sized for ``data``."""
    name = cfg["cell"]["name"]
    model_cfg = cfg["model"]
    model = SequenceModel(
        cell=name,
        hidden_size=int(model_cfg["hidden_size"]),
        output_size=data.output_size,
        num_layers=int(model_cfg.get("num_layers", 1)),
        readout_at=data.target_at,
        cell_options=tuple(sorted(cell_options(cfg).items())),
        recurrence=model_cfg.get("recurrence", "fast"),
        unroll=int(model_cfg.get("unroll", 1)),
        vocab_size=data.input_size if data.train.tokens else 0,
        embed_size=int(model_cfg.get("embed_size") or 0),
    )
    check_cell(name, cfg["cell"].get("options") or {})
    return model


def train_settings(cfg: Mapping[str, Any]) -> TrainSettings:
    """The shared settings of ``cfg['train']``; the ``MEMBER_TRAIN_KEYS`` are member values."""
    shared = {k: v for k, v in cfg["train"].items() if k not in MEMBER_TRAIN_KEYS}
    known = set(TrainSettings.__dataclass_fields__)
    unknown = set(shared) - known
    if unknown:
        valid = sorted(known | set(MEMBER_TRAIN_KEYS))
        raise ConfigError(f"unknown train option(s) {sorted(unknown)}; valid: {valid}")
    return TrainSettings(**shared)


def hyperparameters(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The values a comparison table groups and regresses on, flat."""
    optimizer = cfg["optimizer"]
    return {
        "hidden_size": cfg["model"]["hidden_size"],
        "num_layers": cfg["model"].get("num_layers", 1),
        "optimizer": optimizer["name"],
        "learning_rate": optimizer["learning_rate"],
        "momentum": optimizer.get("momentum"),
        "clip_norm": optimizer.get("clip_norm"),
        "clip_value": optimizer.get("clip_value"),
        "batch_size": cfg["train"]["batch_size"],
        "input_noise": cfg["train"].get("input_noise", 0.0),
        "dropout": cfg["train"].get("dropout", 0.0),
        "forget_bias": initial_forget_bias(cfg["cell"]),
    }


def initial_forget_bias(cell: Mapping[str, Any]) -> float | None:
    """The bias b_f a cell config's forget gate starts from: its ``forget_bias`` option, else its
    variant's own (``lstm_b``: 1.0), else 0.0; None for a cell without b_f (no forget gate,
    CIFG's f = 1 - i, GRU and the other gated cells)."""
    built = make_cell(cell["name"], 1, **(cell.get("options") or {}))
    if not isinstance(built, LSTMCell) or "f" not in built.gates():
        return None
    return float(built.forget_bias)


def member_of(cfg: Mapping[str, Any]) -> Member:
    """The population member a config describes. Its forget bias is the one its own cell starts
    from (``initial_forget_bias``), never left to the population's model: that is built from one
    member's config, whose bias would otherwise reach members that set none."""
    return Member(
        hidden_size=int(cfg["model"]["hidden_size"]),
        seed=int(cfg["seed"]),
        input_noise=float(cfg["train"].get("input_noise") or 0.0),
        dropout=float(cfg["train"].get("dropout") or 0.0),
        forget_bias=initial_forget_bias(cfg["cell"]),
        **member_hyperparameters(cfg["optimizer"]),
    )


def shared_part(cfg: Mapping[str, Any]) -> str:
    """The config without its ``MEMBER_KEYS``, canonically: equal for configs of one population."""
    shared = copy.deepcopy(dict(cfg))
    for path in MEMBER_KEYS:
        node = shared
        for key in path[:-1]:
            node = node.get(key) or {}
        node.pop(path[-1], None)
    for key in (*OPERATIONAL_KEYS, "search"):  # search: each trial's own index and draws
        shared.pop(key, None)
    return json.dumps(shared, sort_keys=True, default=str)


# Keys that say how to run, not what to train: they never change a trial's id.
OPERATIONAL_KEYS = (
    "overwrite",
    "progress",
    "save_params",
    "data_dir",
    "compilation_cache",
    "checkpoint_minutes",
    "cpu_devices",
    "cpu_pinning",
    "population_size",
    "logger",
    "reference_cell",
    "sweep_report",
)


# Keys added to the config after records were first written, with the value that reproduces the
# behaviour from before they existed: at that value a key is left out of the trial id, so earlier
# records keep their ids (a rerun of an old study still finds and skips them).
IDENTITY_NEUTRAL = {
    ("train", "loss_normalization"): "frame",
    ("train", "dropout"): 0.0,
    ("optimizer", "learning_rate_scale"): "none",
    ("optimizer", "evaluate_at"): "lookahead",
}


# Keys inside a section that say how to run, not what to train, with the value a trial's id takes
# for them whatever the config gives: ``dataset.options.download`` says whether missing files may
# be fetched, not which data (each record's ``data_sha256`` says that). At the default, true, so
# the ids of records written before stay: a study resumed offline (``download=false``) then skips
# them instead of training every trial again beside them.
IDENTITY_AS = {("dataset", "options", "download"): True}


def trial_identity(cfg: Mapping[str, Any]) -> str:
    """The trial id of ``cfg``: a hash of the resolved config without ``OPERATIONAL_KEYS``,
    without the ``IDENTITY_NEUTRAL`` keys that are at their neutral value and with the
    ``IDENTITY_AS`` keys it has at their one value."""
    identity = copy.deepcopy({k: v for k, v in cfg.items() if k not in OPERATIONAL_KEYS})
    for (*parents, key), value in (*IDENTITY_NEUTRAL.items(), *IDENTITY_AS.items()):
        node = identity
        for parent in parents:
            node = node.get(parent) if isinstance(node, Mapping) else None
        if not isinstance(node, dict) or key not in node:
            continue
        if (*parents, key) in IDENTITY_AS:
            node[key] = value
        elif node[key] == value:
            del node[key]
    return trial_id(identity)


def record_path(cfg: Mapping[str, Any], output_dir: Path) -> Path:
    """Where the record of ``cfg`` goes: ``output_dir/records/<trial_id>.json``."""
    return Path(output_dir) / "records" / f"{trial_identity(cfg)}.json"


# The sections every trial config has; a hand-written dict would fail on the first one missing.
SECTIONS = ("cell", "dataset", "model", "optimizer", "train", "seed")


def check_trial_dicts(cfgs: Sequence[Mapping[str, Any]]) -> None:
    """Raise TypeError, or ConfigError for a missing section, unless ``cfgs`` is a list of
    resolved trial configs (``compose.compose_trials`` gives them from Python)."""
    how = "lstm_variants.compose.compose_trials('cell=gru', ...) gives them"
    if isinstance(cfgs, Mapping) or not all(isinstance(cfg, dict) for cfg in cfgs):
        raise TypeError(f"run_trials takes a list of resolved plain dicts, one per trial: {how}")
    for cfg in cfgs:
        missing = [section for section in SECTIONS if section not in cfg]
        if missing:
            raise ConfigError(f"a trial config without {', '.join(missing)}: {how}")


def run_trials(
    cfgs: Sequence[Mapping[str, Any]],
    output_dir: Path,
    progress: bool = True,
    *,
    closing: contextlib.ExitStack | None = None,
) -> list[tuple[Path, dict | None]]:
    """Train every config whose record does not exist yet, as few populations as possible.

    Configs that share everything but ``MEMBER_KEYS`` form one population, of at most
    ``population_size`` members (a config key; 0 or absent: no limit). A config whose record
    exists (and whose ``overwrite`` is false) is skipped and gets None as its record, so a rerun
    trains only what is missing. Each record is written as soon as its population finishes, so a
    crash loses at most the population in flight, and less with ``checkpoint_minutes``: the
    population's training state is saved that often, and the same call resumes from it. After
    each population a progress line (trials done, best validation so far, ETA) goes to stderr.

    A population trains under a lock in ``output_dir`` (``population_lock``): another process
    given the same trials waits for it, then writes only the records still missing. A record to
    be skipped that was trained on other data than its config gives now stops the call
    (``recorded_data``).

    The config's ``logger`` (TensorBoard, MLflow, W&B) closes with one line saying where the
    trials went: when this call returns, or, given ``closing``, when that stack exits, so that a
    caller can print the records first (the command line does).

    Returns:
      (record path, record or None) for each config, in order.

    Raises:
      ConfigError: a bad config value, a records place taken by a file or folder, or a record
        trained on other data.
    """
    check_trial_dicts(cfgs)
    code_version()  # the commit read now, before training: a commit made meanwhile trained nothing
    for cfg in cfgs:  # every config before any trains: a bad value fails fast, not after hours
        check_values(cfg)
    paths = [record_path(cfg, output_dir) for cfg in cfgs]
    # Each record file as found now: one replaced later was written by another process.
    found = [file_identity(path) for path in paths]
    results: list[tuple[Path, dict | None]] = [(path, None) for path in paths]
    kept = {  # the records to skip, read once
        index: record
        for index, (cfg, path) in enumerate(zip(cfgs, paths, strict=True))
        if not cfg.get("overwrite", False) and (record := _recorded(path)) is not None
    }
    missing = set(range(len(cfgs))) - kept.keys()
    # Where the records go must take them: found before hours of training, not after.
    records = Path(output_dir) / "records"
    for folder, what in ((records, "records"), (Path(output_dir) / LOCKS, "population locks")):
        if missing and folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder} is a file where the {what} folder goes: move it away")
    taken = next((paths[index] for index in sorted(missing) if paths[index].is_dir()), None)
    if taken is not None:
        raise ConfigError(f"{taken} is a folder where a trial's record goes: move it away")
    if missing and records.is_dir():
        remove_leftovers(records)  # of a run killed while it wrote a record
    loaded: dict[str, SequenceDataset] = {}  # by dataset_key: each dataset is loaded once
    check_recorded_data(cfgs, paths, kept, loaded)
    work = planned_populations(cfgs, paths, missing, output_dir)
    progress_line = _ProgressLine(total=len(missing), skipped=len(cfgs))
    # Optional TensorBoard / MLflow / W&B mirror of each record; the JSON record stays the truth.
    logger = make_logger(cfgs[0], output_dir) if work else None
    if logger is not None and closing is not None:
        closing.callback(logger.close)
    try:
        for populations in work.values():
            first = cfgs[populations[0][0]]
            data = config_dataset(first, loaded)
            model = build_model(first, data)
            data_sha256 = data.fingerprint()
            for index in (i for population in populations for i in population):
                build_model(cfgs[index], data)  # every member's cell options, not just the first's
            # One optimizer object per group: compiled populations are reused by identity.
            optimizer = make_member_optimizer(first["optimizer"])
            for population in populations:
                with population_lock(output_dir, [paths[i].stem for i in population]):
                    # Another process given the same trials may have recorded them meanwhile.
                    elsewhere = _recorded_elsewhere(population, missing, paths, found)
                    missing.difference_update(elsewhere)
                    progress_line.recorded_elsewhere(len(elsewhere))
                    written = [index for index in population if index in missing]
                    if not written:
                        print(
                            f"skipped {len(elsewhere)} trial(s): another process training into "
                            f"{output_dir} recorded them while this one ran",
                            file=sys.stderr,
                        )
                        continue
                    checkpoint = checkpoint_settings(
                        first, output_dir, [paths[i] for i in population]
                    )
                    started = time.time()
                    runs = train_population(
                        model,
                        optimizer,
                        data,
                        train_settings(first),
                        [member_of(cfgs[index]) for index in population],
                        progress=progress,
                        log=lambda line: print(line, file=sys.stderr),
                        checkpoint=checkpoint,
                    )
                    # Ctrl-C waits for the population's records (seconds at most): cut short,
                    # its unrecorded trials would train again as another, smaller population,
                    # unless a checkpoint happened to be due when it finished.
                    with signals_deferred():
                        for index, result in zip(population, runs, strict=True):
                            if index not in missing:  # recorded before a kill stopped the others'
                                continue
                            record = make_record(cfgs[index], result, started, data_sha256)
                            # A retrained trial's old record goes before its parameter file is
                            # replaced: a kill in between then leaves no record naming a file
                            # that is not its own, and the rerun writes the missing record.
                            paths[index].unlink(missing_ok=True)
                            validated = record["metrics"].get("best_valid") is not None
                            record["params_file"] = write_params(
                                cfgs[index], paths[index], result.params, validated
                            )
                            write_json_atomic(paths[index], record)
                            results[index] = (paths[index], record)
                    if logger is not None:  # after: a slow tracking server never holds Ctrl-C
                        for index in written:
                            logger.log_trial(results[index][1])
                    if checkpoint is not None:  # every record is written: the state is not needed
                        remove_checkpoint(checkpoint)
                progress_line.update([results[index][1] for index in written])
        for directory in remove_stale_checkpoints(output_dir):
            print(
                f"removed {directory}: the checkpoint of a population regrouped since, all of "
                "whose trials are now recorded",
                file=sys.stderr,
            )
    finally:
        if logger is not None and closing is None:
            logger.close()
    return results


def _recorded(path: Path) -> dict[str, Any] | None:
    """The record at ``path`` if it is one the results table can use and that has its config
    (``records.read_record``), else None. A damaged one (cut short by a partial copy, edited by
    hand) is said in one line and its trial trains again: counted as done, it would be skipped by
    every rerun and by the table alike."""
    if not path.exists():
        return None
    try:
        return read_record(path)
    except RecordError as error:
        print(f"lstm-variants: warning: {error}; this trial trains again", file=sys.stderr)
        return None


def _recorded_elsewhere(
    population: Sequence[int],
    missing: set[int],
    paths: Sequence[Path],
    found: Sequence[tuple[int, ...] | None],
) -> set[int]:
    """The ``missing`` members of ``population`` whose record file is no longer the one ``found``
    when this call began, and reads: another process training into the same folder wrote it
    (``population_lock``), since this call writes a population's records only after asking. No
    clock is compared, so a file server's clock ahead of this host's changes nothing."""
    written = set()
    for index in population:
        now = file_identity(paths[index])
        if index in missing and now is not None and now != found[index]:
            with contextlib.suppress(RecordError):
                read_record(paths[index])
                written.add(index)
    return written


def planned_populations(
    cfgs: Sequence[Mapping[str, Any]], paths: Sequence[Path], missing: set[int], output_dir: Path
) -> dict[str, list[list[int]]]:
    """The populations that train the ``missing`` configs, by their shared part.

    A population whose training state was saved (``output_dir/checkpoints/*/trials.json``) and
    that holds a missing trial trains again whole, from its checkpoint, when every one of its
    trials is among ``cfgs`` and ``population_size`` still admits it: a run killed while it
    wrote its population's records then writes the remaining records from the same run (a
    finished population is only evaluated), and they are the ones an uninterrupted run writes.
    The other missing configs form populations of at most ``population_size`` members each.
    """
    by_trial = {path.stem: index for index, path in enumerate(paths)}
    work: dict[str, list[list[int]]] = {}
    claimed: set[int] = set()
    for _, trials, _ in saved_populations(output_dir):
        if any(trial not in by_trial for trial in trials):
            continue
        # In the order of cfgs, as the run that saved it built it (the checkpoint checks it).
        population = sorted(by_trial[trial] for trial in trials)
        if claimed.intersection(population) or not missing.intersection(population):
            continue
        if len(population) > (int(cfgs[population[0]].get("population_size") or 0) or math.inf):
            continue  # regrouped into smaller populations since (population_size)
        if len({shared_part(cfgs[index]) for index in population}) == 1:
            work.setdefault(shared_part(cfgs[population[0]]), []).append(population)
            claimed.update(population)
    groups: dict[str, list[int]] = {}
    for index in sorted(missing - claimed):
        groups.setdefault(shared_part(cfgs[index]), []).append(index)
    for part, indices in groups.items():
        size = int(cfgs[indices[0]].get("population_size") or 0) or len(indices)
        work.setdefault(part, []).extend(
            indices[start : start + size] for start in range(0, len(indices), size)
        )
    return work


class SavedPopulation(NamedTuple):
    """A population checkpoint's directory, trial ids and first save time (``TRIALS``)."""

    directory: Path
    trials: list[str]
    first_saved: float


def saved_populations(output_dir: Path) -> list[SavedPopulation]:
    """The population checkpoints under ``output_dir/checkpoints`` whose trial list reads."""
    populations = []
    for listing in sorted((Path(output_dir) / "checkpoints").glob(f"*/{TRIALS}")):
        try:
            noted = json.loads(listing.read_text())
            trials, first_saved = [str(t) for t in noted["trials"]], float(noted["first_saved"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # written by other code, or damaged: not ours to read or judge
        populations.append(SavedPopulation(listing.parent, trials, first_saved))
    return populations


def checkpoint_settings(
    cfg: Mapping[str, Any], output_dir: Path, record_paths: Sequence[Path]
) -> CheckpointSettings | None:
    """Where the population of ``record_paths`` saves its training state, every
    ``cfg['checkpoint_minutes']`` (None: off): ``output_dir/checkpoints/<hash of its trial ids>``."""
    minutes = cfg.get("checkpoint_minutes")
    if minutes is None:
        return None
    trials = tuple(sorted(path.stem for path in record_paths))
    directory = Path(output_dir) / "checkpoints" / population_key(trials)
    return CheckpointSettings(directory, every_seconds=60 * float(minutes), trials=trials)


def write_params(
    cfg: Mapping[str, Any], path: Path, params, validated: bool = True
) -> dict[str, Any] | None:
    """Save a trial's trained parameters beside its record at ``path`` before the record, which
    names the file and its sha256; nothing with ``cfg['save_params']`` false, or for a trial that
    never reached a validation (``validated`` false: diverged in its first epoch), whose "best"
    parameters would be its untrained initial ones."""
    if not cfg.get("save_params", True) or not validated:
        params_path(path).unlink(missing_ok=True)  # a retrained trial's old file is not its own
        return None
    return save_params(params_path(path), params)


def remove_checkpoint(checkpoint: CheckpointSettings) -> None:
    """Remove a population's checkpoints, and ``checkpoints/`` once it is empty."""
    shutil.rmtree(checkpoint.directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        checkpoint.directory.parent.rmdir()


def remove_stale_checkpoints(output_dir: Path) -> list[Path]:
    """Remove the population checkpoints under ``output_dir/checkpoints`` that no run will resume.

    A population is found by its trials, so one regrouped by a later run (another
    ``population_size``, more ``search.trials``) trains anew and its old checkpoint is never read
    again. It is stale once every one of its trials has a record written after it was first saved.
    The records of a population still in flight (``overwrite=true``) are older than its
    checkpoint, so another job's cleanup leaves it alone.

    Returns:
      The directories removed.
    """
    removed = []
    for directory, trials, first_saved in saved_populations(output_dir):
        records = [Path(output_dir) / "records" / f"{trial}.json" for trial in trials]
        if trials and all(_written_after(path, first_saved) for path in records):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    with contextlib.suppress(OSError):
        (Path(output_dir) / "checkpoints").rmdir()
    return removed


def _written_after(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime > moment
    except OSError:
        return False


class _ProgressLine:
    """Trials done / to do, diverged, the best validation metric so far and an ETA, on stderr."""

    def __init__(self, total: int, skipped: int):
        self.total, self.skipped = total, skipped - total
        self.done = self.diverged = 0
        self.best: float | None = None
        self.started = time.time()

    def recorded_elsewhere(self, count: int) -> None:
        """``count`` trials to do were recorded by another process: now among the skipped."""
        self.total -= count
        self.skipped += count

    def update(self, records: list[dict]) -> None:
        self.done += len(records)
        for record in records:
            metrics = record["metrics"]
            self.diverged += metrics["stopped"] == "diverged"
            if metrics["best_valid"] is not None:
                # `is None`, not `or`: a best of 0.0 (a solved task's loss) is a best.
                self.best = min(math.inf if self.best is None else self.best, metrics["best_valid"])
        if self.total <= 1:
            return
        elapsed = time.time() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        best = "-" if self.best is None else f"{self.best:.4g}"
        print(
            f"trials: {self.done}/{self.total} done ({self.skipped} already recorded, "
            f"{self.diverged} diverged), best valid {best}, {format_duration(elapsed)}, "
            f"ETA {format_duration(eta)}",
            file=sys.stderr,
            flush=True,
        )


def run_trial(
    cfg: Mapping[str, Any], output_dir: Path, progress: bool = True
) -> tuple[Path, dict | None]:
    """Train the trial ``cfg`` describes unless its record exists; return (record path, record).

    The record is ``output_dir/records/<trial_id>.json``. When it exists already (and
    ``cfg['overwrite']`` is false) nothing is trained and the record returned is None.
    """
    return run_trials([cfg], output_dir, progress)[0]


def make_record(
    cfg: Mapping[str, Any], result, started: float, data_sha256: str | None = None
) -> dict[str, Any]:
    """The run record of DESIGN.md section 5 for a trained config; ``data_sha256`` is the
    fingerprint of the dataset it was trained and evaluated on (``SequenceDataset.fingerprint``)."""
    return {
        "record_version": RECORD_VERSION,
        "trial_id": trial_identity(cfg),
        "study": str(cfg.get("study", "single")),  # study=2024 arrives as an int
        "cell": cfg["cell"]["name"],
        "dataset": cfg["dataset"]["name"],
        "seed": int(cfg["seed"]),
        "hyperparameters": hyperparameters(cfg),
        "sampled": (cfg.get("search") or {}).get("sampled", {}),
        "trial_index": (cfg.get("search") or {}).get("trial", 0),
        "parameters": parameter_count(result.params),
        "metrics": result.metrics,
        "curve": result.curve,
        "wall_seconds": result.wall_seconds,
        "compile_seconds": result.compile_seconds,
        "population": result.population,
        "started_unix": started,
        "config": dict(cfg),
        "data_sha256": data_sha256,
        "environment": {**environment(), "native_lstm": kernel_used(cfg)},
    }


def kernel_used(cfg: Mapping[str, Any]) -> str | None:
    """``native_lstm.used_by`` for the trial ``cfg``: which time loop its LSTM layers ran on."""
    cell = make_cell(cfg["cell"]["name"], 1, **cell_options(cfg))
    return native_lstm.used_by(cell, cfg["model"].get("recurrence", "fast"))
