"""The ``lstm-variants`` command: a Hydra app that trains a population of trials and writes records.

A job trains the trials of its config: one (``search=none``, the default) or ``search.trials``
drawn from a search space (``lstm_variants.search``), together as populations
(``lstm_variants.population``). In a multirun (``-m``) every job writes its records into the
sweep's shared ``records/`` and a ``status.json`` into its job folder, one of this command's own
(``<sweep dir>/jobs/<invocation>/<job number>/``, ``lstm_variants.sweep``); a failed job is
recorded and the sweep goes on, and a callback (``lstm_variants.sweep.SweepSummary``) writes the
results table and summary.

``--help``, ``--cfg job``, overrides (``cell=cifg optimizer.learning_rate=1e-3``) and multirun
(``-m cell=vanilla,nfg``) are Hydra's. Invalid input (an unknown cell or dataset, missing data, a
bad option) ends with one ``lstm-variants: error: ...`` line and exit status 2; a diverged run is
recorded as such and exits 0. A multirun's command line is checked the same way before any job
starts, and a multirun whose every job failed exits with status 2 (``sweep.SweepSummary``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import sys
import threading
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lstm_variants.command_line import (
    check_reference_cell,
    check_rerun_keeps_given_values,
    check_rerun_source,
    problem,
)
from lstm_variants.compilation_cache import enable_for_command
from lstm_variants.config_folders import CONFIG_DIR
from lstm_variants.config_values import check_values, with_absolute_paths
from lstm_variants.data import DataError
from lstm_variants.errors import ConfigError
from lstm_variants.interrupt import ending_interrupts, quiet_when_reader_leaves
from lstm_variants.version import version_line, wants_version


def format_summary(record: dict) -> str:
    metrics = record["metrics"]
    best, test = metrics["best_valid"], metrics["test_at_best"]
    parts = [
        f"{record['cell']} on {record['dataset']}:",
        f"{metrics['metric']} valid={_metric(best)} test={_metric(test)}"
        if best is not None
        else "no valid epoch",
        f"(best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, "
        f"stopped: {metrics['stopped']},",
        f"{record['wall_seconds']:.0f}s)",
    ]
    if "test_solved_fraction" in metrics:
        parts.insert(2, f"solved={metrics['test_solved_fraction']:.3f}")
    sampled = record.get("sampled") or {}
    if sampled:
        parts.insert(
            1, "[" + " ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in sampled.items()) + "]"
        )
    return " ".join(parts)


def _metric(value: float) -> str:
    """Four decimals, or four significant digits below 0.01 (a solved adding problem's MSE of
    8.2e-05 would read 0.0000)."""
    return f"{value:.4f}" if value == 0 or not abs(value) < 0.01 else f"{value:.4g}"


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def configure_devices(cfg: DictConfig) -> None:
    """Simulated CPU devices for the population's sharding, before JAX starts.

    ``cpu_devices``: 0 (auto) gives one device per core this process may run on (a SLURM job's
    or a container's share, not the whole node), so a population uses every such core; a
    launcher that runs several jobs side by side sets 1 per job. With several CPU devices,
    Eigen's own threads are turned off so devices do not fight over cores.
    ``cpu_pinning`` (set by ``launcher=joblib``): the job claims ``cpu_devices`` cores no other job
    holds and keeps its threads there (``lstm_variants.cpu_affinity``).
    """
    import os

    requested = int(cfg.get("cpu_devices") or 0)
    usable = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    count = requested or len(usable) or 1
    # `is True`: a value that is not a boolean is left to the config check's one error line.
    if cfg.get("cpu_pinning") is True and requested:
        pin_to_free_cores(requested)
    import jax

    jax.config.update("jax_num_cpu_devices", count)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


def pin_to_free_cores(count: int) -> None:
    """Claim ``count`` free cores and keep this process on them; one line says where it runs."""
    from lstm_variants.cpu_affinity import claim_cores, core_lock_dir, pin_process

    try:
        cores = claim_cores(count)
    except OSError as error:  # a lock folder that cannot be made, a file system without flock
        print(
            f"lstm-variants: warning: cpu_pinning: cannot claim a core (locks in "
            f"{core_lock_dir()}: {error.strerror or error}); this job runs unpinned",
            file=sys.stderr,
        )
        return
    if not cores:
        print(
            f"lstm-variants: warning: cpu_pinning: every core is held by another job (locks in "
            f"{core_lock_dir()}); this job runs unpinned",
            file=sys.stderr,
        )
        return
    pin_process(cores)
    print(
        f"cpu: this job runs on core(s) {', '.join(map(str, cores))} (cpu_pinning)", file=sys.stderr
    )


def quiet_library_logs() -> None:
    """Hydra sets the root logger to INFO and prints it in its own format. At that level JAX's
    backend probing (no TPU here), matplotlib's one-time "generated new fontManager" (its font
    cache on a fresh machine) and orbax's dozens of lines per checkpoint (through absl) are noise
    that reads like a message about the run."""
    for name in ("jax", "matplotlib", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)


def thread_only_progress_lock() -> None:
    """tqdm's default write lock holds a multiprocessing lock, which in a joblib job process is a
    named semaphore registered with the resource tracker: a job process killed mid-job (for memory,
    by hand) then ends the sweep with "There appear to be N leaked semaphore objects". Our progress
    bars never cross processes, so a thread lock is all they need."""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def task(cfg: DictConfig) -> None:
    quiet_library_logs()
    thread_only_progress_lock()
    # A logger's closing line (where the trials went) comes after the record lines.
    with contextlib.ExitStack() as closing:
        _train(cfg, closing)


def _train(cfg: DictConfig, closing: contextlib.ExitStack) -> None:
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    job_dir = Path(hydra_cfg.runtime.output_dir)
    # A study keeps every record in one directory, so a rerun finds them whatever the job numbers.
    records_dir = Path(hydra_cfg.sweep.dir) if multirun else job_dir
    overrides = list(hydra_cfg.overrides.task)
    swept = dict(hydra_cfg.sweeper.get("params") or {}) if "sweeper" in hydra_cfg else {}
    if swept and not multirun:  # a sweep's grid (cells, datasets) applies only to a multirun
        print(one_run_warning(cfg, swept), file=sys.stderr)
    try:
        configure_devices(cfg)
        cache = enable_for_command(cfg.get("compilation_cache"), overrides, "lstm-variants")
        from lstm_variants.experiment import run_trials
        from lstm_variants.search import trial_configs

        resolved = with_absolute_paths(OmegaConf.to_container(cfg, resolve=True))
        check_values(resolved)  # seed, search.trials, ...: before the search reads them
        check_reference_cell(resolved)
        check_rerun_source(resolved, records_dir)
        configs = trial_configs(resolved)
        drawn = {key for trial in configs for key in trial["search"].get("sampled") or {}}
        check_rerun_keeps_given_values(overrides, resolved, drawn)
        if not configs:
            search = resolved.get("search") or {}
            print(
                f"nothing to train: search.shard={search.get('shard')} of "
                f"search.shards={search.get('shards')} holds none of this job's "
                f"{search.get('trials', 1)} trial(s)"
            )
        results = run_trials(configs, records_dir, progress=bool(cfg.progress), closing=closing)
    except (ConfigError, DataError) as error:
        closing.close()  # the error line last
        _fail(multirun, job_dir, overrides, str(error))
        return
    except Exception as error:  # a sweep goes on past a job's crash; the summary lists it
        line = crash_line(error, multirun)
        if line is None:
            raise
        closing.close()
        _fail(multirun, job_dir, overrides, line)
        return
    trained = [record for _, record in results if record is not None]
    for path, record in results:
        if record is None and resolved.get("overwrite", False):  # another process retrained it
            print(f"recorded by another process while this one waited: {path}")
        elif record is None:
            print(f"already done (record exists; overwrite=true retrains): {path}")
        else:
            print(format_summary(record))
    if len(results) == 1 and trained:
        print(f"record: {results[0][0]}")
        if trained[0].get("params_file"):
            print(
                f"trained parameters: {results[0][0].with_name(trained[0]['params_file']['name'])}"
            )
    elif results:
        print(
            f"{len(trained)} trained, {len(results) - len(trained)} already done; records in {records_dir / 'records'}"
        )
    if cache is not None and trained:
        print(cache.describe())
    if multirun:
        from lstm_variants.records import RecordError, read_record
        from lstm_variants.sweep import write_status

        records = []
        for path, record in results:  # the trials skipped as done count too
            try:
                records.append(record if record is not None else read_record(path))
            except RecordError:
                continue
        validated = [r for r in records if r["metrics"].get("best_valid") is not None]
        best = min(validated, key=lambda r: r["metrics"]["best_valid"], default=None)
        write_status(
            job_dir,
            "ok",
            overrides,
            trials=len(results),
            trained=len(trained),
            dataset=str(cfg.dataset.name),
            best_valid=best["metrics"]["best_valid"] if best else None,
            metric=best["metrics"]["metric"] if best else None,
            label=" ".join(overrides),
        )


def one_run_warning(cfg: DictConfig, swept: dict) -> str:
    """The line for a sweep config run without -m: what it would sweep, and what runs instead."""
    running = []
    for key in swept:  # a config group (cell, dataset) by its name, any other key by its value
        value = OmegaConf.select(cfg, f"{key}.name", default=OmegaConf.select(cfg, key))
        running.append(f"{key}={value}")
    return (
        "lstm-variants: warning: this config sweeps "
        + ", ".join(f"{key}={value}" for key, value in swept.items())
        + " only with -m; this is one run, with "
        + ", ".join(running)
    )


# A full disk or quota, a read-only file system, a folder not ours: the user's to change.
UNWRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def crash_line(error: Exception, multirun: bool) -> str | None:
    """The one line an unexpected error ends a job with, or None where a single run should show
    its traceback (a bug). Out of device memory is the user's to change: one line either way."""
    line = f"{type(error).__name__}: {error}".splitlines()[0]
    if "RESOURCE_EXHAUSTED" in line:
        return (
            f"out of device memory ({line}); lower model.hidden_size, train.batch_size, "
            "train.eval_batch_size or population_size"
        )
    if isinstance(error, OSError) and error.errno in UNWRITABLE:
        # Records and parameter files are written whole or not at all (atomic_files): the
        # trials recorded so far are kept, and the same command trains the rest.
        return (
            f"cannot write {error.filename or 'the results'}: {error.strerror}; free space or "
            "choose another hydra.run.dir (hydra.sweep.dir), then run the same command again: "
            "recorded trials are kept"
        )
    return line if multirun else None


def _fail(multirun: bool, job_dir: Path, overrides: list[str], message: str) -> None:
    """One error line; a single run exits with status 2, a sweep's job records it and goes on."""
    print(f"lstm-variants: error: {message}", file=sys.stderr)
    if not multirun:
        sys.exit(2)
    from lstm_variants.sweep import write_status

    write_status(job_dir, "failed", overrides, error=message)


def run_hydra_app(prog: str, config_name: str, task_function, interrupted: str) -> None:
    """Check the command line (one error line, exit 2, on a bad choice or key), then run the app.

    Ctrl-C ends it with one line, ``{prog}: interrupted; {interrupted}``, and exit status 130
    instead of a traceback (``lstm_variants.interrupt``).
    """
    if wants_version(sys.argv[1:]):
        with quiet_when_reader_leaves():
            print(version_line(prog))
        sys.exit(0)
    # Composing the config to check it takes a second or two: Ctrl-C meanwhile is one line too.
    with ending_interrupts(f"{prog}: interrupted while checking the command line; nothing ran"):
        wrong = problem(sys.argv[1:], config_name)
    if wrong is not None:
        print(f"{prog}: error: {wrong}", file=sys.stderr)
        sys.exit(2)
    app = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    with ending_interrupts(f"{prog}: interrupted; {interrupted}"), quiet_when_reader_leaves():
        app(task_function)()


def main() -> None:
    run_hydra_app(
        "lstm-variants",
        "config",
        task,
        interrupted="finished trials keep their records, and the same command trains only the "
        "trials without one, from their last checkpoint",
    )


if __name__ == "__main__":
    main()
