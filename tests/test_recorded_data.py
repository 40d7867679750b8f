"""A rerun does not keep records trained on other data than the config gives now."""

import json
import subprocess

import numpy as np
import pytest
from test_train import config

from lstm_variants.errors import ConfigError
from lstm_variants.experiment import run_trials
from lstm_variants.records import write_json_atomic

TINY_TEXT = ("train.max_epochs=1", "model.hidden_size=4", "dataset.options.streams=2",
             "dataset.options.window=20", "dataset.options.valid_fraction=0.2",
             "dataset.options.test_fraction=0.2")  # fmt: skip


def text_config(path, *overrides):
    return config("dataset=text_file", f"dataset.options.path={path}", *TINY_TEXT, *overrides,
                  base=["progress=false"])  # fmt: skip


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "book.txt"
    letters = np.random.default_rng(0).choice(list("abcde \n"), size=1500)
    path.write_text("".join(letters))
    return path


def test_a_record_of_since_edited_data_stops_the_rerun_in_one_line(tmp_path, book):
    """Skipped, it would put results on two versions of the text into one table; retrained, it
    would replace a result unasked. overwrite=true retrains it on the data of now."""
    cfg = text_config(book)
    folder = tmp_path / "run"
    ((path, first),) = run_trials([cfg], folder, progress=False)
    assert run_trials([cfg], folder, progress=False) == [(path, None)]  # same data: skipped

    book.write_text(book.read_text().replace("a", "b", 3))
    with pytest.raises(ConfigError) as refused:
        run_trials([cfg], folder, progress=False)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message
    assert f"data_sha256 {first['data_sha256'][:12]}, now " in message
    assert "overwrite=true" in message and "1 of 1 records of text_file" in message
    assert json.loads(path.read_text()) == json.loads(json.dumps(first))  # the record is kept
    # The command it gives lists the stale records, and only them.
    (path.parent / "other.json").write_text(json.dumps({"data_sha256": "f" * 64}))
    listing = message.split("(list them with: ")[1].split(")")[0]
    listed = subprocess.run(listing, shell=True, capture_output=True, text=True, check=True)
    assert listed.stdout.split() == [str(path)]
    (path.parent / "other.json").unlink()

    ((_, retrained),) = run_trials([text_config(book, "overwrite=true")], folder, progress=False)
    assert retrained["data_sha256"] != first["data_sha256"]
    assert run_trials([cfg], folder, progress=False) == [(path, None)]


def test_records_without_a_fingerprint_or_without_their_data_here_are_kept(tmp_path, book):
    """A record from before data_sha256 existed is not checked; nor is one whose data is not on
    this machine: a finished study's tables are rebuilt without its data."""
    cfg = text_config(book)
    ((path, record),) = run_trials([cfg], tmp_path, progress=False)
    book.write_text("other text " * 100)
    write_json_atomic(path, {k: v for k, v in record.items() if k != "data_sha256"})
    assert run_trials([cfg], tmp_path, progress=False) == [(path, None)]

    write_json_atomic(path, record)
    book.unlink()
    assert run_trials([cfg], tmp_path, progress=False) == [(path, None)]


def test_records_of_data_not_on_this_machine_are_not_checked_by_downloading_it(
    tmp_path, monkeypatch
):
    """A rerun with nothing to train loaded nothing before the check existed; JSB's loader would
    download its file (or wait a minute for a firewall) to compare fingerprints."""
    from lstm_variants import recorded_data
    from lstm_variants.recorded_data import check_recorded_data

    def no_loading(*args, **kwargs):
        raise AssertionError("a dataset was loaded")

    monkeypatch.setattr(recorded_data, "load_dataset", no_loading)
    empty = tmp_path / "data"
    empty.mkdir()
    cfg = {"dataset": {"name": "jsb_chorales", "options": {}}, "data_dir": str(empty)}
    path = tmp_path / "records" / "0123.json"
    path.parent.mkdir()
    record = {"dataset": "jsb_chorales", "data_sha256": "0" * 64}
    check_recorded_data([cfg], [path], {0: record}, {})  # no error, nothing loaded


def test_a_sweep_over_a_study_with_records_of_since_edited_data_stops_before_any_job(
    tmp_path, book
):
    """Each job would stop on its own stale records, one failed job after another (and the
    summary rebuilt from them); a job with new trials would record them beside the stale ones.
    One line before any job instead, for the study's records of the datasets the sweep trains."""
    from lstm_variants.command_line import problem

    study = tmp_path / "study"
    ((path, first),) = run_trials([text_config(book)], study, progress=False)
    sweep = ["-m", "cell=vanilla,gru", "dataset=text_file", f"dataset.options.path={book}",
             *TINY_TEXT, f"hydra.sweep.dir={study}"]  # fmt: skip
    assert problem(sweep) is None  # the same data: the sweep skips the record

    book.write_text(book.read_text().replace("a", "b", 3))
    line = problem(sweep)
    assert line is not None and "\n" not in line
    assert line.startswith("1 of 1 records of text_file were trained on other data")
    assert f"{path}: data_sha256 {first['data_sha256'][:12]}, now " in line
    assert problem([*sweep, "overwrite=true"]) is None  # every trial of the sweep retrains
    # A user's own dataset config (--config-dir) is named by its file; its dataset is inside.
    (tmp_path / "conf" / "dataset").mkdir(parents=True)
    (tmp_path / "conf" / "dataset" / "my_book.yaml").write_text(
        f"# @package _global_\ndataset: {{name: text_file, options: {{path: {book}}}}}\n"
    )
    mine = ["-m", "--config-dir", str(tmp_path / "conf"), "dataset=my_book,adding",
            f"hydra.sweep.dir={study}"]  # fmt: skip
    assert problem(mine).startswith("1 of 1 records of text_file were trained on other data")
    # Another dataset's sweep into the same folder keeps those records out of its tables.
    assert problem(["-m", "cell=vanilla,gru", f"hydra.sweep.dir={study}"]) is None
    book.unlink()  # its data is not here: nothing to compare the records with
    assert problem(sweep) is None

    # A sweep over several datasets checks the records of each, not only the first's.
    adding = {
        **first,
        "config": {**first["config"], "dataset": config("dataset=adding")["dataset"]},
    }
    write_json_atomic(path.with_name("adding.json"), {**adding, "data_sha256": "0" * 64})
    several = ["-m", "dataset=jsb_chorales,adding", f"hydra.sweep.dir={study}"]
    assert problem(several).startswith("1 of 1 records of adding were trained on other data")


def test_each_records_data_is_the_data_of_its_own_dataset_options_and_stale_ones_are_counted(
    tmp_path,
):
    """Configs of one dataset with other options train on other data: each record is compared
    with the data of its own options, and the line counts the stale records among all."""
    from lstm_variants.data import load_dataset
    from lstm_variants.recorded_data import check_recorded_data

    small = {"n_train": 8, "n_valid": 4, "n_test": 4, "seed": 0}
    cfgs = [
        {"dataset": {"name": "adding", "options": {**small, "T": T}}, "data_dir": None}
        for T in (11, 14)
    ]
    fingerprints = [
        load_dataset("adding", **cfg["dataset"]["options"]).fingerprint() for cfg in cfgs
    ]
    assert fingerprints[0] != fingerprints[1]
    paths = [tmp_path / f"{name}.json" for name in ("short", "long", "stale")]
    short, long, stale = ({"data_sha256": f} for f in [*fingerprints, "0" * 64])
    check_recorded_data(cfgs, paths[:2], {0: short, 1: long}, {})  # each on its own data: kept

    with pytest.raises(ConfigError, match=r"^1 of 2 records of adding were trained on other data"):
        check_recorded_data([cfgs[0], cfgs[0]], [paths[0], paths[2]], {0: short, 1: stale}, {})
    # A stale record to be retrained (not skipped) is not checked.
    check_recorded_data([cfgs[0], cfgs[0]], [paths[0], paths[2]], {0: short}, {})


def test_the_data_of_a_config_is_named_by_its_dataset_options_and_data_directory():
    from lstm_variants.recorded_data import dataset_key

    def cfg(data_dir="/data/a", **options):
        return {"dataset": {"name": "jsb_chorales", "options": options}, "data_dir": data_dir}

    assert dataset_key(cfg(T=1, download=False)) == dataset_key(cfg(download=False, T=1))
    assert dataset_key(cfg(T=1)) != dataset_key(cfg(T=2))
    assert dataset_key(cfg("/data/a")) != dataset_key(cfg("/data/b"))
    assert dataset_key(cfg(None)) == dataset_key({"dataset": {"name": "jsb_chorales"}})


def test_a_damaged_record_in_the_study_is_left_to_its_job_not_an_error_before_the_sweep(
    tmp_path,
):
    """The job that meets it says so and trains its trial again; the sweep is not stopped."""
    from lstm_variants.recorded_data import check_study_data

    records = tmp_path / "records"
    records.mkdir()
    (records / "0123456789abcdef.json").write_text('{"trial_id": "0123')  # cut short
    check_study_data(records, ["adding"], None)
