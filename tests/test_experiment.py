"""How run_trials plans its populations and reports its progress, without training: configs that
share all but their member keys form populations of at most population_size, a saved population
trains again whole, and the progress line counts, ranks and projects as it says."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from lstm_variants import experiment
from lstm_variants.experiment import planned_populations, shared_part


def trial(cell, hidden_size, seed, population_size=2):
    """The parts of a trial config that planning reads."""
    return {
        "cell": {"name": cell},
        "model": {"hidden_size": hidden_size},
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "train": {"max_epochs": 3},
        "seed": seed,
        "population_size": population_size,
        "search": {"trial": seed},
    }


CFGS = [trial("vanilla", 8, 0), trial("vanilla", 16, 1), trial("vanilla", 8, 2)]
CFGS += [trial("gru", 8, 0), trial("gru", 12, 1)]


def record_paths(folder):
    return [Path(folder) / "records" / f"trial{index}.json" for index in range(len(CFGS))]


def test_configs_differing_in_member_keys_and_search_index_share_populations_of_the_size_asked(
    tmp_path,
):
    assert shared_part(CFGS[0]) == shared_part(CFGS[1]) != shared_part(CFGS[3])
    work = planned_populations(CFGS, record_paths(tmp_path), {0, 1, 2, 3, 4}, tmp_path)
    assert sorted(work.values()) == [[[0, 1], [2]], [[3, 4]]]
    # Only what is missing trains; without population_size, one population per shared part.
    unlimited = [{**cfg, "population_size": 0} for cfg in CFGS]
    work = planned_populations(unlimited, record_paths(tmp_path), {0, 2, 4}, tmp_path)
    assert sorted(work.values()) == [[[0, 2]], [[4]]]


def save_listing(folder, name, trials):
    listing = Path(folder) / "checkpoints" / name / "trials.json"
    listing.parent.mkdir(parents=True)
    listing.write_text(json.dumps({"trials": trials, "first_saved": 1.0}))


def test_a_saved_population_trains_again_whole_and_the_rest_around_it(tmp_path):
    paths = record_paths(tmp_path)
    # Saved by an earlier run that grouped trials 0 and 2: they train together again, from it.
    save_listing(tmp_path, "a", [paths[2].stem, paths[0].stem])
    # Saved with a trial this run does not train, or larger than population_size now: not used.
    save_listing(tmp_path, "b", [paths[3].stem, "another-trial"])
    work = planned_populations(CFGS, paths, {0, 1, 2, 3, 4}, tmp_path)
    assert sorted(work.values()) == [[[0, 2], [1]], [[3, 4]]]
    save_listing(tmp_path, "c", [paths[3].stem, paths[4].stem])
    smaller = [{**cfg, "population_size": 1} for cfg in CFGS]
    work = planned_populations(smaller, paths, {0, 1, 2, 3, 4}, tmp_path)
    assert sorted(work.values()) == [[[0], [1], [2]], [[3], [4]]]


def test_the_progress_line_counts_ranks_and_projects(capsys, monkeypatch):
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(experiment, "time", SimpleNamespace(time=lambda: clock.now))

    def record(best_valid, stopped="early"):
        return {"metrics": {"best_valid": best_valid, "stopped": stopped}}

    line = experiment._ProgressLine(total=4, skipped=6)  # 6 configs, 2 of them recorded
    line.recorded_elsewhere(1)  # one more recorded by another process meanwhile
    clock.now += 60
    line.update([record(0.5)])
    assert capsys.readouterr().err == (
        "trials: 1/3 done (3 already recorded, 0 diverged), best valid 0.5, 60 s, ETA 2.0 min\n"
    )
    clock.now += 30
    line.update([record(None, "diverged"), record(0.25)])
    assert capsys.readouterr().err == (
        "trials: 3/3 done (3 already recorded, 1 diverged), best valid 0.25, 90 s, ETA 0 s\n"
    )
    alone = experiment._ProgressLine(total=1, skipped=1)  # a single trial: no line
    alone.update([record(0.5)])
    assert capsys.readouterr().err == ""


def test_a_best_validation_of_zero_stays_the_best(capsys):
    """A solved classification task can reach a float32 loss of exactly 0.0: not "no best yet"."""
    line = experiment._ProgressLine(total=3, skipped=3)
    line.update([{"metrics": {"best_valid": 0.0, "stopped": "early"}}])
    line.update([{"metrics": {"best_valid": 0.5, "stopped": "early"}}])
    assert "best valid 0," in capsys.readouterr().err.splitlines()[-1]


def test_a_trial_that_never_validated_or_does_not_save_gets_no_parameter_file(tmp_path):
    from lstm_variants.experiment import write_params

    params = {"params": {"b": np.zeros(2)}}
    path = tmp_path / "records" / "0123456789abcdef.json"
    entry = write_params({"save_params": True}, path, params)
    assert entry["name"] == "0123456789abcdef.npz" and path.with_suffix(".npz").exists()
    # Retrained, it diverged before its first validation: its "best" parameters would be its
    # initial ones, and the old file is not its own any more.
    assert write_params({"save_params": True}, path, params, validated=False) is None
    assert not path.with_suffix(".npz").exists()
    write_params({}, path, params)  # saved by default
    assert write_params({"save_params": False}, path, params) is None
    assert not path.with_suffix(".npz").exists()


def test_a_checkpoint_goes_once_every_one_of_its_trials_is_recorded_after_its_first_save(
    tmp_path,
):
    import os

    from lstm_variants.experiment import remove_stale_checkpoints

    records = tmp_path / "records"
    records.mkdir()
    for name in ("done", "in_flight"):  # both first saved at 1000
        listing = tmp_path / "checkpoints" / name / "trials.json"
        listing.parent.mkdir(parents=True)
        listing.write_text(
            json.dumps({"trials": [f"{name}_a", f"{name}_b"], "first_saved": 1000.0})
        )
    for trial, written in (("done_a", 2000), ("done_b", 1001), ("in_flight_a", 2000),
                           ("in_flight_b", 999)):  # fmt: skip
        (records / f"{trial}.json").write_text("{}")
        os.utime(records / f"{trial}.json", (written, written))
    assert remove_stale_checkpoints(tmp_path) == [tmp_path / "checkpoints" / "done"]
    assert (tmp_path / "checkpoints" / "in_flight").is_dir()


def test_a_file_where_the_records_folder_goes_is_one_error_before_training(tmp_path):
    import pytest
    from test_train import config

    from lstm_variants.errors import ConfigError
    from lstm_variants.experiment import run_trials

    (tmp_path / "records").write_text("not a folder")
    with pytest.raises(ConfigError, match="records is a file where the records folder goes"):
        run_trials([config()], tmp_path, progress=False)
    (tmp_path / "records").unlink()
    (tmp_path / ".locks").write_text("not a folder")  # was a FileExistsError traceback
    with pytest.raises(ConfigError, match=".locks is a file where the population locks folder"):
        run_trials([config()], tmp_path, progress=False)


def test_how_a_trial_runs_leaves_its_id_alone():
    from lstm_variants.experiment import OPERATIONAL_KEYS, trial_identity

    cfg = trial("vanilla", 8, 0)
    assert "population_size" in OPERATIONAL_KEYS
    run_differently = {**cfg, "population_size": 7, "progress": False, "overwrite": True}
    assert trial_identity(run_differently) == trial_identity(cfg)
    assert trial_identity({**cfg, "seed": 1}) != trial_identity(cfg)


def test_the_table_gets_each_training_noise_under_its_own_name():
    from test_train import config

    from lstm_variants.experiment import hyperparameters

    values = hyperparameters(config("train.input_noise=0.1", "train.dropout=0.25"))
    assert (values["input_noise"], values["dropout"]) == (0.1, 0.25)
    assert hyperparameters(config())["input_noise"] == 0.0


def test_whether_data_may_be_downloaded_leaves_a_trials_id_alone():
    # A study of JSB (download: true) resumed on a node without network with
    # dataset.options.download=false trained every trial again, and its summary counted each twice.
    from lstm_variants.compose import compose_trials
    from lstm_variants.experiment import trial_identity
    from lstm_variants.records import read_record

    online = compose_trials("dataset=jsb_chorales")[0]
    offline = compose_trials("dataset=jsb_chorales", "dataset.options.download=false")[0]
    assert trial_identity(offline) == trial_identity(online)
    assert trial_identity({**online, "seed": 1}) != trial_identity(online)
    # The ids of records written with the default stay as they were.
    committed = Path(__file__).parents[1] / "docs/studies/greff_jsb/records/0056470b81381496.json"
    record = read_record(committed)
    assert record["config"]["dataset"]["options"]["download"] is True
    assert trial_identity(record["config"]) == record["trial_id"] == committed.stem
