"""Trained parameters saved beside each record, and a trial rebuilt from them."""

import json
import os
import shutil
import stat

import jax
import numpy as np
import pytest
from test_train import config, tiny_jsb_config

from lstm_variants.analysis.collect import collect
from lstm_variants.data import load_dataset
from lstm_variants.errors import RecordError
from lstm_variants.experiment import run_trial, run_trials
from lstm_variants.params_file import load_params, params_path, save_params
from lstm_variants.records import write_json_atomic
from lstm_variants.trained import load_trial


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    """Two trials of different hidden sizes trained as one padded population, and a 2-layer GRU."""
    directory = tmp_path_factory.mktemp("trained")
    shared = ("+cell.options.forget_bias=1.0", "train.max_padding_waste=0.9")  # one bucket
    cfgs = [
        config("model.hidden_size=8", *shared),
        config("model.hidden_size=5", "seed=1", *shared),
    ]
    results = run_trials(cfgs, directory, progress=False)
    results.append(run_trial(config("cell=gru", "model.num_layers=2"), directory, progress=False))
    return directory, results


def test_each_record_names_its_parameter_file_and_the_file_is_beside_it(population):
    _, results = population
    for path, record in results:
        entry = record["params_file"]
        assert entry["name"] == f"{record['trial_id']}.npz" == params_path(path).name
        assert params_path(path).stat().st_size == entry["bytes"]
    padded = results[1][1]["population"]  # hidden size 5, trained at its bucket's 8
    assert (padded["size"], padded["padded_hidden_size"]) == (2, 8)


def test_saved_parameters_reproduce_the_recorded_test_metric(population):
    """The padded population evaluated a member at its bucket's width; the file holds the
    stand-alone network, and evaluating that alone gives the record's numbers."""
    _, results = population
    for path, record in results:
        trial = load_trial(path)
        test, valid = trial.evaluate("test"), trial.evaluate("valid")
        np.testing.assert_allclose(test["loss"], record["metrics"]["test_loss"], rtol=1e-5)
        np.testing.assert_allclose(valid["loss"], record["metrics"]["best_valid_loss"], rtol=1e-5)
        np.testing.assert_allclose(
            test["solved_fraction"], record["metrics"]["test_solved_fraction"], rtol=1e-6
        )
    # The variables are Flax's, as the class docstring says: apply takes them as they are.
    part = trial.data.test
    outputs = trial.model.apply(trial.variables, part.inputs[:4], part.lengths[:4])
    assert outputs.shape == part.targets[:4].shape
    with pytest.warns(DeprecationWarning, match="TrainedTrial.params is TrainedTrial.variables"):
        assert trial.params is trial.variables  # the old name still reads


def test_parameters_are_the_stand_alone_networks_by_the_papers_names(population):
    _, ((small_path, _), (smaller_path, _), (gru_path, _)) = population
    small, smaller = load_trial(small_path), load_trial(smaller_path)
    layer = smaller.layer(0)
    assert layer["R_z"].shape == (5, 5) and layer["W_z"].shape == (2, 5)
    assert {"b_f", "p_i", "p_f", "p_o"} <= set(layer)
    assert small.layer(0)["R_z"].shape == (8, 8)
    assert not np.array_equal(small.layer(0)["b_f"], np.ones(8))  # trained away from its init
    gru = load_trial(gru_path)
    assert gru.layer(1)["W_u"].shape == (8, 8)  # Jozefowicz's GRU: update gate u, reset r
    with pytest.raises(RecordError, match="no layer 2: this trial has 2 layer"):
        gru.layer(2)
    with pytest.raises(KeyError) as missing:  # GRU has no forget gate: a name it lacks
        gru.layer(0)["b_f"]
    assert str(missing.value) == (
        "layer 0 of this gru trial has no parameter 'b_f'; it has: "
        + ", ".join(sorted(gru.layer(0)))
    )
    assert "b_r" in str(missing.value) and "b_f" not in gru.layer(0)
    with pytest.raises(RecordError, match="unknown split 'dev'"):
        gru.evaluate("dev")


def test_the_file_reads_with_numpy_alone(population):
    _, ((path, _), *_) = population
    with np.load(params_path(path)) as arrays:
        assert "params/layer_0/b_f" in arrays.files
        assert "params/readout/kernel" in arrays.files
        np.testing.assert_array_equal(
            arrays["params/layer_0/b_f"], load_trial(path).layer(0)["b_f"]
        )


def test_a_changed_or_missing_file_is_refused_in_one_line(tmp_path, population):
    _, ((trained, _), *_) = population
    path = tmp_path / "records" / trained.name
    path.parent.mkdir()
    shutil.copy(trained, path)
    shutil.copy(params_path(trained), params_path(path))
    npz = params_path(path)
    original = npz.read_bytes()
    npz.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(RecordError, match="sha256 differs") as error:
        load_params(path)
    assert "\n" not in str(error.value)
    npz.unlink()
    with pytest.raises(RecordError, match="parameter file missing"):
        load_trial(path)
    with pytest.raises(RecordError, match="no such record"):
        load_trial(tmp_path / "records" / "nothing.json")
    (tmp_path / "other.json").write_text(json.dumps({"cell": "x"}))
    with pytest.raises(RecordError, match="not a run record"):
        load_trial(tmp_path / "other.json")


def test_data_other_than_the_trials_own_is_refused_before_the_model_is_built(tmp_path, population):
    """An edited data file or another generator version rebuilds other data under the same name:
    the record's data_sha256 tells them apart (here, the adding problem drawn from another seed)."""
    _, ((trained, record), *_) = population
    data = load_dataset(record["dataset"], **record["config"]["dataset"]["options"])
    assert record["data_sha256"] == data.fingerprint()
    path = tmp_path / "records" / trained.name
    path.parent.mkdir()
    shutil.copy(params_path(trained), params_path(path))
    other = json.loads(trained.read_text())
    other["config"]["dataset"]["options"]["seed"] += 1
    write_json_atomic(path, other)
    with pytest.raises(RecordError, match="not the data this trial was trained on") as error:
        load_trial(path)
    assert "\n" not in str(error.value)
    del other["data_sha256"]  # a record from before the fingerprint was kept: not checked
    write_json_atomic(path, other)
    load_trial(path)


def test_save_params_false_writes_none_and_removes_a_retrained_trials_old_file(tmp_path):
    path, record = run_trial(config(), tmp_path, progress=False)
    assert params_path(path).exists()
    again, retrained = run_trial(
        config("save_params=false", "overwrite=true"), tmp_path, progress=False
    )
    assert again == path  # save_params does not change the trial id
    assert retrained["params_file"] is None and not params_path(path).exists()
    with pytest.raises(RecordError, match="no parameters were saved"):
        load_trial(path)
    assert not list(tmp_path.glob("records/.*.tmp"))


class Killed(BaseException):
    """A kill between a retrained trial's new parameter file and its new record."""


def test_a_kill_before_a_retrained_trials_record_leaves_no_record_naming_another_file(
    tmp_path, monkeypatch
):
    from lstm_variants import experiment

    path, record = run_trial(config(), tmp_path, progress=False)
    # As if trained by an earlier version of the code: other parameters, and a record naming them.
    other = jax.tree_util.tree_map(lambda leaf: leaf + 1.0, load_params(path, record))
    record["params_file"] = save_params(params_path(path), other)
    write_json_atomic(path, record)

    def killed(*_):
        raise Killed

    monkeypatch.setattr(experiment, "write_json_atomic", killed)
    with pytest.raises(Killed):  # retrained, killed after its parameter file, before its record
        run_trial(config("overwrite=true"), tmp_path, progress=False)
    monkeypatch.undo()
    assert not path.exists()  # gone with its parameters, not left to name a file not its own
    rerun, rewritten = run_trial(config(), tmp_path, progress=False)  # writes the missing record
    assert rerun == path and load_trial(path).record["params_file"] == rewritten["params_file"]


def test_a_ctrl_c_while_a_population_is_recorded_waits_for_all_of_its_records(
    tmp_path, monkeypatch
):
    """Cut short after its first record, a population without a checkpoint due would train its
    other trials again, as another population (of another size) than the uninterrupted run's."""
    import signal

    from lstm_variants import experiment

    cfgs = [config("checkpoint_minutes=null"), config("checkpoint_minutes=null", "seed=1")]
    write_params = experiment.write_params

    def ctrl_c_while_writing(*args):
        signal.raise_signal(signal.SIGINT)  # the handler in force: KeyboardInterrupt
        return write_params(*args)

    monkeypatch.setattr(experiment, "write_params", ctrl_c_while_writing)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (xdist
    try:  # workers ignore SIGINT)
        with pytest.raises(KeyboardInterrupt):
            run_trials(cfgs, tmp_path, progress=False)
    finally:
        signal.signal(signal.SIGINT, handler)
    records = sorted(tmp_path.glob("records/*.json"))
    assert len(records) == 2
    assert {json.loads(path.read_text())["population"]["size"] for path in records} == {2}


def test_the_results_table_points_at_each_parameter_file(population, tmp_path):
    directory, results = population
    table = collect([directory]).trials.set_index("trial_id")
    for path, record in results:
        assert table.loc[record["trial_id"], "params_path"] == str(params_path(path))
    copied = tmp_path / "copied" / "records"  # a study shared without its .npz files
    copied.mkdir(parents=True)
    shutil.copy(results[0][0], copied)
    assert collect([copied]).trials["params_path"].isna().all()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_records_and_parameter_files_get_the_permissions_of_any_new_file(tmp_path, umask):
    """Not mkstemp's private 0600: colleagues sharing a study's directory must read its results."""
    previous = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "record.json", {"a": 1})
        save_params(tmp_path / "record.npz", {"params": {"b_f": np.zeros(3)}})
    finally:
        os.umask(previous)
    for name in ("record.json", "record.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_a_record_from_another_machine_finds_its_data_here(tmp_path):
    """Its data directory does not exist here: $LSTM_VARIANTS_DATA_DIR (or the cache) is used,
    nothing is created at the recorded path, and the test metric comes out as recorded."""
    path, record = run_trial(tiny_jsb_config("model.hidden_size=4"), tmp_path, progress=False)
    elsewhere = tmp_path / "elsewhere" / "data"
    record["config"]["data_dir"] = str(elsewhere)
    write_json_atomic(path, record)
    trial = load_trial(path)
    assert not elsewhere.exists()
    np.testing.assert_allclose(trial.evaluate()["loss"], record["metrics"]["test_loss"], rtol=1e-5)
    elsewhere.mkdir(parents=True)  # it exists here but lacks the file: still not where it is
    load_trial(path)
    assert not list(elsewhere.iterdir())


def test_a_parameter_file_holding_pickled_objects_is_refused_not_unpickled(tmp_path):
    """A study's files come from colleagues: loading its parameters runs no pickled code, even
    from a file whose sha256 its record holds."""
    from lstm_variants.data.cache import sha256_of

    path = tmp_path / "0123456789abcdef.npz"
    np.savez(path, **{"params/readout/kernel": np.array([{"not": "an array"}], dtype=object)})
    record = {
        "params_file": {"name": path.name, "sha256": sha256_of(path)},
        "metrics": {"best_valid": 1.0},
    }
    with pytest.raises(ValueError, match="allow_pickle=False"):
        load_params(path.with_suffix(".json"), record)


def test_parameters_load_with_the_record_given_and_no_record_file(tmp_path):
    """The record given (as a table row or a notebook holds it) is the one used: its file
    entry names the parameters, read back as the nested dict that was saved."""
    params = {"params": {"layer_0": {"b_f": np.arange(3.0)}, "readout": {"kernel": np.eye(2)}}}
    path = tmp_path / "0123456789abcdef.json"
    record = {"params_file": save_params(params_path(path), params), "metrics": {}}
    assert not path.exists()
    loaded = load_params(path, record)
    jax.tree.map(np.testing.assert_array_equal, loaded, params)
    assert loaded.keys() == params.keys()


def test_a_record_whose_parameter_entry_lost_its_sha256_is_refused_in_one_line(tmp_path):
    """A hand-edited record without the sha256 has nothing to check its file by: one line, not a
    KeyError's traceback."""
    params = {"params": {"readout": {"kernel": np.eye(2)}}}
    path = tmp_path / "0123456789abcdef.json"
    entry = save_params(params_path(path), params)
    del entry["sha256"]
    with pytest.raises(RecordError, match="holds no sha256") as error:
        load_params(path, {"params_file": entry, "metrics": {}})
    assert "\n" not in str(error.value)


def test_a_trial_read_at_theta_saves_the_parameters_its_record_measured(tmp_path):
    """Under optimizer.evaluate_at=theta the record's validation and test, and the saved file, are
    Sutskever's theta_t: the file reproduces the record, and both differ from the lookahead run."""
    sgd = ("optimizer=sgd", "optimizer.learning_rate=0.5", "optimizer.momentum=0.9")
    theta_path, theta = run_trial(
        tiny_jsb_config(*sgd, "optimizer.evaluate_at=theta"), tmp_path, progress=False
    )
    _, lookahead = run_trial(tiny_jsb_config(*sgd), tmp_path, progress=False)
    assert theta["trial_id"] != lookahead["trial_id"]
    trial = load_trial(theta_path)
    np.testing.assert_allclose(trial.evaluate("test")["loss"], theta["metrics"]["test_loss"], 1e-5)
    np.testing.assert_allclose(
        trial.evaluate("valid")["loss"], theta["metrics"]["best_valid_loss"], rtol=1e-5
    )
    assert theta["curve"][0]["train_loss"] == lookahead["curve"][0]["train_loss"]
    assert abs(theta["metrics"]["test_loss"] - lookahead["metrics"]["test_loss"]) > 1e-3
