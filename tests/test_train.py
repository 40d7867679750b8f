"""One training run: reproducibility, records, early stopping, divergence, the CLI's errors."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lstm_variants import native_build
from lstm_variants.cli import CONFIG_DIR
from lstm_variants.errors import RecordError
from lstm_variants.experiment import (
    _recorded,
    kernel_used,
    run_trial,
    run_trials,
    trial_identity,
)
from lstm_variants.records import git_state, write_json_atomic
from lstm_variants.trained import load_trial

TINY_ADDING = [
    "dataset.options.T=11",
    "dataset.options.n_train=64",
    "dataset.options.n_valid=32",
    "dataset.options.n_test=32",
]
TINY = [
    *TINY_ADDING,
    "model.hidden_size=8",
    "train.max_epochs=3",
    "train.batch_size=16",
    "progress=false",
]
VOLATILE = {"wall_seconds", "compile_seconds", "started_unix", "environment", "population"}


def config(*overrides, base=TINY):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[*base, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def test_same_seed_same_record_bitwise(tmp_path, monkeypatch):
    from lstm_variants import population

    # Equal configs, built and loaded anew by each run, find the programs compiled for the first.
    compiled, programs = [], population._population_programs
    monkeypatch.setattr(
        population, "_population_programs", lambda *a: compiled.append(a) or programs(*a)
    )
    population.forget_compiled()
    _, first = run_trial(config(), tmp_path / "a", progress=False)
    _, second = run_trial(config(), tmp_path / "b", progress=False)
    assert first["metrics"]["epochs_run"] == 3
    assert {k: v for k, v in first.items() if k not in VOLATILE} == {
        k: v for k, v in second.items() if k not in VOLATILE
    }
    _, other_seed = run_trial(config("seed=1"), tmp_path / "c", progress=False)
    assert other_seed["curve"] != first["curve"]
    assert len(compiled) == 1
    run_trial(config("model.init.peephole_scale=0.2"), tmp_path / "d", progress=False)
    assert len(compiled) == 2  # another model: its own programs
    run_trial(config("dataset.options.seed=1"), tmp_path / "e", progress=False)
    assert len(compiled) == 3  # other data of the same shapes: its own programs too
    # The tests run at "highest" (conftest.py); the setting is read when tracing.
    with jax.default_matmul_precision("tensorfloat32"):
        run_trial(config(), tmp_path / "f", progress=False)
    assert len(compiled) == 4
    with jax.enable_x64(True):  # 64-bit indices and integer constants in the traced program
        run_trial(config(), tmp_path / "g", progress=False)
    assert len(compiled) == 5


def test_rerun_skips_an_existing_record_and_a_changed_config_does_not(tmp_path, monkeypatch):
    from lstm_variants import records

    path, record = run_trial(config(), tmp_path, progress=False)
    assert record is not None and path.exists()
    parsed, read = [], records.read_record_file
    monkeypatch.setattr(records, "read_record_file", lambda p: parsed.append(p) or read(p))
    again, skipped = run_trial(config(), tmp_path, progress=False)
    assert again == path and skipped is None
    assert parsed == [path]  # read once to be skipped, not again to check its data
    monkeypatch.undo()
    changed, retrained = run_trial(config("optimizer.learning_rate=0.01"), tmp_path, progress=False)
    assert changed != path and retrained is not None


DAMAGES = {
    "cut short by a partial copy": lambda text: text[:100],
    "a name the table cannot use": lambda text: json.dumps(json.loads(text) | {"cell": None}),
    "a field of the wrong kind": lambda text: json.dumps(
        json.loads(text) | {"hyperparameters": []}
    ),
    "a metric that is not a number": lambda text: json.dumps(
        (record := json.loads(text)) | {"metrics": record["metrics"] | {"best_valid": "abc"}}
    ),
    "no config": lambda text: json.dumps(
        {key: value for key, value in json.loads(text).items() if key != "config"}
    ),
}


def test_a_damaged_record_is_said_and_its_trial_trains_again(tmp_path, capsys):
    path, record = run_trial(config(), tmp_path, progress=False)
    good = path.read_text()
    for how, damage in DAMAGES.items():  # each is said in one line and is not a finished trial
        path.write_text(damage(good))
        capsys.readouterr()
        assert not _recorded(path), how
        warning = capsys.readouterr().err.strip().splitlines()
        assert len(warning) == 1 and "not a run record" in warning[0], (how, warning)
    # End to end for one of them: the trial trains again, to the same record, and is then done.
    again, retrained = run_trial(config(), tmp_path, progress=False)
    assert again == path and retrained is not None
    assert json.loads(path.read_text())["metrics"] == record["metrics"]
    assert _recorded(path) and run_trial(config(), tmp_path, progress=False)[1] is None


def test_a_key_at_its_neutral_value_leaves_the_trial_id_as_before_the_key_existed():
    cfg = config()
    assert cfg["train"]["loss_normalization"] == "frame"
    before_the_key = config()
    del before_the_key["train"]["loss_normalization"]
    assert trial_identity(cfg) == trial_identity(before_the_key)
    assert trial_identity(config("train.loss_normalization=sequence")) != trial_identity(cfg)
    before_dropout = config()
    del before_dropout["train"]["dropout"]
    assert cfg["train"]["dropout"] == 0.0
    assert trial_identity(cfg) == trial_identity(before_dropout)
    assert trial_identity(config("train.dropout=0.2")) != trial_identity(cfg)


def test_configs_differing_in_dropout_train_as_one_population_with_their_own_rates(tmp_path):
    cfgs = [config(f"train.dropout={rate}") for rate in (0.0, 0.3)]
    (_, plain), (_, dropped) = run_trials(cfgs, tmp_path, progress=False)
    assert plain["population"]["size"] == dropped["population"]["size"] == 2
    assert [plain["hyperparameters"]["dropout"], dropped["hyperparameters"]["dropout"]] == [
        0.0,
        0.3,
    ]
    assert plain["curve"][0]["train_loss"] != dropped["curve"][0]["train_loss"]
    # The member without dropout trains as it does alone, where no dropout is compiled at all.
    _, alone = run_trial(cfgs[0], tmp_path / "alone", progress=False)
    np.testing.assert_allclose(
        [e["valid_loss"] for e in alone["curve"]],
        [e["valid_loss"] for e in plain["curve"]],
        rtol=1e-5,
    )


def test_record_holds_what_design_section_5_asks(tmp_path):
    path, record = run_trial(config("cell=cifg"), tmp_path, progress=False)
    on_disk = json.loads(path.read_text())
    assert on_disk["trial_id"] == path.stem == trial_identity(config("cell=cifg"))
    assert on_disk["cell"] == "cifg" and on_disk["dataset"] == "adding"
    assert set(on_disk["metrics"]) >= {
        "best_valid",
        "test_at_best",
        "epochs_run",
        "stopped",
        "metric",
    }
    assert on_disk["hyperparameters"]["learning_rate"] == 0.003
    assert len(on_disk["curve"]) == on_disk["metrics"]["epochs_run"]
    assert {"jax", "jaxlib", "flax", "device_kind", "git_commit", "git_dirty", "xla_flags"} <= set(
        on_disk["environment"]
    )
    assert on_disk["config"]["model"]["init"]["recurrent"] == "orthogonal"
    kernel = native_build.library_path().name if jax.default_backend() == "cpu" else None
    assert on_disk["environment"]["native_lstm"] == kernel


@pytest.mark.parametrize(
    "overrides, kernel",
    [
        (["cell=cifg"], True),
        (["cell=lstm_b"], True),
        (["cell=cifg", "model.recurrence=xla"], False),
        (["cell=cifg", "model.recurrence=reference"], False),
        (["cell=fgr"], False),
        (["cell=gru"], False),
    ],
)
def test_the_record_says_which_time_loop_each_trial_ran_on(overrides, kernel):
    """Per trial, not per process: a sweep's xla or GRU trial after a fast LSTM one gets None.
    The kernel is a CPU kernel: with a GPU or TPU as JAX's default backend no trial runs on it."""
    on_the_cpu = jax.default_backend() == "cpu"
    expected = native_build.library_path().name if kernel and on_the_cpu else None
    assert kernel_used(config(*overrides)) == expected


def test_training_lowers_the_loss(tmp_path):
    _, record = run_trial(
        config("train.max_epochs=8", "model.hidden_size=16"), tmp_path, progress=False
    )
    losses = [entry["train_loss"] for entry in record["curve"]]
    assert losses[-1] < 0.8 * losses[0]


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    # A learning rate this small leaves the validation loss flat, so patience 1 must end the run.
    _, record = run_trial(
        config("train.max_epochs=30", "train.patience=1", "optimizer.learning_rate=1e-9"),
        tmp_path,
        progress=False,
    )
    metrics = record["metrics"]
    assert metrics["stopped"] == "early"
    assert metrics["epochs_run"] < 30
    valid = [entry["valid_loss"] for entry in record["curve"]]
    assert metrics["best_valid"] == min(valid) == valid[metrics["best_epoch"] - 1]


def test_diverging_run_is_recorded_as_diverged(tmp_path):
    path, record = run_trial(config("optimizer.learning_rate=1e30"), tmp_path, progress=False)
    assert record["metrics"]["stopped"] == "diverged"
    assert path.exists()
    # NaN outputs solve nothing (a NaN compares false with the tolerance).
    diverged = [epoch for epoch in record["curve"] if not np.isfinite(epoch["valid_loss"])]
    assert diverged and all(epoch["valid_solved"] == 0.0 for epoch in diverged)
    # Strict JSON on disk: the NaN loss is null, not Python's NaN token.
    on_disk = json.loads(path.read_text(), parse_constant=lambda token: pytest.fail(token))
    assert on_disk["curve"][len(record["curve"]) - 1]["valid_loss"] is None
    # Diverged before its first validation: its "best" parameters would be the untrained ones.
    assert record["metrics"]["best_valid"] is None and record["params_file"] is None
    assert not list(tmp_path.glob("**/*.npz"))
    with pytest.raises(RecordError, match="no trained parameters: it stopped .diverged. before"):
        load_trial(path)


def test_git_state_names_the_commit_and_sees_uncommitted_changes(tmp_path):
    assert git_state(tmp_path) == {"git_commit": None, "git_dirty": None}  # not a checkout

    def git(*arguments):
        subprocess.run(["git", *arguments], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "cell.py").write_text("a = 1\n")
    git("add", "cell.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    clean = git_state(tmp_path)
    assert len(clean["git_commit"]) == 40 and clean["git_dirty"] is False
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert git_state(tmp_path)["git_dirty"] is False
    (tmp_path / "cell.py").write_text("a = 2\n")
    assert git_state(tmp_path) == {"git_commit": clean["git_commit"], "git_dirty": True}
    assert git_state(tmp_path / "cell.py") == {"git_commit": None, "git_dirty": None}  # a file
    # Reading the state leaves the index alone, though its stat data is stale now.
    index = tmp_path / ".git" / "index"
    before = index.stat().st_mtime_ns
    os.utime(tmp_path / "cell.py", ns=(before + 10**9, before + 10**9))
    git("checkout", "-q", "cell.py")  # clean again, with a newer mtime than the index has
    os.utime(tmp_path / "cell.py", ns=(before + 2 * 10**9, before + 2 * 10**9))
    index_before = index.stat().st_mtime_ns
    assert git_state(tmp_path)["git_dirty"] is False
    assert index.stat().st_mtime_ns == index_before


def test_atomic_write_leaves_old_record_on_failure(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_every_cell_config_composes_and_names_a_registered_cell():
    from lstm_variants.cells import VARIANTS

    names = sorted(p.stem for p in (Path(CONFIG_DIR) / "cell").glob("*.yaml"))
    assert names == sorted(VARIANTS)
    for name in names:
        assert config(f"cell={name}")["cell"]["name"] == name


def cli(*args, env_extra=None):
    env = dict(os.environ) | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "lstm_variants.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_trains_and_says_where_the_record_went(tmp_path):
    # stdout and stderr in one stream, unbuffered: the order a terminal shows.
    # tensorboardX is in the dev group; a bare GPU image may lack it.
    logged = importlib.util.find_spec("tensorboardX") is not None
    out = subprocess.run(
        [sys.executable, "-m", "lstm_variants.cli", *TINY, f"hydra.run.dir={tmp_path}",
         *(["logger=tensorboard"] if logged else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout
    lines = out.stdout.splitlines()
    assert any(line.startswith("memory: about ") for line in lines)  # the estimate, first
    record_line = [line for line in lines if line.startswith("record: ")]
    assert record_line and Path(record_line[0].removeprefix("record: ")).exists()
    params_line = [line for line in lines if line.startswith("trained param")]
    assert params_line and Path(params_line[0].removeprefix("trained parameters: ")).exists()
    # The logger's line says where the trial went once the record lines have said where it is.
    closing = [i for i, line in enumerate(lines) if line.startswith("tensorboard: 1 trial(s) in")]
    assert closing == ([len(lines) - 1] if logged else []), lines


def test_a_relative_text_file_path_is_recorded_absolute_and_loads_from_elsewhere(tmp_path, app):
    # Stored as given, `path=book.txt` would name a file only together with the directory the
    # run started in: load_trial from anywhere else would not find it.
    run_dir = tmp_path / "study"
    run_dir.mkdir()
    (run_dir / "book.txt").write_text("to be or not to be, that is the question. " * 20)
    out = app("dataset=text_file", "dataset.options.path=book.txt", "dataset.options.streams=2",
              "dataset.options.window=8", "model.hidden_size=4", "train.max_epochs=1",
              "progress=false", "data_dir=.", f"hydra.run.dir={tmp_path / 'out'}", cwd=run_dir)  # fmt: skip
    assert out.returncode == 0, out.stderr
    (record_path,) = (tmp_path / "out" / "records").glob("*.json")
    config = json.loads(record_path.read_text())["config"]
    assert config["dataset"]["options"]["path"] == str(run_dir / "book.txt")
    assert config["data_dir"] == str(run_dir)
    assert Path.cwd() != run_dir
    trial = load_trial(record_path)
    assert trial.data.source == str(run_dir / "book.txt")


@pytest.mark.parametrize(
    "args, message",
    [
        (["cell=lstmm"], "unknown cell 'lstmm' (did you mean lstm?); valid cell names: cifg, fgr"),
        (["cell=transformer"], "unknown cell 'transformer'; valid cell names: cifg"),  # none near
        (["dataset=timit2"], "unknown dataset 'timit2'"),
        (
            ["dataset=jsb_chorales", "data_dir=/nonexistent", "dataset.options.download=false"],
            "not found at",
        ),
        (["+cell.options.forget_bias=1.0", "cell=gru"], "cell 'gru' has no option 'forget_bias'"),
        (
            ["+cell.options.forget_bia=1.0"],
            "cell 'vanilla' has no option 'forget_bia' (did you mean forget_bias?); valid options:",
        ),
        (["+cell.options.forget_bias=1.0", "cell=cifg"], "and this cell has none"),
        (["model.init.bias_scale=0.5"], "the zeros initialiser takes no scale, got 0.5"),
        (["model.init.bias=lecun_normal"], "model.init.bias must be one of uniform, normal, zeros"),
        (["model.init.input=he"], "model.init.input must be one of glorot_uniform, orthogonal"),
        (
            ["cell.options.forget_bias=1.0"],
            "Could not override 'cell.options.forget_bias'. To append",
        ),
        (["model.hiden_size=3"], "unknown key model.hiden_size; did you mean model.hidden_size"),
        (["train.max_epoch=2"], "unknown key train.max_epoch; did you mean train.max_epochs?"),
        (["+model.hiden_size=3"], "unknown model option(s) ['hiden_size']; valid: embed_size"),
        (["seed=abc"], "seed must be an integer in [0, 4294967295], got 'abc'"),
        (["seed=4294967296"], "seed must be an integer in [0, 4294967295], got 4294967296"),
        (["search=quick", "seed=4294967290"], "gives trial seeds up to 4294967297, past"),
        (["search.foo={a: 1}"], "unknown key search.foo"),
        (["search=quick", "search.space={lr: {x: 1}}"], "search.space takes no new keys in"),
        (["search=quick", "search.trials=abc"], "search.trials must be an integer >= 1"),
        (["search=quick", "+search.space.foo=3"], "search space key foo: expected {distrib"),
        (["search=quick", "search.space=3"], "search.space must map config keys to distrib"),
        (
            ["search=quick", "+search.space.seed={distribution: uniform, low: 0, high: 9}"],
            "search.space cannot draw seed: trial i trains with seed + i",
        ),
        (["model.recurrence=slow"], "model.recurrence must be one of fast, xla, reference"),
        (["reference_cell=bogus"], "unknown reference_cell 'bogus'; valid cells: cifg"),
        (["+optimizer.momentum=0.5"], "optimizer.momentum (0.5) is used only by optimizer=sgd"),
        (["search=greff", "search.trials=2"], "is used only by optimizer=sgd"),
        (["-m", "--cfg", "job"], "--cfg and --multirun cannot be combined: give one of them"),
        # Several values without -m: Hydra's first lines advised a list, which a group is not.
        (["cell=vanilla,gru"], "cell=vanilla,gru gives several values, which only a multirun"),
        (["seed=0,1"], "seed=0,1 gives several values, which only a multirun sweeps: add -m"),
        (["--info", "bogus"], "argument --info/-i: invalid choice: 'bogus' (choose from 'all',"),
        (["--bogus"], "unrecognized arguments: --bogus; --help lists the flags"),
        (
            ["cell=gru", "--cfg", "job", "model.hidden_size=3"],
            "model.hidden_size=3 comes after a flag that follows other overrides",
        ),
        (["study=../../etc"], "study must be a folder name, not a path, got '../../etc'"),
        (["optimizer.name=rmsprop"], "optimizer.name must be one of sgd, adam, got 'rmsprop'"),
        (
            ["train.loss_normalization=sum"],
            "train.loss_normalization must be one of frame, sequence, got 'sum'",
        ),
        (["train.max_epochs=abc"], "train.max_epochs must be an integer >= 1, got 'abc'"),
        (["+cell.options.peepholes=abc"], "cell.options.peepholes must be true or false"),
        (["save_params=maybe"], "save_params must be true or false"),
        (["cpu_pinning=maybe", "cpu_devices=1"], "cpu_pinning must be true or false"),
        (
            ["cpu_pinning=true"],
            "cpu_pinning=true claims cpu_devices cores for the job, and "
            "cpu_devices=0 (one device per core) claims none: set cpu_devices=N",
        ),
        # Hydra's own settings: its message, on one line.
        (["hydra.job.chdir=maybe"], "hydra.job.chdir=maybe: Value 'maybe' is not a valid bool"),
        (["hydra.job.chdri=true"], "unknown key hydra.job.chdri; did you mean hydra.job.chdir?"),
        (["hydra.foo=1"], "unknown key hydra.foo; the keys of hydra: run, sweep, launcher,"),
        (
            ["hydra/launcher=nope"],
            "Could not find 'hydra/launcher/nope'; available options in 'hydra/launcher': basic,",
        ),
    ],
)
def test_cli_bad_input_is_one_error_line(tmp_path, app, args, message):
    from lstm_variants.command_line import problem

    args = [*args, f"hydra.run.dir={tmp_path}", "progress=false"]
    caught = problem(args)
    if caught is not None:  # before Hydra runs, in this process: the line the app prints (below)
        assert message in caught, caught
        return
    out = app(*args)  # found in the job
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("lstm-variants: error: ") and message in lines[0]
    ), out.stderr
    assert not list(Path(tmp_path).glob("records/*.json"))


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ["model.hiden_size=3"],
            "unknown key model.hiden_size; did you mean model.hidden_size, model.embed_size?",
        ),
        (["-m", "--cfg", "job"], "--cfg and --multirun cannot be combined: give one of them"),
        (
            ["--cfg", "jbo"],  # argparse's usage block and 'cli.py: error:' before
            "argument --cfg/-c: invalid choice: 'jbo' (choose from 'job', 'hydra', 'all')",
        ),
    ],
)
def test_what_the_command_line_check_finds_is_the_apps_one_error_line(tmp_path, args, line):
    out = cli(*args, f"hydra.run.dir={tmp_path}", "progress=false")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"lstm-variants: error: {line}"], out.stderr
    assert not list(Path(tmp_path).glob("records/*.json"))


def test_a_command_checked_with_cfg_job_gets_the_runs_error_lines():
    """--cfg job is how a command is looked at before it runs: it printed a config with
    max_epochs: abc, and a typo was Hydra's five lines with its "+key" advice."""
    from lstm_variants.command_line import problem

    typo = "unknown key train.max_epoch; did you mean train.max_epochs?"
    value = (
        "train.max_epochs must be an integer >= 1, got 'abc'; set it with train.max_epochs=VALUE"
    )
    assert problem(["--cfg", "job", "train.max_epoch=2"]) == typo
    assert problem(["--cfg=all", "--resolve", "train.max_epochs=abc"]) == value
    assert problem(["-c", "job", "-p", "train", "train.max_epochs=abc"]) == value
    assert problem(["--cfg", "job", "train.max_epochs=2"]) is None
    assert problem(["--cfg", "job", "diagnose.cellz=1"], "diagnose").startswith(
        "unknown key diagnose.cellz; did you mean diagnose.cells"
    )


def test_hydras_own_settings_pass_the_check_when_hydra_takes_them():
    from lstm_variants.command_line import problem

    assert problem(["-m", "launcher=joblib", "hydra.launcher.n_jobs=2", "cell=vanilla,nfg"]) is None
    assert problem(["hydra/job_logging=disabled", "hydra.verbose=true"]) is None
    assert problem(["hydra.job.chdir=true", "hydra.output_subdir=null"]) is None
    # A swept one is Hydra's to expand and check.
    assert problem(["-m", "hydra.sweeper.params.cell=vanilla,nfg"]) is None


def test_what_a_command_asks_for_that_would_be_ignored_or_fail_in_every_job_is_one_line(
    monkeypatch, tmp_path
):
    from lstm_variants import command_line
    from lstm_variants.command_line import problem

    greff = ["search=greff", "optimizer=sgd"]
    # A value that each trial's draw would replace.
    assert problem([*greff, "model.hidden_size=8"]) == (
        "model.hidden_size is set on the command line, but the search draws it for every trial "
        "and would replace the value: drop model.hidden_size=..., or take it out of the search "
        "with '~search.space.model.hidden_size'"
    )
    assert problem([*greff, "~search.space.model.hidden_size", "model.hidden_size=8"]) is None
    assert problem([*greff, "~model.hidden_size"]) == (  # the draw would put it back
        "model.hidden_size is set on the command line, but the search draws it for every trial "
        "and would replace the value: drop '~model.hidden_size', or take it out of the search "
        "with '~search.space.model.hidden_size'"
    )
    # A setting removed: a KeyError in the job, or a default nobody chose.
    for key in ("model.hidden_size", "train.max_epochs", "seed", "cell"):
        assert problem([f"~{key}"]) == (
            f"'~{key}' removes a setting the run needs: give it a value instead ({key}=VALUE); "
            "'~' removes entries of search.space (what a search draws), cell.options and "
            "dataset.options"
        )
    assert problem(["+cell.options.forget_bias=1", "~cell.options.forget_bias"]) is None
    # An option of the first dataset of a sweep that another lacks: its job would fail in Hydra.
    assert problem(["-m", "dataset=adding,xml", "dataset.options.T=20"]) == (
        "dataset 'xml' of this sweep: it has no option 'T' (the dataset options of a sweep apply "
        "to every dataset it sweeps: sweep datasets with other options separately)"
    )
    assert problem(["-m", "dataset=adding,xml", "dataset.options.n_train=64"]) is None
    # So must those of a sweep over another group: Hydra ended this one with seven lines and
    # status 1 when it composed the Adam job (Adam has no momentum).
    assert problem(["-m", "optimizer=sgd,adam", "optimizer.momentum=0.9"]) == (
        "optimizer 'adam' of this sweep: it has no key optimizer.momentum (the other overrides "
        "of a sweep apply to every optimizer it sweeps: sweep optimizers with other options "
        "separately)"
    )
    assert problem(["-m", "optimizer=adam,sgd", "optimizer.learning_rate=0.1"]) is None
    # A group of the training app that lstm-variants-diagnose does not read: said before the
    # training app's rules ask for optimizer=sgd (Greff's space draws a momentum).
    assert problem(["+search=greff"], "diagnose").startswith(
        "search is lstm-variants' group, not this app's"
    )
    # A top-level key that nothing reads, which would still change every trial's id.
    assert problem(["+save_param=false"]) == "unknown key save_param; did you mean save_params?"
    assert problem(["+foo=1"]).startswith("unknown key foo; the keys of the config: cell, model")
    assert problem(["+sweep=quickstart"]) is None  # a group
    # A misspelt group that the defaults leave out is no key, so the keys alone never named it.
    swep = "unknown key swep; did you mean the config group sweep, chosen with +sweep=NAME? (its"
    assert problem(["-m", "+swep=quickstart"]).startswith(swep)
    assert problem(["swep=quickstart"]).startswith(swep)
    assert problem(["+sweep_reprot=false"]).startswith(
        "unknown key sweep_reprot; did you mean sweep_report"
    )
    # A rerun that names no study to rerun.
    assert problem(["-m", "+sweep=greff_jsb", "search=rerun_best", "study=again"]) == (
        "search.rerun.from is not set: name the study to rerun, e.g. "
        "search.rerun.from=multirun/greff_jsb"
    )
    # SLURM's launcher where SLURM is not (submitit's own report is a traceback).
    monkeypatch.setattr(command_line.shutil, "which", lambda name: None)
    assert problem(["-m", "launcher=submitit_slurm"]).startswith(
        "launcher=submitit_slurm needs SLURM, and srun is not on PATH here: run the command"
    )
    monkeypatch.setattr(command_line.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert problem(["-m", "launcher=submitit_slurm"]) is None
    # joblib's n_jobs=0, which joblib refuses with a traceback once the sweep has started.
    assert problem(["-m", "launcher=joblib", "hydra.launcher.n_jobs=0"]).startswith(
        "hydra.launcher.n_jobs=0 runs no job: give how many jobs run side by side"
    )
    assert problem(["-m", "launcher=joblib", "hydra.launcher.n_jobs=-1"]) is None
    # A logger folder that cannot be written, which every job of a sweep would fail on.
    (tmp_path / "a_file").write_text("")
    log_dir = tmp_path / "a_file" / "tb"
    assert problem(["-m", "seed=0,1", "logger=tensorboard", f"logger.log_dir={log_dir}"]) == (
        f"logger.log_dir={log_dir} cannot be written ({tmp_path / 'a_file'}: not a directory); "
        "give another logger.log_dir"
    )
    # A full disk takes an empty file, but Hydra's first file there would fail with a traceback.
    from lstm_variants import output_directory

    usage = output_directory.shutil.disk_usage(tmp_path)
    full = usage._replace(free=output_directory.LEAST_FREE_BYTES - 1024)
    monkeypatch.setattr(output_directory.shutil, "disk_usage", lambda path: full)
    assert problem(["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'study'}"]) == (
        f"hydra.sweep.dir={tmp_path / 'study'}: no space left on its disk (1023 KiB free in "
        f"{tmp_path}); free some space or give another hydra.sweep.dir"
    )
    monkeypatch.setattr(
        output_directory.shutil,
        "disk_usage",
        lambda path: usage._replace(free=output_directory.LEAST_FREE_BYTES),
    )
    assert problem(["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'study'}"]) is None


@pytest.fixture
def user_configs(tmp_path):
    """A user's config folder (Hydra's --config-dir), named as folders can be: spaces, brackets,
    a comma."""
    folder = tmp_path / "Dropbox (Personal), conf"
    (folder / "search" / "team").mkdir(parents=True)
    mine = "space: {model: {hidden_size: {distribution: log_uniform, low: 4, high: 8}}}"
    (folder / "search" / "mine.yaml").write_text(f"trials: 2\nseed: 0\n{mine}\n")
    (folder / "search" / "team" / "wide.yaml").write_text(f"trials: 2\nseed: 0\n{mine}\n")
    (folder / "search" / "counted.yaml").write_text(f"trials: ${{n_trials}}\nseed: 0\n{mine}\n")
    dotted = "space: {model.hidden_size: {distribution: uniform, low: 4, high: 8}}"
    (folder / "search" / "dotted.yaml").write_text(f"trials: 2\nseed: 0\n{dotted}\n")
    (folder / "hydra" / "job_logging").mkdir(parents=True)  # beside Hydra's own options
    (folder / "hydra" / "job_logging" / "mine.yaml").write_text("version: 1\n")
    (folder / "experiment").mkdir()  # a group conf/ does not have
    (folder / "experiment" / "short.yaml").write_text(
        "# @package _global_\ntrain: {max_epochs: 2}\n"
    )
    return folder


def test_the_groups_of_a_config_folder_the_command_adds_are_valid_names(user_configs):
    # Hydra's --config-dir (and hydra.searchpath) add a user's own configs, e.g. a search space.
    from lstm_variants.command_line import problem

    assert problem(["search=mine"]).startswith("unknown search 'mine'; valid search names: greff")
    for added in (
        ["--config-dir", str(user_configs)],
        [f"--config-dir={user_configs}"],
        ["-cd", str(user_configs)],
        [f"hydra.searchpath=['file://{user_configs}']"],
    ):
        assert problem([*added, "search=mine"]) is None, added
        assert problem([*added, "search=team/wide"]) is None, added
        assert problem([*added, "search=mne"]) == (
            "unknown search 'mne' (did you mean mine?); valid search names: counted, dotted, greff, jozefowicz, mine, "
            "none, quick, rerun_best, team/wide"
        )
        assert problem([*added, "+experiment=short"]) is None, added
        assert problem([*added, "hydra/job_logging=disabled"]) is None, added
        assert problem([*added, "+experiment=shrt"]) == (
            "unknown experiment 'shrt' (did you mean short?); valid experiment names: short"
        )
    out = cli("--config-dir", str(user_configs), "search=mine", "--cfg", "job")
    assert out.returncode == 0 and "high: 8" in out.stdout, out.stderr


def test_the_check_composes_with_the_folders_the_command_adds(user_configs):
    from lstm_variants.command_line import problem

    added = ["--config-dir", str(user_configs), "search=mine"]
    assert problem([*added, "train.max_epoch=1"]) == (
        "unknown key train.max_epoch; did you mean train.max_epochs?"
    )
    assert problem(["-m", *added, "train.max_epochs=2,0"]) == (
        "train.max_epochs must be an integer >= 1, got 0; set it with train.max_epochs=VALUE"
    )
    searchpath = f"hydra.searchpath=['file://{user_configs}']"
    assert problem([searchpath, "search=mine", "search.space.model.hidden_size.hgh=3"]) == (
        "unknown key search.space.model.hidden_size.hgh; "
        "did you mean search.space.model.hidden_size.high?"
    )
    # A top-level key that the user's config reads (trials: ${n_trials}) is not an unknown one.
    assert problem(["-cd", str(user_configs), "search=counted", "+n_trials=2"]) is None
    assert problem(["-cd", str(user_configs), "search=mine", "+n_trials=2"]).startswith(
        "unknown key n_trials; the keys of the config: cell,"
    )
    assert problem(["--config-dir", str(user_configs / "nope"), "search=mine"]) == (
        f"--config-dir {user_configs / 'nope'} does not exist; give the folder that holds your "
        "config groups, e.g. myconf for myconf/search/wide.yaml"
    )


def test_a_users_search_space_with_dotted_keys_gets_advice_that_works(user_configs):
    from lstm_variants.command_line import problem

    dotted = ["-cd", str(user_configs), "search=dotted"]
    assert problem([*dotted, "search.space.model.hidden_size.high=9"]) == (
        "search.space writes model.hidden_size as one dotted key, which an override cannot reach: "
        "give the field with '+search.space.model.hidden_size.high=VALUE' (it completes "
        "model.hidden_size), or write the space in sections, {model: {hidden_size: {...}}}"
    )
    assert problem([*dotted, "+search.space.model.hidden_size.high=9"]) is None
    assert problem([*dotted, "model.hidden_size=8"]).endswith(
        "drop model.hidden_size=..., or write the search space in sections, then take it out "
        "with '~search.space.model.hidden_size'"
    )


def test_search_paths_the_check_cannot_follow_are_left_to_hydra(tmp_path):
    from lstm_variants.command_line import problem

    assert problem(["hydra.searchpath=[pkg://elsewhere.conf]", "search=mine"]) is None
    assert problem(["--config-path", str(tmp_path), "search=mine"]) is None
    # A missing search-path folder: Hydra warns and goes on, and so does the check.
    with pytest.warns(UserWarning, match="is not available"):
        assert problem([f"hydra.searchpath=['file://{tmp_path / 'nope'}']"]) is None


def test_an_output_directory_that_cannot_be_made_is_one_error_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    out = cli(f"hydra.run.dir={tmp_path / 'a_file' / 'run'}", "progress=false")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert f"cannot be written ({tmp_path / 'a_file'}: not a directory)" in lines[0]


def test_ctrl_c_is_one_line_and_exit_status_130_and_no_record(tmp_path):
    # Python's own SIGINT handler, as from a terminal (a child of a background job, as under CI,
    # inherits SIGINT ignored); set in the child, not by forking this multithreaded process.
    as_from_a_terminal = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'lstm-variants'; runpy.run_module('lstm_variants.cli', run_name='__main__')"
    )
    process = subprocess.Popen(
        [
            sys.executable, "-c", as_from_a_terminal, *TINY, "train.max_epochs=100000",
            "train.patience=100000", f"hydra.run.dir={tmp_path}",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # The job has started once it printed its memory estimate (before compiling); waiting for
    # the line, not a fixed time, keeps a loaded machine from interrupting it before that.
    first = process.stderr.readline()
    assert first.startswith("memory: about "), first + process.communicate(timeout=120)[1]
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    said = [line for line in stderr.splitlines() if line.strip()]
    assert said == [
        "lstm-variants: interrupted; finished trials keep their records, and the same command "
        "trains only the trials without one, from their last checkpoint"
    ]
    assert not list(tmp_path.glob("records/*"))


def test_the_result_line_names_the_best_epoch_and_keeps_small_errors_readable():
    from lstm_variants.cli import format_summary

    record = {"cell": "vanilla", "dataset": "adding", "wall_seconds": 12.3, "metrics": {
        "metric": "mse", "best_valid": 8.2e-5, "test_at_best": 0.34561, "best_epoch": 4,
        "epochs_run": 6, "stopped": "max_epochs", "test_solved_fraction": 1.0}}  # fmt: skip
    assert format_summary(record) == (
        "vanilla on adding: mse valid=8.2e-05 test=0.3456 solved=1.000 "
        "(best epoch 4 of 6, stopped: max_epochs, 12s)"
    )


def test_progress_bars_stay_out_of_a_log_file(tmp_path):
    # stderr is a pipe here, as when a run's output goes to a file or a SLURM log.
    out = cli(*TINY, "progress=true", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr and "epochs:" not in out.stderr


def test_a_sweep_config_without_multirun_warns_that_it_is_one_run(tmp_path, app):
    out = app("+sweep=quickstart", "search.trials=1", "train.max_epochs=1", "progress=false",
              "dataset.options.n_train=32", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[0] == (
        "lstm-variants: warning: this config sweeps cell=vanilla,nfg,noaf,cifg,gru only with -m; "
        "this is one run, with cell=vanilla"
    )


def test_a_shard_without_trials_says_so(tmp_path, app):
    drawn_by_quick = "model.hidden_size"
    tiny = [argument for argument in TINY if not argument.startswith(drawn_by_quick)]
    out = app(*tiny, "search=quick", "search.trials=2", "search.shards=4", "search.shard=3",
              f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == (
        "nothing to train: search.shard=3 of search.shards=4 holds none of this job's 2 trial(s)"
    )
    assert not list(tmp_path.glob("records/*"))


def test_cli_help_works():
    out = cli("--help")
    assert out.returncode == 0 and "cell: cifg, fgr, gru" in out.stdout
    assert out.stdout.startswith("lstm-variants: train recurrent cells")  # not Hydra's stock line
    assert "powered by Hydra" not in out.stdout


def tiny_jsb_config(*overrides):
    """A one-epoch JSB Chorales config; skips the test where the real data is not set up."""
    data_dir = os.environ.get("LSTM_VARIANTS_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "jsb_chorales.pickle").exists():
        pytest.skip("set LSTM_VARIANTS_DATA_DIR to a directory with jsb_chorales.pickle")
    base = [o for o in TINY if o not in TINY_ADDING]
    return config("dataset=jsb_chorales", "train.max_epochs=1", *overrides, base=base)


def test_jsb_run_on_real_data(tmp_path):
    _, record = run_trial(tiny_jsb_config("model.hidden_size=16"), tmp_path, progress=False)
    assert record["metrics"]["metric"] == "nll_per_step"
    assert np.isfinite(record["metrics"]["test_at_best"])


def test_tensorboard_logger_mirrors_each_record_without_changing_its_id(tmp_path):
    pytest.importorskip("tensorboardX")  # in the dev group; a bare GPU image may lack it
    from lstm_variants.experiment import record_path

    path, record = run_trial(config("logger=tensorboard"), tmp_path, progress=False)
    assert path == record_path(config(), tmp_path)  # the logger is not part of the trial
    events = list((tmp_path / "tensorboard" / record["trial_id"]).glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_the_table_records_the_forget_bias_a_cell_starts_from():
    from lstm_variants.experiment import hyperparameters

    def bias(*overrides):
        return hyperparameters(config(*overrides))["forget_bias"]

    assert bias("cell=lstm_b") == 1.0  # built into Jozefowicz's LSTM-b, not an option
    assert bias("cell=lstm", "+cell.options.forget_bias=1.0") == 1.0
    assert bias("cell=lstm") == 0.0 and bias("cell=vanilla") == 0.0
    assert bias("cell=nfg") is None and bias("cell=cifg") is None and bias("cell=gru") is None


def test_a_print_flag_given_with_its_value_after_equals_keeps_the_next_override_checked():
    """``--cfg=job`` carries its value: the override after it is the command's, and is checked."""
    from lstm_variants.command_line import problem

    typo = "unknown key train.max_epoch; did you mean train.max_epochs?"
    assert problem(["--cfg=job", "train.max_epoch=2"]) == typo
    assert problem(["--package=train", "train.max_epoch=2"]) == typo


def test_hydras_line_for_a_missing_option_lists_the_options_and_not_its_search_path():
    from lstm_variants.command_line import problem

    line = problem(["hydra/launcher=nope"])
    assert line.startswith(
        "In 'hydra/config': Could not find 'hydra/launcher/nope'; available options in "
        "'hydra/launcher': basic, "
    )
    assert "search path" not in line.lower() and "provider" not in line


def test_an_unknown_field_of_a_searched_key_names_the_fields_of_its_distribution():
    # Not "not in the search space: add it": the key is there, the field is not one of its own.
    from lstm_variants.command_line import problem

    assert problem(["search=quick", "search.space.model.hidden_size.zzz=5"]) == (
        "unknown key search.space.model.hidden_size.zzz; the keys of "
        "search.space.model.hidden_size: distribution, low, high, integer"
    )


def test_a_record_names_the_commit_of_its_start_not_one_made_while_it_trained(
    tmp_path, monkeypatch
):
    """The commit was read at the first record, after the first population had trained: a
    checkout moved on meanwhile (a session's later commits) was credited with the run."""
    from lstm_variants import experiment, records

    trained = []
    train = experiment.train_population
    monkeypatch.setattr(
        experiment, "train_population", lambda *a, **k: trained.append(1) or train(*a, **k)
    )
    monkeypatch.setattr(
        records,
        "git_state",
        lambda _: {"git_commit": "b" * 40 if trained else "a" * 40, "git_dirty": False},
    )
    records.code_version.cache_clear()
    try:
        [(_, record)] = run_trials([config()], tmp_path, progress=False)
    finally:
        records.code_version.cache_clear()  # later tests read the real checkout
    assert trained and record["environment"]["git_commit"] == "a" * 40
