"""lstm-variants-diagnose on recorded trials: a study's own networks, fresh and trained."""

import json
import shutil

import numpy as np
import pytest
from test_diagnostics import _diagnose_config
from test_train import config

from lstm_variants.data import load_dataset
from lstm_variants.diagnostics import cli as diagnose_cli
from lstm_variants.diagnostics.recorded import load_trials, record_files, recorded_study
from lstm_variants.diagnostics.studies import cell_study, study_dataset
from lstm_variants.errors import ConfigError
from lstm_variants.experiment import run_trials
from lstm_variants.params_file import params_path
from lstm_variants.records import write_json_atomic

ADDING = ("dataset.options.T=11", "dataset.options.n_valid=8", "model.hidden_size=4")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three vanilla trials (learning rates 1e-3, 1e-2, 3e-2) and one GRU trial, in one directory."""
    directory = tmp_path_factory.mktemp("study")
    cfgs = [config(f"optimizer.learning_rate={rate}", *ADDING) for rate in (1e-3, 1e-2, 3e-2)]
    cfgs.append(config("cell=gru", *ADDING))
    results = run_trials(cfgs, directory, progress=False)
    return directory, [path for path, _ in results], [record for _, record in results]


def test_a_directory_gives_each_cells_best_trials_by_validation(study):
    directory, paths, records = study
    best_vanilla = min(range(3), key=lambda i: records[i]["metrics"]["best_valid"])
    assert set(record_files([directory], per_cell=1)) == {paths[best_vanilla], paths[3]}
    two = record_files([directory], per_cell=2)
    ranked = sorted(range(3), key=lambda i: records[i]["metrics"]["best_valid"])
    assert [p for p in two if p != paths[3]] == [paths[i] for i in ranked[:2]]
    assert record_files([paths[0], directory], per_cell=1)[0] == paths[0]  # files as given


def test_fresh_is_the_trials_own_initialisation_and_trained_its_saved_parameters(tmp_path, study):
    _, paths, records = study
    same_data = ("dataset.options.n_train=64", "dataset.options.n_test=32")  # as the trial's
    cfg = _diagnose_config(
        tmp_path, *ADDING, *same_data, "diagnose.cells=[vanilla]", "diagnose.states=[fresh]"
    )
    (trial,) = load_trials([paths[0]], per_cell=1)
    fresh, trained = recorded_study(cfg["diagnose"] | {"states": ["fresh", "trained"]}, [trial])
    # The same config and seed measured by the plain cell study, fresh: the same numbers.
    reference = cell_study(cfg, study_dataset(cfg), progress=False)[0]
    np.testing.assert_allclose(
        fresh["flow"].profiles["h"], reference["flow"].profiles["h"], rtol=1e-6
    )
    assert not np.allclose(trained["flow"].profiles["h"], fresh["flow"].profiles["h"])
    assert trained["metrics"] == records[0]["metrics"] and fresh["metrics"] is None
    assert fresh["cell"] == f"vanilla {records[0]['trial_id'][:6]}"


@pytest.mark.parametrize("form", ["[{}]", "{}"])  # a list, or one path without brackets
def test_diagnose_run_on_a_study_writes_the_report_of_its_trials(tmp_path, study, form):
    directory, paths, records = study
    cfg = _diagnose_config(
        tmp_path, "diagnose.records=" + form.format(directory), "diagnose.num_sequences=100"
    )
    written = diagnose_cli.run(cfg, tmp_path)
    assert {path.name for path in written} >= {"summary.md", "results.json", "gradient_flow.png"}
    summary = (tmp_path / "summary.md").read_text()
    assert "# Diagnostics of 2 recorded trial(s): adding" in summary
    assert ", 8 valid sequences" in summary  # all there are, not the 100 asked for
    assert f"| gru {records[3]['trial_id'][:6]} | trained |" in summary
    assert str(paths[3]) in summary
    assert "Initialisation study" not in summary  # the config's own studies are skipped
    profiles = json.loads((tmp_path / "results.json").read_text())["profiles"]
    assert len(profiles) == 4  # 2 trials x (fresh, trained)


def copy_trial(path, directory, change):
    """A copy of the trial at ``path`` (record and parameters) in ``directory``, its record
    changed by ``change``: a trial that would cost a training run to make for real."""
    record = json.loads(path.read_text())
    change(record)
    copied = directory / "records" / path.name
    write_json_atomic(copied, record)
    shutil.copy(params_path(path), params_path(copied))
    return copied


def test_trials_of_different_datasets_or_without_parameters_are_one_line_errors(tmp_path, study):
    _, paths, _ = study

    def longer_sequences(record):  # as if trained on longer sequences: its data's fingerprint too
        options = record["config"]["dataset"]["options"] | {"T": 12}
        record["config"]["dataset"]["options"] = options
        record["data_sha256"] = load_dataset(record["dataset"], **options).fingerprint()

    other = copy_trial(paths[0], tmp_path / "other", longer_sequences)
    with pytest.raises(ConfigError, match="2 different datasets or dataset options"):
        load_trials([paths[0], other], per_cell=1)
    bare = copy_trial(paths[0], tmp_path / "bare", lambda record: record.pop("params_file"))
    with pytest.raises(
        ConfigError, match="no trial under .* has both a validation result and saved parameters"
    ):
        record_files([bare.parent.parent], per_cell=1)
    with pytest.raises(ConfigError, match="neither a record file nor a directory"):
        record_files([tmp_path / "nowhere"], per_cell=1)


def test_a_diagnosis_of_records_goes_to_a_folder_named_after_their_study_and_dataset(
    study, tmp_path
):
    """Not after dataset=adding, the default: a diagnosis of JSB records wrote into
    outputs/diagnose/adding/ and removed the figures of that folder's own diagnosis."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from lstm_variants.config_folders import CONFIG_DIR

    def run_dir(*overrides):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("diagnose", overrides=list(overrides), return_hydra_config=True)
        return OmegaConf.select(cfg, "hydra.run.dir")

    directory, paths, _ = study
    assert run_dir() == "outputs/diagnose/adding"
    assert run_dir("dataset=jsb_chorales") == "outputs/diagnose/jsb_chorales"
    assert run_dir(f"diagnose.records=[{directory}]") == "outputs/diagnose/single_adding"
    other = tmp_path / "other.json"  # another study on another dataset: a folder of its own
    record = json.loads(paths[0].read_text())
    other.write_text(json.dumps({**record, "dataset": "xml", "study": "greff_xml"}))
    assert run_dir(f"diagnose.records=[{other}]") == "outputs/diagnose/greff_xml_xml"
    assert run_dir(f"diagnose.records=[{paths[0]},{other}]") == (
        "outputs/diagnose/greff_xml+single_adding+xml"
    )
    assert run_dir(f"diagnose.records={tmp_path / 'none'}") == "outputs/diagnose/records"


def test_lags_the_trials_sequences_do_not_reach_are_one_line(tmp_path, study):
    """Every rate of the report was NaN (a table of '-') when first_lag was past their lengths."""
    directory, _, _ = study
    cfg = _diagnose_config(
        tmp_path, f"diagnose.records=[{directory}]", "diagnose.first_lag=11", "diagnose.last_lag=50"
    )
    with pytest.raises(ConfigError, match="longest measured valid sequence has 12 steps"):
        diagnose_cli.run(cfg, tmp_path)
    assert not (tmp_path / "summary.md").exists()


def test_a_record_that_cannot_be_read_is_named_not_passed_over(tmp_path, study, capsys):
    # The best vanilla trial's record cut short: the second best was diagnosed without a word.
    directory, paths, records = study
    best = min(range(3), key=lambda i: records[i]["metrics"]["best_valid"])
    copy = tmp_path / "study"
    shutil.copytree(directory, copy)
    broken = copy / paths[best].relative_to(directory)
    broken.write_text(broken.read_text()[:40])
    capsys.readouterr()
    assert broken not in record_files([copy], per_cell=1)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "lstm-variants-diagnose: warning: diagnose.records: 1 record file(s) left out, "
        f"unreadable: {broken} (invalid JSON"
    )
