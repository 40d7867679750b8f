"""Optional experiment loggers: each trial's record mirrored to TensorBoard, MLflow or W&B.

The JSON records stay the source of truth; a logger only copies a finished record elsewhere for
viewing. It is chosen by the ``logger`` config group (``conf/logger/``), ``none`` by default::

    uv run lstm-variants logger=tensorboard
    uv run lstm-variants -m +sweep=quickstart logger=mlflow logger.experiment=quick

Every logger writes one run per trial, named by its ``trial_id`` (a trial retrained with
``overwrite=true`` replaces its run: TensorBoard's folder is emptied, MLflow's run deleted,
W&B's offline run folder removed; an online W&B run stays and the new one is added), holding

- params: the record's ``hyperparameters``, its ``sampled`` values (as ``sampled/<key>``) and its
  ``study``, ``cell``, ``dataset`` and ``seed`` (None values are left out);
- per-epoch scalars: every numeric field of every ``curve`` entry (``train_loss``, ``valid_loss``,
  ``valid_solved``, ...) at step ``epoch``; a diverged epoch's NaN or infinite loss is logged as
  it is (the JSON record writes null), so each tool shows where the run diverged, and
  tensorboardX's warning about it is silenced;
- final metrics: every numeric field of ``metrics`` as ``final/<key>`` (``final/best_valid``,
  ``final/test_at_best``, ...).

Where each writes, with ``output_dir`` the directory that holds ``records/`` (the job directory of a
single run, the sweep root of a multirun), and how to view it:

- ``tensorboard`` (needs ``tensorboardX``): event files in ``<log_dir>/<trial_id>/``, ``log_dir``
  defaulting to ``<output_dir>/tensorboard``; view with ``tensorboard --logdir <log_dir>`` (the
  HParams tab compares trials).
- ``mlflow`` (needs ``mlflow``): runs in experiment ``experiment`` (default: the record's study) at
  ``tracking_uri``, defaulting to ``$MLFLOW_TRACKING_URI`` or else the SQLite database
  ``<output_dir>/mlflow.db``; view with ``mlflow ui --backend-store-uri sqlite:///<output_dir>/mlflow.db``.
- ``wandb`` (needs ``wandb``): runs in ``project`` (grouped by study), ``mode`` ``offline`` by default
  so nothing leaves the machine, under ``<dir>/wandb`` (``dir`` defaulting to ``output_dir``);
  ``wandb sync <output_dir>/wandb/offline-run-*`` uploads them, or set ``logger.mode=online``.

When a command ends, each logger says in one line on stderr how many trials it wrote, where, and
the command that views them. W&B's own console output (about 25 lines per run) is silenced.
Checked by hand against the real packages (mlflow 3.17.2, wandb 0.31.0, session 21); the tests
use fakes of them, since neither is a dependency.

A missing package, or a folder given for the logger's files (``log_dir``, ``dir``) that cannot be
written, is a ``ConfigError`` when the logger is made, before any training. Once training
runs, a logger never loses a record: the caller writes the record first, and a failure while logging
it is one warning line on stderr, after which training goes on.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from lstm_variants.errors import ConfigError
from lstm_variants.output_directory import check_output_directory

LOGGER_NAMES = ("none", "tensorboard", "mlflow", "wandb")

# What each logger imports, and the package that provides it.
_PACKAGES = {"tensorboard": "tensorboardX", "mlflow": "mlflow", "wandb": "wandb"}

Scalar = bool | int | float | str


# --- what a record says, flat (pure functions shared by every logger) -----------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(value: Any) -> Scalar:
    """``value`` as a bool, int, float or str (lists and dicts as their text)."""
    return value if isinstance(value, bool | int | float | str) else str(value)


def trial_params(record: Mapping[str, Any]) -> dict[str, Scalar]:
    """The params of a trial's run: hyperparameters, ``sampled/<key>`` values and its identity."""
    params: dict[str, Any] = {key: record.get(key) for key in ("study", "cell", "dataset", "seed")}
    params |= dict(record.get("hyperparameters") or {})
    params |= {f"sampled/{key}": value for key, value in (record.get("sampled") or {}).items()}
    return {key: _scalar(value) for key, value in params.items() if value is not None}


def epoch_scalars(record: Mapping[str, Any]) -> list[tuple[int, dict[str, float]]]:
    """(epoch, {name: value}) for each curve entry: its numeric fields other than ``epoch``."""
    return [
        (
            int(entry["epoch"]),
            {k: float(v) for k, v in entry.items() if k != "epoch" and _is_number(v)},
        )
        for entry in record.get("curve") or []
    ]


def final_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """The numeric fields of the record's ``metrics`` as ``final/<key>``."""
    metrics = record.get("metrics") or {}
    return {f"final/{k}": float(v) for k, v in metrics.items() if _is_number(v)}


def last_epoch(record: Mapping[str, Any]) -> int:
    """The step the final metrics are logged at: the curve's last epoch (0 without a curve)."""
    return max((int(entry["epoch"]) for entry in record.get("curve") or []), default=0)


def _warning(logger: str, record: Mapping[str, Any] | None, error: BaseException) -> str:
    """One line: which logger failed, on which trial (None: when closing), and the error's first line."""
    message = f"{type(error).__name__}: {error}".splitlines()[0]
    if record is None:
        return f"warning: {logger} logger failed to close: {message}"
    return f"warning: {logger} logger failed for trial {record.get('trial_id')} (the record is kept): {message}"


# --- loggers ---------------------------------------------------------------------------------------


class TrialLogger:
    """Copies trial records to a tracking tool; subclasses implement ``_log`` (and ``_close``).

    ``log_trial`` and ``close`` never raise: an error is printed as one warning line on stderr.
    """

    name = "base"
    logged = 0  # trials written since the last close

    def log_trial(self, record: dict) -> None:
        """Write ``record`` (a finished trial's record) as one run named by its ``trial_id``."""
        try:
            self._log(record)
        except Exception as error:
            print(_warning(self.name, record, error), file=sys.stderr, flush=True)
        else:
            self.logged += 1

    def close(self) -> None:
        """Release whatever the logger holds and say in one line (stderr) where the trials logged
        since the last close went and how to view them; safe to call more than once."""
        try:
            self._close()
        except Exception as error:
            print(_warning(self.name, None, error), file=sys.stderr, flush=True)
        if self.logged:
            print(
                f"{self.name}: {self.logged} trial(s) {self.where()}", file=sys.stderr, flush=True
            )
            self.logged = 0

    def where(self) -> str:
        """Where the runs are and how to view them, the end of the closing line."""
        return "logged"

    def _log(self, record: dict) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def __enter__(self) -> TrialLogger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@contextlib.contextmanager
def quiet_nan_warning() -> Iterator[None]:
    """Inside, tensorboardX does not warn "NaN or Inf found in input tensor." (once per value).

    A diverged epoch's loss is such a value, logged on purpose (module docstring); the warning
    would be third-party noise among the run's own lines, once per non-finite scalar.
    """
    checker = logging.getLogger("tensorboardX.x2num")
    level = checker.level
    checker.setLevel(logging.ERROR)
    try:
        yield
    finally:
        checker.setLevel(level)


class TensorBoardLogger(TrialLogger):
    """Event files (tensorboardX) in ``<log_dir>/<trial_id>/``: scalars per epoch, hparams, final.

    View with ``tensorboard --logdir <log_dir>``. No experiment summary is written, so TensorBoard's
    HParams tab infers one from all trials' sessions, however their sampled keys differ. A
    diverged epoch's NaN or infinite loss is written as it is, without tensorboardX's warning.
    """

    name = "tensorboard"

    def __init__(self, module: ModuleType, log_dir: Path):
        self.tbx, self.log_dir = module, Path(log_dir)

    def where(self) -> str:
        # The event files need only tensorboardX; the viewer is the tensorboard package.
        viewer = "" if shutil.which("tensorboard") else " (pip install tensorboard)"
        return f"in {self.log_dir}; view with: tensorboard --logdir {self.log_dir}{viewer}"

    def _log(self, record: dict) -> None:
        from tensorboardX.summary import hparams

        run_dir = self.log_dir / record["trial_id"]
        # A retrained trial (overwrite=true) logs its whole curve again: its old event files
        # would be drawn with the new ones as one zig-zag run.
        shutil.rmtree(run_dir, ignore_errors=True)
        writer = self.tbx.SummaryWriter(logdir=str(run_dir))
        try:
            with quiet_nan_warning():
                for epoch, scalars in epoch_scalars(record):
                    for tag, value in scalars.items():
                        writer.add_scalar(tag, value, global_step=epoch)
                step = last_epoch(record)
                final = final_metrics(record)
                for tag, value in final.items():
                    writer.add_scalar(tag, value, global_step=step)
                _, session_start, session_end = hparams(trial_params(record), final)
                writer.file_writer.add_summary(session_start)
                writer.file_writer.add_summary(session_end)
        finally:
            writer.close()


class MLflowLogger(TrialLogger):
    """One MLflow run per trial (run name: trial_id; tags: trial_id, study, cell, dataset); a
    retrained trial's new run replaces the old one, which is deleted.

    Params as strings, curve fields as metrics at step ``epoch``, ``final/*`` at the last epoch.
    View with ``mlflow ui --backend-store-uri <tracking_uri>``.
    """

    name = "mlflow"
    METRIC_BATCH, PARAM_BATCH = 1000, 100  # MLflow's limits per log_batch call

    def __init__(self, module: ModuleType, tracking_uri: str, experiment: str | None):
        self.mlflow, self.experiment, self.tracking_uri = module, experiment, tracking_uri
        self.experiments: set[str] = set()
        try:
            self.client = module.MlflowClient(tracking_uri=tracking_uri)
        except Exception as error:
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            raise ConfigError(f"logger=mlflow cannot use {tracking_uri}: {message}") from None

    def where(self) -> str:
        names = ", ".join(sorted(self.experiments))
        return (
            f"in experiment(s) {names} at {self.tracking_uri}; view with: "
            f"mlflow ui --backend-store-uri {self.tracking_uri}"
        )

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except Exception:  # another job of the sweep created it meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _log(self, record: dict) -> None:
        from mlflow.entities import Metric, Param

        experiment_name = self.experiment or str(record.get("study") or "default")
        experiment = self._experiment_id(experiment_name)
        self.experiments.add(experiment_name)
        tags = {"trial_id": record["trial_id"]} | {
            key: str(record[key]) for key in ("study", "cell", "dataset") if key in record
        }
        earlier = self.client.search_runs(
            [experiment], filter_string=f"tags.trial_id = '{record['trial_id']}'"
        )
        run = self.client.create_run(experiment, run_name=record["trial_id"], tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, value, now, epoch)
            for epoch, scalars in epoch_scalars(record)
            for key, value in scalars.items()
        ]
        step = last_epoch(record)
        metrics += [Metric(key, value, now, step) for key, value in final_metrics(record).items()]
        params = [Param(key, str(value)) for key, value in trial_params(record).items()]
        try:
            for start in range(0, len(params), self.PARAM_BATCH):
                self.client.log_batch(run_id, params=params[start : start + self.PARAM_BATCH])
            for start in range(0, len(metrics), self.METRIC_BATCH):
                self.client.log_batch(run_id, metrics=metrics[start : start + self.METRIC_BATCH])
        except Exception:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        self.client.set_terminated(run_id)
        # A retrained trial (overwrite=true) replaces its run, as in TensorBoard: two runs of one
        # trial would be two rows of one trial in the comparison. Once the new run is whole, so
        # a failure keeps the old one; a deleted run stays restorable (mlflow gc removes it).
        for previous in earlier:
            self.client.delete_run(previous.info.run_id)


class WandbLogger(TrialLogger):
    """One W&B run per trial (name: trial_id, group: study), offline unless ``mode`` says otherwise.
    Offline, the run's id is the trial_id too, and a retrained trial's run replaces the earlier
    one not yet synced; online, it is W&B's own, and a retrained trial adds a run.

    Config: the params; history: curve fields at step ``epoch``; summary: ``final/*``. Offline runs
    land in ``<dir>/wandb/``; ``wandb sync`` uploads them.
    """

    name = "wandb"

    def __init__(self, module: ModuleType, settings: Mapping[str, Any]):
        self.wandb, self.settings = module, dict(settings)

    def where(self) -> str:
        runs = Path(self.settings["dir"]) / "wandb"
        if self.settings["mode"] == "offline":
            return f"in {runs}; upload with: wandb sync {runs}/offline-run-*"
        if self.settings["mode"] == "disabled":
            return "not kept (logger.mode=disabled)"
        return f"in project {self.settings['project']} (local copies in {runs})"

    def _log(self, record: dict) -> None:
        settings = self.settings
        offline = settings["mode"] == "offline"
        if offline:
            # A retrained trial (overwrite=true) replaces its run, as in TensorBoard: otherwise
            # `wandb sync offline-run-*` would upload two runs of one trial. The run's id is its
            # trial_id, which names its folder, offline-run-<time>-<id>.
            runs = Path(settings["dir"]) / "wandb"
            for earlier in runs.glob(f"offline-run-*-{record['trial_id']}"):
                shutil.rmtree(earlier)
        run = self.wandb.init(
            project=settings["project"],
            entity=settings.get("entity"),
            id=record["trial_id"] if offline else None,
            name=record["trial_id"],
            group=settings.get("group") or record.get("study"),
            job_type=record.get("cell"),
            tags=list(settings.get("tags") or []),
            config=trial_params(record),
            mode=settings["mode"],
            dir=settings["dir"],
            # W&B prints ~25 lines per run; for a population of trials they would bury the
            # progress and the results table. The closing line says where the runs are.
            settings=self.wandb.Settings(silent=True),
        )
        try:
            for epoch, scalars in epoch_scalars(record):
                run.log(scalars, step=epoch)
            run.summary.update(final_metrics(record))
        except Exception:
            run.finish(exit_code=1)
            raise
        run.finish()


# --- from config -----------------------------------------------------------------------------------


def import_package(logger: str) -> ModuleType:
    """The module ``logger`` needs, or a one-line ConfigError saying how to install it."""
    package = _PACKAGES[logger]
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ConfigError(
            f"logger={logger} needs the '{package}' package, which is not installed: "
            f"uv pip install {package} (or choose logger=none)"
        ) from None


def logger_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg['logger']`` as a dict with a known ``name`` (absent or null: ``{'name': 'none'}``)."""
    settings = dict(cfg.get("logger") or {"name": "none"})
    name = settings.get("name") or "none"
    if name not in LOGGER_NAMES:
        raise ConfigError(f"unknown logger '{name}'; valid: {', '.join(LOGGER_NAMES)}")
    return settings | {"name": name}


def tensorboard_dir(settings: Mapping[str, Any], output_dir: Path) -> Path:
    """``log_dir``, or ``<output_dir>/tensorboard``."""
    return Path(settings.get("log_dir") or Path(output_dir) / "tensorboard")


def mlflow_uri(
    settings: Mapping[str, Any], output_dir: Path, environ: Mapping[str, str] = os.environ
) -> str:
    """``tracking_uri``, or ``$MLFLOW_TRACKING_URI``, or SQLite ``<output_dir>/mlflow.db``.

    Not a ``./mlruns`` file store: MLflow 3 refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``.
    """
    uri = settings.get("tracking_uri") or environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{(Path(output_dir).resolve() / 'mlflow.db').as_posix()}"


def wandb_settings(settings: Mapping[str, Any], output_dir: Path) -> dict[str, Any]:
    """W&B settings with their defaults: project ``lstm-variants``, offline, ``dir`` output_dir."""
    mode = settings.get("mode") or "offline"
    if mode not in ("offline", "online", "disabled"):
        raise ConfigError(f"unknown logger.mode '{mode}'; valid: offline, online, disabled")
    return dict(settings) | {
        "project": settings.get("project") or "lstm-variants",
        "mode": mode,
        "dir": str(settings.get("dir") or output_dir),
    }


def make_logger(cfg: Mapping[str, Any], output_dir: Path | str) -> TrialLogger | None:
    """The logger ``cfg['logger']`` asks for, writing under ``output_dir`` by default; None for 'none'.

    ``output_dir`` is the directory that holds ``records/``. Raises ConfigError for an unknown
    logger name, a missing package or a folder given for its files that cannot be written, so
    a bad choice fails before any training, not with a warning after each trial.
    """
    settings = logger_settings(cfg)
    name = settings["name"]
    if name == "none":
        return None
    module = import_package(name)
    if name == "tensorboard":
        if settings.get("log_dir"):
            check_output_directory(Path(settings["log_dir"]), "logger.log_dir")
        return TensorBoardLogger(module, tensorboard_dir(settings, Path(output_dir)))
    if name == "mlflow":
        return MLflowLogger(
            module, mlflow_uri(settings, Path(output_dir)), settings.get("experiment")
        )
    if settings.get("dir"):
        check_output_directory(Path(settings["dir"]), "logger.dir")
    return WandbLogger(module, wandb_settings(settings, Path(output_dir)))
