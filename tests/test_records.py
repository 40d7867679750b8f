"""Run records as files: written as strict JSON, read back only when the results table can use them."""

import json
import math
from pathlib import Path

import pytest

from lstm_variants.errors import ConfigError
from lstm_variants.experiment import record_path, run_trials
from lstm_variants.records import json_safe, read_record_file, write_json_atomic


def strict_json(text):
    """``text`` parsed as RFC 8259 JSON: Python's NaN and Infinity tokens are an error."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_a_non_finite_number_in_a_tuple_is_written_as_null(tmp_path):
    # json writes a tuple as a list, so a tuple holding a diverged value must be cleaned as a
    # list is: left as NaN, the strict write would raise and the trial would lose its record.
    record = {"cell": "vanilla", "metrics": {"last": (math.nan, 1.0), "curve": [math.inf, 2.0]}}
    assert json_safe(record)["metrics"] == {"last": [None, 1.0], "curve": [None, 2.0]}
    write_json_atomic(tmp_path / "record.json", record)
    written = strict_json((tmp_path / "record.json").read_text())
    assert written["metrics"] == {"last": [None, 1.0], "curve": [None, 2.0]}


def write_record(path, curve):
    record = {"cell": "vanilla", "dataset": "jsb_chorales", "metrics": {}, "curve": curve}
    path.write_text(json.dumps(record))
    return path


def test_a_record_whose_curve_has_a_fractional_epoch_is_refused_with_the_reason(tmp_path):
    # Epochs count whole passes over the data; 1.5 is a corrupt or foreign file, and the
    # learning-curve tables would put it between two epochs of every other trial.
    whole = write_record(tmp_path / "whole.json", [{"epoch": 1, "valid": 8.9}, {"epoch": 2.0}])
    record, why = read_record_file(whole)
    assert why is None and record["curve"][1] == {"epoch": 2.0}
    half = write_record(tmp_path / "half.json", [{"epoch": 1, "valid": 8.9}, {"epoch": 1.5}])
    assert read_record_file(half) == (
        None,
        "curve has an epoch that is not a whole number: 1.5",
    )
    flag = write_record(tmp_path / "flag.json", [{"epoch": True, "valid": 8.9}])  # JSON's true
    assert read_record_file(flag) == (None, "curve has an epoch that is not a whole number: True")


def test_the_environment_names_the_cores_the_process_ran_on(monkeypatch):
    # A job that asked for cpu_pinning and found every core held runs unpinned, with other float
    # rounding: its record must say where it ran, not only what it asked for.
    import os

    from lstm_variants.records import environment

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 1})
    assert environment()["cpu_cores"] == [1, 3]


def test_the_environment_names_jaxs_numeric_settings():
    # JAX_ENABLE_X64=1 trains the same config and seed, under the same trial id, to other
    # numbers (float64 sums); a matmul precision does too on a GPU. The record must say which.
    import jax

    from lstm_variants.records import environment

    default = environment()
    assert default["jax_enable_x64"] is False and default["matmul_precision"] in (None, "highest")
    with jax.enable_x64(True), jax.default_matmul_precision("tensorfloat32"):
        changed = environment()
    assert changed["jax_enable_x64"] is True and changed["matmul_precision"] == "tensorfloat32"


def test_a_records_place_taken_by_a_file_or_folder_is_one_line_before_any_training(tmp_path):
    # Found after training, the trial's work would be lost to an IsADirectoryError.
    from test_train import config

    cfg = config()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "records").write_text("")
    with pytest.raises(ConfigError, match="records is a file where the records folder goes"):
        run_trials([cfg], tmp_path / "a", progress=False)
    record_path(cfg, tmp_path / "b").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"\.json is a folder where a trial's record goes"):
        run_trials([cfg], tmp_path / "b", progress=False)


def test_the_trial_id_hashes_the_config_whatever_its_key_order():
    # The first 16 hex digits of sha256 of the compact, key-sorted JSON of the config: a config
    # read back from YAML or a record in another key order names the same trial.
    import hashlib

    from lstm_variants.records import trial_id

    config = {"seed": 1, "model": {"hidden_size": 8, "cell": "vanilla"}}
    reordered = {"model": {"cell": "vanilla", "hidden_size": 8}, "seed": 1}
    canonical = b'{"model":{"cell":"vanilla","hidden_size":8},"seed":1}'
    assert trial_id(config) == trial_id(reordered) == hashlib.sha256(canonical).hexdigest()[:16]
    assert trial_id({**config, "seed": 2}) != trial_id(config)


@pytest.mark.parametrize(
    "fields, why",
    [
        ({"metrics": {"best_valid": True}}, "metrics.best_valid is not a number: True"),
        ({"metrics": {"test_at_best": False}}, "metrics.test_at_best is not a number: False"),
        ({"study": True}, "study is not a name: True"),
    ],
)
def test_a_boolean_where_a_number_or_name_belongs_is_refused(tmp_path, fields, why):
    # bool is an int in Python: True would be tabled as a validation loss of 1.0, or a study
    # named 1, unless refused by name.
    record = {"cell": "vanilla", "dataset": "adding", "metrics": {}} | fields
    (tmp_path / "record.json").write_text(json.dumps(record))
    assert read_record_file(tmp_path / "record.json") == (None, why)


def test_one_path_is_one_source_not_a_list_of_its_characters(tmp_path):
    from lstm_variants.records import path_list

    assert path_list(str(tmp_path)) == path_list(tmp_path) == [tmp_path]
    assert path_list([str(tmp_path), "b"]) == [tmp_path, Path("b")]
