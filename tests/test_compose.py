"""From Python, compose_trials gives the trials the command trains: the same ids, the same records."""

import json

import pytest
from omegaconf import OmegaConf
from test_train import TINY, TINY_ADDING, VOLATILE

from lstm_variants.compose import compose_config, compose_trials
from lstm_variants.errors import ConfigError
from lstm_variants.experiment import run_trials


def test_a_notebook_trains_and_records_what_the_command_trains(tmp_path, app):
    overrides = [*TINY_ADDING, "train.max_epochs=2", "train.batch_size=16", "search=quick", "search.trials=2",
                 "search.space.model.hidden_size.high=20", "cell=cifg", "progress=false", "compilation_cache=null"]  # fmt: skip
    results = run_trials(compose_trials(*overrides), str(tmp_path / "notebook"), progress=False)
    ran = app(*overrides, f"hydra.run.dir={tmp_path / 'command'}")
    assert ran.returncode == 0, ran.stderr
    commanded = sorted((tmp_path / "command" / "records").glob("*.json"))
    assert [path.name for path in commanded] == sorted(path.name for path, _ in results)
    for path, record in results:
        recorded = json.loads((tmp_path / "command" / "records" / path.name).read_text())
        mine = json.loads(json.dumps(record))
        assert {k: v for k, v in recorded.items() if k not in VOLATILE} == {
            k: v for k, v in mine.items() if k not in VOLATILE
        }
    # Either one's rerun finds the other's records.
    rerun = run_trials(compose_trials(*overrides), tmp_path / "command", progress=False)
    assert [record for _, record in rerun] == [None, None]


def test_what_the_command_line_refuses_is_one_config_error():
    with pytest.raises(ConfigError, match=r"unknown cell 'vanila' \(did you mean vanilla\?\)"):
        compose_config("cell=vanila")
    with pytest.raises(ConfigError, match="model.hidden_size is set on the command line, but"):
        compose_trials("search=greff", "optimizer=sgd", "model.hidden_size=8")
    with pytest.raises(ConfigError, match="-m: flags are the command's; give only overrides"):
        compose_config("-m", "cell=gru,vanilla")
    relative = compose_config("dataset=text_file", "dataset.options.path=book.txt")
    assert relative["dataset"]["options"]["path"].endswith("/book.txt")  # absolute, as the command


def test_one_job_at_a_time_and_no_check_of_the_commands_own_folders(monkeypatch):
    """A sweep's values, or a sweep config's grid, are several jobs: each is composed alone. The
    command's output folder is not where run_trials writes: a full disk there is no error."""
    with pytest.raises(ConfigError, match=r"seed=range\(2\) sweeps several values: compose one"):
        compose_trials("seed=range(2)")
    with pytest.raises(ConfigError, match=r"this config sweeps cell=vanilla,nig,.*\(cell=vanilla"):
        compose_trials("+sweep=greff_jsb")
    assert {trial["cell"]["name"] for trial in compose_trials("+sweep=greff_jsb", "cell=nig")} == {
        "nig"
    }
    from lstm_variants import output_directory

    full = output_directory.shutil.disk_usage(".")._replace(free=0)
    monkeypatch.setattr(output_directory.shutil, "disk_usage", lambda path: full)
    assert compose_config("cell=gru")["cell"]["name"] == "gru"


def test_run_trials_names_what_it_takes_when_given_something_else(tmp_path):
    (cfg,) = compose_trials(*TINY)
    with pytest.raises(TypeError, match="run_trials takes a list of resolved plain dicts, one"):
        run_trials(cfg, tmp_path)
    with pytest.raises(TypeError, match=r"compose_trials\('cell=gru', ...\) gives them"):
        run_trials([OmegaConf.create(cfg)], tmp_path)
    with pytest.raises(ConfigError, match="a trial config without dataset, model, optimizer"):
        run_trials([{"cell": {"name": "gru"}}], tmp_path)


def test_an_unpaired_jobs_trials_are_its_own_draws():
    """An unpaired job draws values of its own cell's, as the command's job of that cell does."""
    from lstm_variants.search import trial_configs

    overrides = ("search=quick", "search.paired=false", "search.trials=2")
    first, second = compose_trials(*overrides), compose_trials(*overrides, "cell=gru")
    assert second == trial_configs(compose_config(*overrides, "cell=gru"))
    assert [t["search"]["sampled"] for t in first] != [t["search"]["sampled"] for t in second]
