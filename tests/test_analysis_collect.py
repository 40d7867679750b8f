"""collect: every record into one tidy table; unreadable and duplicate records counted, not lost."""

import json

import pandas as pd
import pytest

from lstm_variants.analysis.cli import main
from lstm_variants.analysis.collect import AnalysisError, collect, ordered_cells, select_studies
from lstm_variants.analysis.synthetic import synthetic_study, write_records
from lstm_variants.cell_label import cell_label


@pytest.fixture
def sweep(tmp_path):
    records = synthetic_study({"vanilla": 0.0, "nfg": 0.3}, trials=12, seed=0)
    write_records(records, tmp_path / "sweep")
    return tmp_path / "sweep", records


def test_one_row_per_trial_with_hyperparameters_sampled_and_metrics(sweep, tmp_path):
    directory, records = sweep
    collection = collect([directory])
    trials = collection.trials
    assert len(trials) == len(records) and not collection.skipped
    assert isinstance(trials["cell"].dtype, pd.CategoricalDtype)
    assert list(trials["cell"].cat.categories) == ["vanilla", "nfg"]
    for column in (
        "learning_rate",
        "hidden_size",
        "sampled.optimizer.learning_rate",
        "best_valid",
        "test_at_best",
        "stopped",
        "diverged",
        "usable",
        "config_json",
    ):
        assert column in trials
    diverged = trials[trials["diverged"]]
    assert (~diverged["usable"]).all() and diverged["test_at_best"].isna().all()
    assert set(collection.curves["trial_id"]) <= set(trials["trial_id"])
    paths = collection.save(tmp_path / "out")
    again = pd.read_parquet(paths["trials"])
    assert (
        len(again) == len(trials)
        and again["cell"].astype(str).tolist() == trials["cell"].astype(str).tolist()
    )


def test_corrupt_partial_and_duplicate_records_are_counted(sweep, tmp_path, capsys):
    directory, records = sweep
    folder = directory / "jsb_chorales" / "vanilla" / "records"
    (folder / "truncated.json").write_text('{"cell": "vanilla", "metr')
    (folder / "list.json").write_text("[1, 2]")
    (folder / "partial.json").write_text(json.dumps({"cell": "vanilla"}))
    (folder / ".tmp123.json.tmp").write_text("{")  # an atomic write in flight: not a record
    copy = tmp_path / "copy" / "records"
    copy.mkdir(parents=True)
    (copy / "again.json").write_text(json.dumps(records[0]))
    collection = collect([directory, tmp_path / "copy"])
    assert len(collection.trials) == len(records)
    reasons = dict((p.split("/")[-1], r) for p, r in collection.skipped)
    assert set(reasons) == {"truncated.json", "list.json", "partial.json"}
    assert "invalid JSON" in reasons["truncated.json"]
    assert "missing" in reasons["partial.json"]
    ((duplicate, reason),) = collection.duplicates
    assert duplicate == str(copy / "again.json")
    assert reason.startswith("duplicate trial_id of ") and reason.endswith(", same results")
    assert collection.summary().endswith("skipped 3 unreadable record(s), 1 duplicate(s)")
    paths = collection.save(tmp_path / "out")
    assert len(pd.read_csv(paths["skipped"])) == 4
    capsys.readouterr()
    assert main(["collect", str(directory), str(tmp_path / "copy"), "--out", str(tmp_path)]) == 0
    assert len(collection.summary()) > 80  # one line even where it is wider than the terminal
    assert collection.summary() in capsys.readouterr().err.splitlines()
    # The same config trained again (alone, say) holds other numbers: said, not just counted.
    retrained = records[0] | {"metrics": records[0]["metrics"] | {"best_valid": 1.0}}
    (copy / "again.json").write_text(json.dumps(retrained))
    ((_, reason),) = collect([directory, tmp_path / "copy"]).duplicates
    assert reason.endswith(", other results")
    assert (
        collect([directory, tmp_path / "copy"])
        .summary()
        .endswith("1 duplicate(s) (1 with other results than the record kept: see skipped.csv)")
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("config", "text"),
        ("hyperparameters", [1]),
        ("population", "x"),
        ("params_file", "x.npz"),
        ("curve", [{"epoch": "abc"}]),
        ("cell", ["vanilla"]),
        ("cell", None),
        ("study", None),
        # A number the app writes, edited into text: a column of numbers and texts is no table.
        ("wall_seconds", "12 s"),
        ("seed", "1"),
        ("population", {"size": "4"}),
        ("curve", [{"epoch": 2**70}]),  # beyond a 64-bit epoch column
    ],
)
def test_a_record_with_a_field_of_the_wrong_kind_is_skipped_not_a_traceback(
    sweep, tmp_path, capsys, field, value
):
    directory, records = sweep
    broken = dict(records[0], trial_id="broken", **{field: value})
    (directory / "jsb_chorales" / "vanilla" / "records" / "broken.json").write_text(
        json.dumps(broken)
    )
    collection = collect([directory])
    assert len(collection.trials) == len(records)
    ((path, reason),) = collection.skipped
    assert path.endswith("broken.json") and reason
    assert main(["collect", str(directory), "--out", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize(
    "block, key, value",
    [
        ("hyperparameters", "hidden_size", [100]),
        ("metrics", "epochs_run", {"n": 3}),
        # A value of another kind than every other record's: a column of numbers and texts.
        ("sampled", "model.hidden_size", "big"),
        ("metrics", "metric", 5),
    ],
)
def test_a_record_with_a_value_of_the_wrong_kind_is_skipped_not_a_traceback(
    sweep, tmp_path, capsys, block, key, value
):
    directory, records = sweep
    broken = dict(records[0], trial_id="broken")
    broken[block] = dict(broken[block], **{key: value})
    (directory / "jsb_chorales" / "vanilla" / "records" / "broken.json").write_text(
        json.dumps(broken)
    )
    collection = collect([directory])
    assert len(collection.trials) == len(records)
    assert "broken" not in set(collection.curves["trial_id"])
    ((path, reason),) = collection.skipped
    assert path.endswith("broken.json") and f"{key} is {value!r}" in reason
    assert main(["collect", str(directory), "--out", str(tmp_path / "out")]) == 0
    assert main(["report", str(directory), "--out", str(tmp_path / "r"), "--trees", "2",
                 "--resamples", "0", "--permutations", "9"]) == 0  # fmt: skip


def test_a_loss_beyond_a_floats_range_is_infinite_not_a_traceback(sweep):
    directory, records = sweep
    record = dict(records[0], trial_id="huge")
    record["curve"] = [dict(record["curve"][0], train_loss=10**400), *record["curve"][1:]]
    record["metrics"] = dict(record["metrics"], best_valid=10**400)
    (directory / "jsb_chorales" / "vanilla" / "records" / "huge.json").write_text(
        json.dumps(record)
    )
    collection = collect([directory])
    assert not collection.skipped
    row = collection.trials.set_index("trial_id").loc["huge"]
    assert pd.isna(row["best_valid"]) and not row["usable"]
    first = collection.curves.query("trial_id == 'huge'").iloc[0]
    assert first["train_loss"] == float("inf")


def test_records_without_curves_give_a_typed_empty_curve_table(tmp_path):
    records = synthetic_study({"vanilla": 0.0}, trials=2, seed=0)
    write_records([dict(record, curve=[]) for record in records], tmp_path)
    curves = collect([tmp_path]).curves
    assert curves.empty
    assert curves.dtypes.astype(str).to_dict() == {
        "trial_id": "object",
        "epoch": "int64",
        "train_loss": "float64",
        "valid_loss": "float64",
        "valid_solved": "float64",
    }


def test_a_study_named_by_a_number_is_collected_under_its_name(sweep):
    directory, records = sweep
    numbered = dict(records[0], trial_id="numbered", study=2024)  # study=2024: an int to Hydra
    (directory / "jsb_chorales" / "vanilla" / "records" / "numbered.json").write_text(
        json.dumps(numbered)
    )
    collection = collect([directory])
    assert not collection.skipped and len(collection.trials) == len(records) + 1
    assert "2024" in set(collection.trials["study"])  # a string, as every study name is


def test_no_records_says_where_it_looked(tmp_path):
    with pytest.raises(AnalysisError, match=f"no run records .* under {tmp_path}"):
        collect([tmp_path])
    with pytest.raises(AnalysisError, match="not a directory"):
        collect([tmp_path / "missing"])


def test_an_empty_dir_or_an_out_that_is_a_file_is_one_error_line(tmp_path, capsys, monkeypatch):
    write_records(synthetic_study({"vanilla": 0.0}, trials=2, seed=0), tmp_path / "sweep")
    monkeypatch.chdir(tmp_path)  # where an empty DIR would have read and written
    assert main(["collect", ""]) == 2
    assert not (tmp_path / "analysis").exists()
    (tmp_path / "taken").write_text("a file")
    assert main(["collect", str(tmp_path / "sweep"), "--out", str(tmp_path / "taken")]) == 2
    empty_dir, out_is_a_file = capsys.readouterr().err.strip().splitlines()
    assert empty_dir.startswith("lstm-variants-analyze: error: a DIR is empty; name the sweep")
    assert out_is_a_file.endswith(f"--out {tmp_path / 'taken'} is a file; name a directory for the "
                                  "tables and figures")  # fmt: skip
    assert main(["collect", str(tmp_path / "sweep"), "--out", ""]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "lstm-variants-analyze: error: --out is empty; name a directory for the tables and figures"
    ]


def test_canonical_cell_order_puts_the_reference_first():
    assert ordered_cells(["gru", "zzz", "nfg", "vanilla"]) == ["vanilla", "nfg", "gru", "zzz"]
    assert ordered_cells(["gru", "lstm", "lstm_b"], reference="gru") == ["gru", "lstm", "lstm_b"]
    # A cell built with options comes right after its plain self.
    labels = ["nig", "vanilla (forget_bias=1.0)", "gru", "vanilla"]
    assert ordered_cells(labels) == ["vanilla", "vanilla (forget_bias=1.0)", "nig", "gru"]


def test_a_cell_is_named_with_the_options_it_was_built_with_except_drawn_ones():
    def config(options, sampled=None):
        search = {"sampled": sampled} if sampled is not None else {}
        return {"cell": {"name": "nfg", "options": options}, "search": search}

    assert cell_label(config({})) == "nfg"
    assert cell_label(config({"peepholes": False, "forget_bias": 0.0})) == (
        "nfg (forget_bias=0.0, peepholes=false)"
    )
    drawn = {"cell.options.forget_bias": 0.7}
    assert cell_label(config({"forget_bias": 0.7}, drawn)) == "nfg"
    assert cell_label(config({"forget_bias": 0.7, "peepholes": True}, drawn)) == (
        "nfg (peepholes=true)"
    )
    assert cell_label(config({"forget_bias": 1})) == cell_label(config({"forget_bias": 1.0}))
    assert cell_label({}) is None


def test_one_cell_trained_with_two_values_of_an_option_is_two_rows(tmp_path):
    records = synthetic_study({"vanilla": 0.0}, trials=4, seed=0)
    other = synthetic_study({"vanilla": 0.0}, trials=4, seed=0, cell_options={"forget_bias": 1.0})
    write_records(records + other, tmp_path)
    trials = collect([tmp_path]).trials
    assert list(trials["cell"].cat.categories) == ["vanilla", "vanilla (forget_bias=1.0)"]
    assert trials["cell"].value_counts().to_dict() == {
        "vanilla": 4,
        "vanilla (forget_bias=1.0)": 4,
    }


def test_a_study_where_every_trial_diverged_is_a_table_not_a_traceback(tmp_path, capsys):
    records = synthetic_study({"vanilla": 0.0, "nfg": 0.0}, trials=4, seed=4)
    for record in records:
        record["metrics"].update(stopped="diverged", best_valid=None, test_at_best=None)
    write_records(records, tmp_path / "sweep")
    trials = collect([tmp_path / "sweep"]).trials
    assert trials["best_valid"].dtype == float and not trials["usable"].any()
    assert main(["collect", str(tmp_path / "sweep"), "--out", str(tmp_path / "out")]) == 0
    # The comparisons say in one line that there is nothing to compare (test_analysis_compare).
    assert main(["report", str(tmp_path / "sweep"), "--out", str(tmp_path / "report")]) == 2
    assert "has a result" in capsys.readouterr().err.splitlines()[-1]


def test_two_studies_on_one_dataset_are_not_pooled_unasked(tmp_path, capsys):
    search = synthetic_study({"vanilla": 0.0, "nfg": 0.3}, trials=12, seed=0, study="search")
    smoke = synthetic_study({"vanilla": 0.0, "nfg": -2.0}, trials=3, seed=1, study="search_smoke")
    other = synthetic_study({"vanilla": 0.0}, trials=4, seed=2, study="other", dataset="nottingham")
    for name, records in (("search", search), ("search_smoke", smoke), ("other", other)):
        write_records(records, tmp_path / "multirun" / name)
    root = tmp_path / "multirun"

    assert main(["compare", str(root), "--resamples", "0", "--permutations", "9"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "2 studies on jsb_chorales (search, search_smoke)" in error[0]
    assert "--study NAME" in error[0] and "--pool-studies" in error[0]

    assert main(["compare", str(root), "--study", "nope", "--resamples", "0"]) == 2
    assert "the studies found are: other, search, search_smoke" in capsys.readouterr().err

    collection = select_studies(collect([root]), ["search", "other"])
    assert set(collection.trials["study"].astype(str)) == {"search", "other"}
    assert len(collection.trials) == len(search) + len(other)
    assert list(collection.trials["study"].cat.categories) == ["other", "search"]
    assert set(collection.curves["trial_id"]) == set(collection.trials["trial_id"])

    pooled = select_studies(collect([root]), pool=True)
    assert len(pooled.trials) == len(search) + len(smoke) + len(other)
    out = tmp_path / "out"
    arguments = ["--out", str(out), "--resamples", "0", "--permutations", "9"]
    assert main(["compare", str(root), "--study", "search", *arguments]) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert table.loc[table["cell"] == "nfg", "trials"].item() == len(search) // 2

    assert main(["report", str(root), "--out", str(tmp_path / "mixed")]) == 2
    assert "--pool-studies" in capsys.readouterr().err
    assert not (tmp_path / "mixed").exists()
    report = tmp_path / "other"
    assert main(["report", str(root), "--study", "other", "--out", str(report)]) == 0
    text = (report / "report.md").read_text()
    assert "Studies: other." in text and "--study other`" in text
    # Every dataset with more than one study in the one line, not the first alone.
    write_records(
        synthetic_study({"vanilla": 0.0}, trials=3, seed=3, study="rerun", dataset="nottingham"),
        root / "rerun",
    )
    assert main(["compare", str(root), "--resamples", "0", "--permutations", "9"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "lstm-variants-analyze: error: records of 2 studies on jsb_chorales (search, "
        "search_smoke); 2 studies on nottingham (other, rerun): analyse one with --study NAME "
        "(or pass its directory alone), or compare them as one with --pool-studies"
    ]


def test_a_folder_without_one_readable_record_is_one_line_for_every_reader(tmp_path):
    # JSON files that are not records: the analysis, a rerun and diagnose each say so in one line
    # naming a file and its reason (they used to fail on a missing column of the empty table).
    from lstm_variants.analysis.collect import require_trials
    from lstm_variants.diagnostics.recorded import record_files
    from lstm_variants.errors import ConfigError
    from lstm_variants.search import best_draws

    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "x.json").write_text('{"a": 1}')
    line = (
        f"no readable records under {tmp_path} (1 skipped; e.g. {tmp_path}/records/x.json: "
        "missing field(s): cell, dataset, metrics)"
    )
    with pytest.raises(AnalysisError) as error:
        require_trials(collect([tmp_path]))
    assert str(error.value) == line
    with pytest.raises(ConfigError) as error:
        best_draws(str(tmp_path), "vanilla", {"name": "adding"}, top=1)
    assert str(error.value) == f"search.rerun.from: {line}"
    with pytest.raises(ConfigError) as error:
        record_files([tmp_path], per_cell=1)
    assert str(error.value) == f"diagnose.records: {line}"


@pytest.mark.parametrize("command", ["compare", "curves"])
def test_the_commands_name_an_unreadable_record_they_leave_out(sweep, tmp_path, capsys, command):
    # The summary only counted it: "skipped 1 unreadable record(s)", with no way to tell which
    # trial a table lacked short of `collect` and its skipped.csv.
    directory, _ = sweep
    broken = directory / "jsb_chorales" / "vanilla" / "records" / "truncated.json"
    broken.write_text('{"cell": "vanilla", "metr')
    options = ["--resamples", "0", "--permutations", "10"] if command == "compare" else []
    capsys.readouterr()
    assert main([command, str(directory), "--out", str(tmp_path / "out"), *options]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        f"lstm-variants-analyze: warning: 1 record file(s) left out, unreadable: {broken} "
        "(invalid JSON: Unterminated string starting at (line 1)); rerunning their study's "
        "command trains them again (`lstm-variants-analyze collect` lists every one in "
        "skipped.csv)"
    ]
