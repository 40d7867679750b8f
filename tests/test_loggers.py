"""Optional loggers: TensorBoard event files read back equal the record; MLflow and W&B (fakes in
sys.modules, no network) receive the expected calls; failures are one line, never an exception."""

from __future__ import annotations

import inspect
import math
import re
import struct
import sys
import types
from collections import namedtuple
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lstm_variants.errors import ConfigError
from lstm_variants.loggers import (
    TrialLogger,
    epoch_scalars,
    final_metrics,
    last_epoch,
    make_logger,
    mlflow_uri,
    trial_params,
)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "logger"


def make_record(trial_id: str = "abc123", diverged: bool = False) -> dict:
    """A record shaped like ``experiment.make_record``'s."""
    curve = [
        {"epoch": 1, "train_loss": 0.5, "valid_loss": 0.25, "valid_solved": 0.125},
        {"epoch": 2, "train_loss": 0.375, "valid_loss": 0.1875, "valid_solved": 0.5},
        {"epoch": 3, "train_loss": 0.25, "valid_loss": 0.125},
    ]
    if diverged:
        curve.append({"epoch": 4, "train_loss": float("nan"), "valid_loss": float("inf")})
    return {
        "record_version": 3,
        "trial_id": trial_id,
        "study": "quick",
        "cell": "cifg",
        "dataset": "adding",
        "seed": 7,
        "hyperparameters": {
            "hidden_size": 16,
            "num_layers": 1,
            "optimizer": "adam",
            "learning_rate": 0.01,
            "momentum": None,
            "forget_bias": 1.0,
        },
        "sampled": {"optimizer.learning_rate": 0.01, "model.hidden_size": 16},
        "metrics": {
            "best_epoch": 3,
            "best_valid": 0.125,
            "best_valid_loss": 0.125,
            "epochs_run": len(curve),
            "metric": "mse",
            "stopped": "max_epochs",
            "test_at_best": 0.1,
            "test_loss": 0.1,
        },
        "curve": curve,
        "config": {"seed": 7},
    }


def logger_cfg(name: str, **settings) -> dict:
    return {"logger": {"name": name, **settings}}


# --- pure functions --------------------------------------------------------------------------------


def test_record_flattening():
    record = make_record()
    params = trial_params(record)
    assert "momentum" not in params  # None left out
    assert params["sampled/optimizer.learning_rate"] == 0.01
    assert params["cell"] == "cifg" and params["seed"] == 7 and params["learning_rate"] == 0.01
    assert epoch_scalars(record)[0] == (
        1,
        {"train_loss": 0.5, "valid_loss": 0.25, "valid_solved": 0.125},
    )
    assert epoch_scalars(record)[2] == (3, {"train_loss": 0.25, "valid_loss": 0.125})
    final = final_metrics(record)
    assert final["final/best_valid"] == 0.125 and final["final/epochs_run"] == 3.0
    assert "final/metric" not in final and "final/stopped" not in final


def test_mlflow_uri_defaults(tmp_path):
    assert mlflow_uri({}, tmp_path, environ={}) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert mlflow_uri({}, tmp_path, environ={"MLFLOW_TRACKING_URI": "http://x"}) == "http://x"
    assert mlflow_uri({"tracking_uri": "sqlite:///a.db"}, tmp_path) == "sqlite:///a.db"


# --- choice and errors -----------------------------------------------------------------------------


def test_none_gives_no_logger(tmp_path):
    assert make_logger(logger_cfg("none"), tmp_path) is None
    assert make_logger({}, tmp_path) is None  # a config without the group
    assert not any(tmp_path.iterdir())


def test_unknown_logger_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown logger 'neptune'"):
        make_logger(logger_cfg("neptune"), tmp_path)


@pytest.mark.parametrize(
    ("name", "package"), [("mlflow", "mlflow"), ("wandb", "wandb"), ("tensorboard", "tensorboardX")]
)
def test_missing_package_is_one_line_config_error(monkeypatch, tmp_path, name, package):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    with pytest.raises(ConfigError) as error:
        make_logger(logger_cfg(name), tmp_path)
    message = str(error.value)
    assert "\n" not in message and f"uv pip install {package}" in message


def test_config_group_files_make_their_logger(monkeypatch, tmp_path):
    install_fake_mlflow(monkeypatch)
    install_fake_wandb(monkeypatch)
    files = sorted(CONF_DIR.glob("*.yaml"))
    assert {f.stem for f in files} == {"none", "tensorboard", "mlflow", "wandb"}
    for file in files:
        settings = OmegaConf.to_container(OmegaConf.load(file), resolve=True)
        assert settings["name"] == file.stem
        logger = make_logger({"logger": settings}, tmp_path)
        assert (logger is None) == (file.stem == "none")
        if logger is not None:
            assert logger.name == file.stem
            logger.close()


# --- TensorBoard (real tensorboardX) ---------------------------------------------------------------


def read_events(run_dir: Path):
    """Every Event in the TFRecord event files of ``run_dir`` (length, crc, data, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            offset += 12
            events.append(Event.FromString(data[offset : offset + length]))
            offset += length + 4
    return events


def test_tensorboard_scalars_equal_the_curve(tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    record = make_record(diverged=True)
    logger = make_logger(logger_cfg("tensorboard"), tmp_path)
    logger.log_trial(record)
    logger.close()
    run_dir = tmp_path / "tensorboard" / record["trial_id"]
    scalars, plugins = {}, {}
    for event in read_events(run_dir):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars[(value.tag, event.step)] = value.simple_value
            else:
                plugins[value.tag] = value.metadata.plugin_data
    expected = {
        (tag, epoch): value
        for epoch, values in epoch_scalars(record)
        for tag, value in values.items()
    }
    expected |= {(tag, 4): value for tag, value in final_metrics(record).items()}
    assert scalars.keys() == expected.keys()
    for key, value in expected.items():  # float32 in the event file
        assert scalars[key] == pytest.approx(value, rel=1e-6, nan_ok=True), key
    start = HParamsPluginData.FromString(plugins["_hparams_/session_start_info"].content)
    hparams = start.session_start_info.hparams
    assert hparams["cell"].string_value == "cifg"
    assert hparams["learning_rate"].number_value == pytest.approx(0.01)
    assert hparams["sampled/model.hidden_size"].number_value == 16
    assert "_hparams_/session_end_info" in plugins


def test_a_retrained_trial_replaces_its_tensorboard_run(tmp_path):
    """overwrite=true logs the whole curve again: two event files of one run were drawn as one
    zig-zag curve."""
    pytest.importorskip("tensorboardX")
    record = make_record("t1")
    run_dir = tmp_path / "tensorboard" / "t1"
    counts = []
    for _ in range(2):
        logger = make_logger(logger_cfg("tensorboard"), tmp_path)
        logger.log_trial(record)
        logger.close()
        (events,) = run_dir.glob("events.out.tfevents.*")
        counts.append(sum(len(event.summary.value) for event in read_events(run_dir)))
        # As the earlier process's file would be named: another time and process id.
        events.rename(run_dir / "events.out.tfevents.1000000000.earlier-process")
    assert counts[0] == counts[1] > 0  # the second log replaced the first, not added to it


def test_tensorboard_log_dir_setting(tmp_path, capsys, monkeypatch):
    import shutil

    pytest.importorskip("tensorboardX")
    logger = make_logger(logger_cfg("tensorboard", log_dir=str(tmp_path / "tb")), tmp_path / "out")
    logger.log_trial(make_record("t1"))
    logger.log_trial(make_record("t2"))
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["t1", "t2"]
    assert not (tmp_path / "out").exists()
    capsys.readouterr()
    logger.close()
    logger.close()  # said once: nothing logged since
    assert capsys.readouterr().err.splitlines() == [
        f"tensorboard: 2 trial(s) in {tmp_path / 'tb'}; view with: tensorboard --logdir "
        f"{tmp_path / 'tb'}" + ("" if shutil.which("tensorboard") else " (pip install tensorboard)")
    ]
    # Where the viewer is installed, the line says no more than how to start it.
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    logger.log_trial(make_record("t3"))
    logger.close()
    assert capsys.readouterr().err.strip().endswith(f"--logdir {tmp_path / 'tb'}")


# --- MLflow (fake module) --------------------------------------------------------------------------


# The client methods the logger uses, with their signatures in mlflow 3.17 (checked against the
# real package); wandb.init's keywords likewise (wandb 0.31).
MLFLOW_CLIENT_METHODS = {
    "get_experiment_by_name": lambda name: None,
    "create_experiment": lambda name, artifact_location=None, tags=None: None,
    "create_run": lambda experiment_id, start_time=None, tags=None, run_name=None: None,
    "log_batch": lambda run_id, metrics=(), params=(), tags=(), synchronous=None: None,
    "set_terminated": lambda run_id, status=None, end_time=None: None,
    "search_runs": lambda experiment_ids, filter_string="", run_view_type=1, max_results=1000, order_by=None, page_token=None: (
        None
    ),
    "delete_run": lambda run_id: None,
}
WANDB_INIT_KEYWORDS = (
    "entity project dir id name notes tags config group job_type mode resume settings".split()
)


def install_fake_mlflow(monkeypatch, fail_on: str | None = None) -> list:
    """A fake ``mlflow`` whose MlflowClient records its calls; ``fail_on`` names one that raises."""
    calls: list = []
    runs: dict[str, dict] = {}  # the store's runs not deleted, by id: their tags

    def calls_named(method: str) -> list:
        return [call for call in calls if call[0] == method]

    class MlflowClient:
        def __init__(self, tracking_uri=None):
            calls.append(("client", tracking_uri))
            self.experiments: dict[str, str] = {}

        def __getattr__(self, method):
            if method not in MLFLOW_CLIENT_METHODS:
                raise AttributeError(f"'MlflowClient' object has no attribute '{method}'")

            def call(*args, **kwargs):
                # A call the real client would refuse (a misspelt keyword) is a TypeError here too.
                inspect.signature(MLFLOW_CLIENT_METHODS[method]).bind(*args, **kwargs)
                calls.append((method, args, kwargs))
                if method == fail_on:
                    raise RuntimeError("server said no\nsecond line")
                if method == "get_experiment_by_name":
                    found = self.experiments.get(args[0])
                    return found and types.SimpleNamespace(experiment_id=found)
                if method == "create_experiment":
                    self.experiments[args[0]] = f"exp-{len(self.experiments)}"
                    return self.experiments[args[0]]
                if method == "create_run":
                    run_id = f"run-{len(calls_named('create_run'))}"
                    runs[run_id] = kwargs.get("tags") or {}
                    return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id))
                if method == "search_runs":  # the one filter the logger uses: a trial_id tag
                    wanted = re.fullmatch(r"tags.trial_id = '(\w+)'", kwargs["filter_string"])
                    trial = wanted.group(1)
                    return [
                        types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id))
                        for run_id, tags in runs.items()
                        if tags.get("trial_id") == trial
                    ]
                if method == "delete_run":
                    del runs[args[0]]

            return call

    mlflow = types.ModuleType("mlflow")
    mlflow.MlflowClient = MlflowClient
    entities = types.ModuleType("mlflow.entities")
    entities.Metric = namedtuple("Metric", "key value timestamp step")
    entities.Param = namedtuple("Param", "key value")
    mlflow.entities = entities
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    monkeypatch.setitem(sys.modules, "mlflow.entities", entities)
    return calls


def test_mlflow_run_per_trial(monkeypatch, tmp_path, capsys):
    calls = install_fake_mlflow(monkeypatch)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    record = make_record()
    logger = make_logger(logger_cfg("mlflow"), tmp_path)
    logger.log_trial(record)
    logger.log_trial(make_record("def456"))
    logger.close()
    uri = f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert capsys.readouterr().err.splitlines() == [
        f"mlflow: 2 trial(s) in experiment(s) quick at {uri}; view with: "
        f"mlflow ui --backend-store-uri {uri}"
    ]
    assert calls[0] == ("client", uri)
    names = [call[0] for call in calls]
    assert names.count("create_experiment") == 1  # the study's experiment, made once
    assert calls[names.index("create_experiment")][1] == ("quick",)
    runs = [call for call in calls if call[0] == "create_run"]
    assert [run[2]["run_name"] for run in runs] == ["abc123", "def456"]
    assert runs[0][2]["tags"] == {
        "trial_id": "abc123",
        "study": "quick",
        "cell": "cifg",
        "dataset": "adding",
    }
    first = calls[: names.index("create_run", names.index("create_run") + 1)]
    batches = [call[2] for call in first if call[0] == "log_batch"]
    params = {p.key: p.value for batch in batches for p in batch.get("params", [])}
    assert params == {key: str(value) for key, value in trial_params(record).items()}
    metrics = {(m.key, m.step): m.value for batch in batches for m in batch.get("metrics", [])}
    expected = {(k, epoch): v for epoch, values in epoch_scalars(record) for k, v in values.items()}
    expected |= {(k, 3): v for k, v in final_metrics(record).items()}
    assert metrics == expected
    assert ("set_terminated", ("run-1",), {}) in first


def test_mlflow_experiment_setting(monkeypatch, tmp_path):
    calls = install_fake_mlflow(monkeypatch)
    logger = make_logger(logger_cfg("mlflow", experiment="mine", tracking_uri="http://t"), tmp_path)
    logger.log_trial(make_record())
    assert calls[0] == ("client", "http://t")
    assert ("create_experiment", ("mine",), {}) in calls


def test_logging_failure_is_one_warning_line(monkeypatch, tmp_path, capsys):
    calls = install_fake_mlflow(monkeypatch, fail_on="log_batch")
    logger = make_logger(logger_cfg("mlflow"), tmp_path)
    logger.log_trial(make_record())  # does not raise
    logger.close()  # and the failed trial is not counted as logged
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("warning: mlflow logger failed for trial abc123")
    assert "server said no" in err and "second line" not in err
    assert ("set_terminated", ("run-1",), {"status": "FAILED"}) in calls


def test_any_logger_error_is_contained(capsys):
    class Broken(TrialLogger):
        name = "broken"

        def _log(self, record):
            raise OSError("disk full")

        def _close(self):
            raise OSError("still full")

    logger = Broken()
    logger.log_trial(make_record())
    logger.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "warning: broken logger failed for trial abc123 (the record is kept): OSError: disk full",
        "warning: broken logger failed to close: OSError: still full",
    ]


# --- Weights & Biases (fake module) ----------------------------------------------------------------


def install_fake_wandb(monkeypatch) -> list:
    calls: list = []

    class Run:
        def __init__(self):
            self.summary = types.SimpleNamespace(update=lambda d: calls.append(("summary", d)))

        def log(self, data, step=None):
            calls.append(("log", step, data))

        def finish(self, exit_code=None):
            calls.append(("finish", exit_code))

    wandb = types.ModuleType("wandb")

    def init(**kwargs):
        unknown = set(kwargs) - set(WANDB_INIT_KEYWORDS)
        assert not unknown, f"wandb.init() got unexpected keyword(s) {unknown}"
        calls.append(("init", kwargs))
        return Run()

    wandb.init = init
    wandb.Settings = types.SimpleNamespace
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    return calls


def test_wandb_offline_run_per_trial(monkeypatch, tmp_path, capsys):
    calls = install_fake_wandb(monkeypatch)
    record = make_record()
    logger = make_logger(logger_cfg("wandb", project="p"), tmp_path)
    logger.log_trial(record)
    logger.close()
    runs = tmp_path / "wandb"
    assert capsys.readouterr().err.splitlines() == [
        f"wandb: 1 trial(s) in {runs}; upload with: wandb sync {runs}/offline-run-*"
    ]
    init = calls[0][1]
    assert init["name"] == "abc123" and init["project"] == "p" and init["group"] == "quick"
    assert init["mode"] == "offline" and init["dir"] == str(tmp_path)
    assert init["settings"].silent  # W&B's own ~25 lines per run would bury a study's output
    assert init["config"] == trial_params(record)
    assert [(c[1], c[2]) for c in calls if c[0] == "log"] == epoch_scalars(record)
    assert ("summary", final_metrics(record)) in calls
    assert calls[-1] == ("finish", None)


def test_wandb_unknown_mode(monkeypatch, tmp_path):
    install_fake_wandb(monkeypatch)
    with pytest.raises(ConfigError, match="logger.mode"):
        make_logger(logger_cfg("wandb", mode="sometimes"), tmp_path)


def test_unusable_tracking_uri_is_a_config_error(monkeypatch, tmp_path):
    install_fake_mlflow(monkeypatch)

    def refuse(tracking_uri=None):
        raise RuntimeError("filesystem backend is in maintenance mode\nmore")

    monkeypatch.setattr(sys.modules["mlflow"], "MlflowClient", refuse)
    with pytest.raises(ConfigError, match="logger=mlflow cannot use file:///x: RuntimeError"):
        make_logger(logger_cfg("mlflow", tracking_uri="file:///x"), tmp_path)


@pytest.mark.parametrize("name, key", [("tensorboard", "log_dir"), ("wandb", "dir")])
def test_a_folder_for_the_loggers_files_that_cannot_be_written_is_a_config_error(
    monkeypatch, tmp_path, name, key
):
    # One error line before training, not one warning after every trial of a study.
    if name == "tensorboard":
        pytest.importorskip("tensorboardX")
    else:
        install_fake_wandb(monkeypatch)
    (tmp_path / "a_file").write_text("")
    folder = tmp_path / "a_file" / "logs"
    with pytest.raises(ConfigError) as error:
        make_logger(logger_cfg(name, **{key: str(folder)}), tmp_path)
    assert str(error.value).startswith(f"logger.{key}={folder} cannot be written")
    assert make_logger(logger_cfg(name, **{key: str(tmp_path / "new" / "logs")}), tmp_path)
    assert not (tmp_path / "new").exists()  # checked, not made: a failing job leaves no folder


def test_a_switch_is_not_a_number_to_log():
    # True is an int to Python; logged, a flag would become a metric of 1.0.
    record = make_record()
    record["metrics"]["solved"] = True
    record["curve"][0]["improved"] = False
    assert "final/solved" not in final_metrics(record)
    assert "improved" not in epoch_scalars(record)[0][1]


def test_final_metrics_of_a_record_without_a_curve_are_logged_at_step_0():
    assert last_epoch(make_record() | {"curve": []}) == 0
    assert last_epoch(make_record()) == 3


def test_mlflow_logs_every_param_and_metric_in_batches_within_its_limits(monkeypatch, tmp_path):
    calls = install_fake_mlflow(monkeypatch)
    record = make_record()
    record["sampled"] = {f"key_{i}": i for i in range(150)}  # > 100 params
    record["curve"] = [  # 2 * 600 > 1000 metrics
        {"epoch": e, "train_loss": 1.0 / e, "valid_loss": 2.0 / e} for e in range(1, 601)
    ]
    logger = make_logger(logger_cfg("mlflow", tracking_uri="http://t"), tmp_path)
    logger.log_trial(record)
    batches = [call[2] for call in calls if call[0] == "log_batch"]
    params = [p for batch in batches for p in batch.get("params", [])]
    metrics = [m for batch in batches for m in batch.get("metrics", [])]
    assert all(len(batch.get("params", [])) <= 100 for batch in batches)
    assert all(len(batch.get("metrics", [])) <= 1000 for batch in batches)
    assert {p.key: p.value for p in params} == {k: str(v) for k, v in trial_params(record).items()}
    assert len(metrics) == 2 * 600 + len(final_metrics(record))
    assert {(m.key, m.step) for m in metrics} >= {("train_loss", 600), ("valid_loss", 1)}


def test_a_wandb_group_setting_wins_over_the_study(monkeypatch, tmp_path):
    calls = install_fake_wandb(monkeypatch)
    make_logger(logger_cfg("wandb", group="ablation"), tmp_path).log_trial(make_record())
    assert calls[0][1]["group"] == "ablation"


def test_the_tracking_uri_setting_wins_over_the_environment(tmp_path):
    environ = {"MLFLOW_TRACKING_URI": "http://from-env"}
    assert mlflow_uri({"tracking_uri": "http://given"}, tmp_path, environ) == "http://given"


def test_a_null_logger_name_is_no_logger(tmp_path):
    assert make_logger({"logger": {"name": None}}, tmp_path) is None


def test_a_diverged_curve_is_logged_to_tensorboard_without_tensorboardx_warnings(
    tmp_path, caplog, capsys
):
    """tensorboardX warned "NaN or Inf found in input tensor." once per non-finite value: third-
    party noise among a diverged run's lines. The value is still written (the curve shows it)."""
    pytest.importorskip("tensorboardX")
    import logging

    checker = logging.getLogger("tensorboardX.x2num")
    level = checker.level
    record = make_record(diverged=True)
    logger = make_logger(logger_cfg("tensorboard"), tmp_path)
    with caplog.at_level(logging.WARNING):
        logger.log_trial(record)
    logger.close()
    assert not [r for r in caplog.records if r.name.startswith("tensorboardX")]
    assert capsys.readouterr().err.splitlines()[0].startswith("tensorboard: 1 trial(s)")
    assert checker.level == level  # the warning is back for anyone else's tensorboardX use
    written = {
        (value.tag, event.step): value.simple_value
        for event in read_events(tmp_path / "tensorboard" / record["trial_id"])
        for value in event.summary.value
        if value.HasField("simple_value")
    }
    assert math.isnan(written[("train_loss", 4)]) and math.isinf(written[("valid_loss", 4)])


def test_a_retrained_trial_replaces_its_mlflow_run(monkeypatch, tmp_path):
    """overwrite=true logged a second run under the same trial id: one trial, two runs (checked
    with mlflow 3.17.2 and a SQLite store: now one active run, the earlier one deleted)."""
    calls = install_fake_mlflow(monkeypatch)
    for _ in range(2):  # the first training, then the retraining, each its own process
        logger = make_logger(logger_cfg("mlflow", tracking_uri="http://t"), tmp_path)
        logger.log_trial(make_record("t1"))
        logger.log_trial(make_record("t2"))
        logger.close()
    names = [call[0] for call in calls]
    assert names.count("create_run") == 4
    assert [call[1] for call in calls if call[0] == "delete_run"] == [("run-1",), ("run-2",)]
    # Deleted after the new run is whole, so a failure on the way keeps the earlier run.
    assert names.index("delete_run") > names.index("set_terminated", names.index("create_run", 3))


def test_a_retrained_trial_replaces_its_offline_wandb_run(monkeypatch, tmp_path):
    """overwrite=true added a second offline run of the same trial, which `wandb sync
    offline-run-*` would upload as a second run (checked with wandb 0.31: one folder per trial)."""
    calls = install_fake_wandb(monkeypatch)
    runs = tmp_path / "wandb"
    earlier = runs / "offline-run-20260101_000000-abc123"  # as wandb names it: <time>-<run id>
    other = runs / "offline-run-20260101_000000-def456"  # another trial's
    for folder in (earlier, other):
        (folder / "files").mkdir(parents=True)
    make_logger(logger_cfg("wandb"), tmp_path).log_trial(make_record("abc123"))
    assert calls[0][1]["id"] == "abc123"  # the new run's folder: offline-run-<time>-abc123
    assert not earlier.exists() and other.exists()
    # Online, the run is W&B's to name, and W&B's to keep.
    calls.clear()
    make_logger(logger_cfg("wandb", mode="online"), tmp_path).log_trial(make_record("def456"))
    assert calls[0][1]["id"] is None and other.exists()
