"""What a study leaves at its sweep root: job statuses, the results table and a summary.

Every job of a multirun writes ``<job dir>/status.json`` (ok or failed, with the one error line)
and its trials' records into ``<sweep dir>/records/``, a directory shared by all jobs, so that a
rerun finds every record whatever job number a trial's cell gets this time. The job folders
(Hydra's ``.hydra/``, the job's log, its status) are the command's own:
``<sweep dir>/jobs/<invocation>/<job number>/`` (``hydra.sweep.subdir`` in ``conf/config.yaml``),
beside the command's ``multirun.yaml`` (``keep_multirun_config``),
``<invocation>`` naming when, where and as which process the command started
(``config_folders.invocation_name``). Two commands writing one study at once (two shards run as
two commands, two SLURM submissions) thus neither overwrite nor count each other's jobs, while
their records meet in ``records/``. At the end of the multirun, ``SweepSummary`` (a Hydra
callback, configured in ``conf/config.yaml``) gathers the records into ``results.parquet`` and
``results.csv`` (one row per trial), writes ``summary.md`` (the comparison of every cell with the
study's ``reference_cell``, and this command's failed jobs with their error lines), prints it, and
writes the full report with figures into ``report/``; all of it with the code of
``lstm_variants.analysis``. A failed job does not stop the others, and the rest of the study is
still aggregated.

After each job, the callback also prints one progress line for the command's jobs so far: jobs
done and failed, trials recorded in the study, the best validation result per dataset (with its
job) and, from the mean job time, an ETA.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.core.utils import JobReturn
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lstm_variants import config_folders  # noqa: F401 - registers ${invocation:}
from lstm_variants.atomic_files import file_identity, write_table_atomic, write_text_atomic
from lstm_variants.durations import format_duration
from lstm_variants.records import code_version, write_json_atomic

STATUS_FILE = "status.json"
DEFAULT_STUDY = "single"  # conf/config.yaml's study: the folder of every run not given one


def write_status(job_dir: Path, status: str, overrides: list[str], **details: Any) -> None:
    """Record how a job ended: ``status`` is 'ok' or 'failed' (with ``error``, one line)."""
    write_json_atomic(
        Path(job_dir) / STATUS_FILE,
        {"status": status, "overrides": overrides, "finished_unix": time.time(), **details},
    )


def invocation(config: DictConfig) -> str:
    """This command's name (``${invocation:}``), fixed in ``config``, the multirun's own config.

    The resolver is cached, and the cache is the config's: each job's config, made from this one
    by Hydra's ``load_sweep_config`` (our launchers' ``failed_jobs.job_dir`` too) with a copy of
    its cache, then resolves to this same name, in whatever process the job runs. Resolved only
    in the jobs, each would name a command of its own."""
    return str(OmegaConf.create({"name": "${invocation:}"}, parent=config).name)


def jobs_dir(config: DictConfig) -> Path:
    """The folder of this command's job folders: ``hydra.sweep.dir/hydra.sweep.subdir`` of its job
    0 without the job's own last part, ``<sweep dir>/jobs/<invocation>`` (the sweep directory
    itself under a ``hydra.sweep.subdir`` of the job number alone). ``config`` is the multirun's
    or one of its jobs'."""
    invocation(config)  # before the copy, so that the copy has it
    job = copy.deepcopy(config)
    with read_write(job.hydra), open_dict(job.hydra):
        job.hydra.job.num = 0
        job.hydra.job.id = "0"
    return (Path(str(job.hydra.sweep.dir)) / str(job.hydra.sweep.subdir)).parent


def keep_multirun_config(config: DictConfig) -> None:
    """Save the multirun's ``config`` as ``multirun.yaml`` in this command's ``jobs_dir`` too.

    Hydra saves it at the sweep directory's root, where each command that writes the study
    replaces the one before (a resumed study, a second shard): the copy in the command's own
    folder keeps what each command ran, beside its jobs' ``.hydra/``. Saved as Hydra saves its
    own, interpolations unresolved; nothing where the job folders are the sweep directory's
    (a ``hydra.sweep.subdir`` of the job number alone), as Hydra's is then the command's."""
    jobs = jobs_dir(config)
    if jobs == Path(str(config.hydra.sweep.dir)):
        return
    jobs.mkdir(parents=True, exist_ok=True)
    write_text_atomic(jobs / "multirun.yaml", OmegaConf.to_yaml(config))


def read_statuses(
    sweep_dir: Path, read: dict[Path, tuple[tuple[int, ...], dict[str, Any]]] | None = None
) -> list[dict[str, Any]]:
    """Every job status in ``sweep_dir``'s job folders (``<sweep_dir>/*/status.json``; a
    command's are under its ``jobs_dir``), each with the job directory it came from.

    ``read`` keeps the statuses read before, by path, with their files' identities: a
    progress line after each job then parses only the new ones, not every job's again (most of
    the 14 minutes a sweep of 5,400 one-trial jobs spent on its progress lines).
    """
    read = {} if read is None else read
    statuses = []
    for path in sorted(Path(sweep_dir).glob(f"*/{STATUS_FILE}")):
        try:
            identity = file_identity(path)
            if identity is None or path not in read or read[path][0] != identity:
                read[path] = (identity, json.loads(path.read_text(encoding="utf-8")))
            statuses.append(read[path][1] | {"job_dir": str(path.parent)})
        except (OSError, ValueError):
            statuses.append({"status": "unreadable", "job_dir": str(path.parent)})
    return statuses


def summarize(
    sweep_dir: Path, reference: str = "vanilla", report: bool = True, jobs: Path | None = None
) -> str:
    """Write the study's tables and summary at ``sweep_dir``; return the summary (markdown).

    Writes ``results.parquet`` and ``results.csv`` (one row per trial, ``analysis.collect``),
    ``summary.md`` (the comparison of every cell with ``reference``, ``analysis.compare``, and the
    failed jobs, with their error lines, of the job folders in ``jobs``, the command's
    ``jobs_dir``, by default ``sweep_dir``) and, with ``report``, the full report with figures in
    ``report/`` (``analysis.write_report``), unless the one there was made from the same records,
    reference and code (``current_report``). A study without any record still gets its summary,
    and loses the results tables of records no longer there (or no longer readable). The tables
    and the summary are written atomically (``atomic_files``).
    """
    from lstm_variants.analysis import AnalysisError, collect, compare, write_report
    from lstm_variants.analysis.collect import require_trials
    from lstm_variants.analysis.compare import comparison_selection, to_markdown
    from lstm_variants.analysis.report import MADE_FROM_FILE, resolve_reference

    sweep_dir = Path(sweep_dir)
    jobs = sweep_dir if jobs is None else Path(jobs)
    statuses = read_statuses(jobs)
    failed = [s for s in statuses if s.get("status") != "ok"]
    lines = [f"# Study summary: {sweep_dir}", ""]
    # Taken before the records are read: a record written meanwhile is then not counted as in it.
    inputs = report_inputs(sweep_dir, reference) if report else None
    try:
        collection = collect([sweep_dir])
        require_trials(collection)  # records that none of can be read: none to tabulate
    except AnalysisError as error:
        collection = None
        lines.append(f"No trial records: {error}")
        # A results table of records since removed (or now unreadable) would be taken for this
        # study's.
        for name in ("results.parquet", "results.csv"):
            (sweep_dir / name).unlink(missing_ok=True)
    if collection is not None:
        trials = collection.trials
        # Whole or not at all, as records are: a Ctrl-C here must not leave half a table.
        write_table_atomic(sweep_dir / "results.parquet", trials)
        write_table_atomic(sweep_dir / "results.csv", trials)
        counts = f"{len(statuses)} jobs ({len(failed)} failed)"
        if jobs != sweep_dir:
            counts += f" of this command, in {jobs}"
        lines += [f"{collection.summary()}; {counts}.", ""]
        mixed = mixed_settings(trials["config_json"])
        if mixed:
            lines += [
                f"**Note: trials of one cell and seed were trained here with other settings "
                f"({', '.join(mixed)}), e.g. a smoke run's records beside the full study's; the "
                f"comparisons below mix them. Runs not meant as one study need their own study=NAME "
                f"(so does each value of a cell option such as forget_bias: the tables group "
                f"trials by cell name).**",
                "",
            ]
        for dataset, keys in mixed_dataset_options(trials["config_json"]).items():
            lines += [
                f"**Note: the trials on {dataset} were trained with other dataset options "
                f"({', '.join(keys)}); the tables below compare them as one dataset. To compare "
                "cells within each, run one sweep per value, each with its own study=NAME.**",
                "",
            ]
        usable = trials[trials["usable"]]
        if len(usable):
            chosen, note = resolve_reference(trials, reference)
            if note:
                lines += [f"**Note: {note}.**", ""]
            fraction, sample = comparison_selection(trials)
            lines.append(
                to_markdown(compare(trials, reference=chosen, fraction=fraction, sample=sample))
            )
        else:
            lines.append("No trial has a usable result yet (all diverged or none finished).")
        if report and len(usable):
            try:
                path, kept = current_report(sweep_dir, inputs)
                if not kept:
                    path = write_report(
                        [sweep_dir], sweep_dir / "report", reference=reference, collected=collection
                    )
                    if inputs is not None:
                        write_text_atomic(path.parent / MADE_FROM_FILE, inputs)
                lines += ["", f"Full report with figures: {path}"]
                if kept:
                    lines[-1] += " (kept: no record has changed since it was written)"
                if (path.parent / "tables" / "paired.csv").exists():
                    lines.append(
                        "Its paired comparison (each cell against the reference on the same "
                        "hyperparameter draws) has more power at few trials per cell than the "
                        "table above: section 'Paired comparison', tables/paired.csv"
                    )
            except (AnalysisError, ValueError) as error:
                lines += ["", f"(no report: {error})"]
    if failed:
        lines += ["", "## Failed jobs", ""]
        lines += [
            f"- {' '.join(s.get('overrides', [])) or s['job_dir']}: {s.get('error', s['status'])}"
            for s in failed
        ]
    summary = "\n".join(lines) + "\n"
    write_text_atomic(sweep_dir / "summary.md", summary)
    return summary


def report_inputs(sweep_dir: Path, reference: str) -> str | None:
    """A digest of what the study's report is made from: its record files (each one's
    ``file_identity``: a rewritten record is a new file), the reference cell and the code (the
    package's version and commit). None when it cannot be told: the checkout has uncommitted
    changes, which could change the report with nothing else changing; the code is neither a
    git checkout nor an installed package (a source tree on ``PYTHONPATH``, whose files may have
    changed); there is no record; or a record cannot be stat-ed.
    """
    from lstm_variants.analysis import AnalysisError
    from lstm_variants.analysis.collect import find_record_files
    from lstm_variants.version import NOT_INSTALLED, PACKAGE, installed

    try:
        paths = find_record_files([sweep_dir])
    except AnalysisError:  # no record: no report either
        return None
    code = code_version()
    if code["git_commit"] is not None and code["git_dirty"] is not False:  # changed, or unknown
        return None
    version = installed(PACKAGE)
    if code["git_commit"] is None and version == NOT_INSTALLED:
        return None
    digest = hashlib.sha256(f"{version} {code['git_commit']} {reference}\n".encode())
    for path in paths:
        identity = file_identity(path)
        if identity is None:
            return None
        digest.update(f"{path}\t{identity}\n".encode())
    return digest.hexdigest()


def current_report(sweep_dir: Path, inputs: str | None) -> tuple[Path, bool]:
    """(the study's report.md, whether it is current: made from ``inputs``, the study's
    ``report_inputs`` now, with every file it wrote still there), so that a rerun with nothing to
    train does not draw it again (about 14 s of figures and tests at 5,400 records)."""
    from lstm_variants.analysis.report import MADE_FROM_FILE, report_is_whole

    report = sweep_dir / "report" / "report.md"
    try:
        made_from = (report.parent / MADE_FROM_FILE).read_text()
    except OSError:
        return report, False
    return report, inputs is not None and made_from == inputs and report_is_whole(report.parent)


# The config keys of the values the tables give each trial as its hyperparameters
# (``experiment.hyperparameters``; the forget bias is in the cell's label).
HYPERPARAMETER_KEYS = (
    "model.hidden_size",
    "model.num_layers",
    "optimizer.name",
    "optimizer.learning_rate",
    "optimizer.momentum",
    "optimizer.clip_norm",
    "optimizer.clip_value",
    "train.batch_size",
    "train.input_noise",
    "train.dropout",
)


def mixed_settings(config_texts) -> list[str]:
    """The config keys whose values differ between records of the same cell, dataset, draw,
    seed and hyperparameters (``config_json`` texts): the same trial trained under two
    protocols, whose records the comparison, the paired test and the counts would all mix. Two
    values of a ``HYPERPARAMETER_KEYS`` key are two trials, as two draws are: a grid swept by hand
    (``-m model.hidden_size=64,128``), which the tables compare as a search's trials. Keys that
    say how to run, not what to train (``experiment.OPERATIONAL_KEYS``), are left out.
    ``search.space`` is named when trial i of a cell and search seed was drawn from two spaces (a
    range changed on the command line without a new study name): a mixture of two search
    distributions. Two search seeds draw distinct trials of one distribution, which the
    comparisons may pool."""
    from lstm_variants.analysis.report import flatten
    from lstm_variants.cell_label import cell_label
    from lstm_variants.experiment import OPERATIONAL_KEYS

    by_trial: dict[str, dict[str, Any]] = {}
    by_index: dict[str, str] = {}
    differing: set[str] = set()
    for text in config_texts:
        config = json.loads(text)
        search = config.get("search") or {}
        cell = cell_label(config)  # as the tables group trials: a cell with options is its own
        dataset, seed = config.get("dataset"), config.get("seed")
        settings = flatten(
            {k: v for k, v in config.items() if k not in (*OPERATIONAL_KEYS, "search")}
        )
        grid = [settings.get(key) for key in HYPERPARAMETER_KEYS]
        trial = json.dumps([cell, dataset, search.get("sampled"), seed, grid], sort_keys=True)
        first = by_trial.setdefault(trial, settings)
        differing |= {k for k in first.keys() | settings.keys() if first.get(k) != settings.get(k)}
        index = json.dumps(
            [cell, dataset, search.get("seed"), search.get("trial"), search.get("rerun_of"), seed],
            sort_keys=True,
        )
        space = json.dumps(search.get("space"), sort_keys=True)
        if by_index.setdefault(index, space) != space:
            differing.add("search.space")
    return sorted(differing)


def mixed_dataset_options(config_texts) -> dict[str, list[str]]:
    """Per dataset name, the ``dataset.options`` keys whose values differ between its records
    (``-m dataset.options.T=12,20``): the tables group trials by the dataset's name, so they
    would rank two tasks as one."""
    from lstm_variants.analysis.report import flatten

    seen: dict[str, dict[str, Any]] = {}
    differing: dict[str, set[str]] = {}
    for text in config_texts:
        dataset = json.loads(text).get("dataset") or {}
        name = str(dataset.get("name"))
        # download says how to get the files, not which data
        options = {k: v for k, v in (dataset.get("options") or {}).items() if k != "download"}
        options = flatten(options, "dataset.options")
        first = seen.setdefault(name, options)
        keys = {k for k in first.keys() | options.keys() if first.get(k) != options.get(k)}
        if keys:
            differing.setdefault(name, set()).update(keys)
    return {name: sorted(keys) for name, keys in sorted(differing.items())}


class SweepSummary(Callback):
    """Hydra callback: a progress line after each job, the study summary at the end."""

    def __init__(self) -> None:
        self.started = time.time()
        self.jobs_total: int | None = None
        self.statuses_read: dict[Path, tuple[tuple[int, ...], dict[str, Any]]] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        # Counted here, from the command line's lists: in a job's own config every swept key is
        # one value, so the count there is always 1. Launchers that run jobs in other processes
        # get a fresh callback per job and print no total.
        self.jobs_total = _job_count(config)
        # Named here, once, in the multirun's config: every job's folder is under this name.
        # Statuses of earlier commands, or of one running beside this one, stay where they are.
        invocation(config)
        keep_multirun_config(config)
        records = len(list(Path(config.hydra.sweep.dir).glob("records/*.json")))
        default_folder = Path(config.hydra.sweep.dir).name == DEFAULT_STUDY  # not a folder given
        if config.get("study") == DEFAULT_STUDY and default_folder and records:
            print(
                f"note: no study= given, so this sweep shares {config.hydra.sweep.dir} "
                f"({records} trial record{'s' if records != 1 else ''}) with every sweep run "
                "without one, and its summary "
                "pools them: study=NAME gives a sweep a folder of its own",
                flush=True,
            )

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        # Hydra calls this after a single run too, whose config still names a sweep directory:
        # a study of the same name there is not this run's.
        if config.hydra.get("mode") != RunMode.MULTIRUN:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        statuses = read_statuses(jobs_dir(config), self.statuses_read)
        done = len(statuses)
        failed = sum(s.get("status") != "ok" for s in statuses)
        records = len(list(sweep_dir.glob("records/*.json")))
        total = self.jobs_total
        jobs = f"{done}/{total} jobs" if total else f"{done} job{'s' if done != 1 else ''}"
        line = f"sweep: {jobs} done ({failed} failed)"
        best = _best_so_far(statuses)  # the statuses are this command's jobs' only
        if best:
            line += f", best valid of these jobs: {best}"
        if total and done:
            elapsed = time.time() - self.started
            line += f", ETA {format_duration(elapsed / done * max(total - done, 0))}"
        print(
            f"{line}; {records} trial record{'s' if records != 1 else ''} in {sweep_dir}",
            flush=True,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from lstm_variants.cli import quiet_library_logs

        quiet_library_logs()  # the summary's figures are drawn in the launcher's process
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        reference = str(config.get("reference_cell", "vanilla"))
        jobs = jobs_dir(config)
        report = bool(config.get("sweep_report", True))
        print(summarize(sweep_dir, reference, report, jobs), flush=True)
        results = sweep_dir / "results.parquet"
        if results.exists():
            print(f"results: {results}, summary: {sweep_dir / 'summary.md'}")
        else:
            print(f"no trial records, so no results table; summary: {sweep_dir / 'summary.md'}")
        print(f"job folders of this command (logs, status.json): {jobs}")
        statuses = read_statuses(jobs)
        if statuses and all(s.get("status") != "ok" for s in statuses):
            # A study where nothing ran is an error for the shell and for scripts that chain steps.
            first = statuses[0].get("error", statuses[0].get("status"))
            print(
                f"lstm-variants: error: every job of this sweep failed ({len(statuses)}); "
                f"the first: {first}",
                file=sys.stderr,
            )
            sys.exit(2)


def _job_count(config: DictConfig) -> int | None:
    """The number of jobs of a basic sweep, as Hydra's parser enumerates it, if known.

    Comma lists, ``choice(...)`` and ``range(...)`` count their values; a ``glob(...)`` of a
    config group, or anything Hydra cannot parse here, gives None (no total, no ETA). A key swept
    on the command line replaces the same key of the sweep file's ``params``.
    """
    try:
        params = dict(config.hydra.sweeper.params or {})
        overrides = list(config.hydra.overrides.task)
    except Exception:  # noqa: BLE001 - a sweeper without params: no total, no ETA
        return None
    for override in overrides:
        key, _, value = override.partition("=")
        params[key.lstrip("+~")] = value
    try:
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    except HydraException:
        return None
    count = 1
    for override in parsed:
        if not override.is_sweep_override():
            continue
        if not override.is_discrete_sweep() or override.value_type == ValueType.GLOB_CHOICE_SWEEP:
            return None
        count *= sum(1 for _ in override.sweep_iterator())
    return count


def _best_so_far(statuses: list[dict[str, Any]]) -> str | None:
    """The lowest validation result per dataset, with the job that holds it.

    Validation, not test: choosing on the test set would be optimistic. Per dataset: the metrics
    of two tasks (an MSE and a cross entropy, say) do not compare.
    """
    bests: dict[str, tuple[float, str, str]] = {}
    for status in statuses:
        value, dataset = status.get("best_valid"), status.get("dataset", "")
        if value is not None and (dataset not in bests or value < bests[dataset][0]):
            bests[dataset] = (value, status.get("metric") or "", status.get("label", ""))
    if not bests:
        return None
    return "; ".join(
        f"{dataset} {metric} {value:.4g} ({label})"
        for dataset, (value, metric, label) in sorted(bests.items())
    )
