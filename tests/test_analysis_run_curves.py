"""`lstm-variants-analyze curves`: a few runs' curves, in the dataset's metric, labelled by what differs."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from lstm_variants.analysis.cli import main
from lstm_variants.analysis.collect import AnalysisError, collect
from lstm_variants.analysis.run_curves import metric_curves, run_labels, y_window

LN2 = math.log(2.0)


def write_record(directory, trial_id, dropout, valid_nats, metric="bits_per_char", hidden=256):
    curve = [
        {"epoch": epoch, "train_loss": nats - 0.1, "valid_loss": nats}
        for epoch, nats in enumerate(valid_nats, start=1)
    ]
    best = min(valid_nats)
    record = {
        "trial_id": trial_id,
        "cell": "vanilla",
        "dataset": "tiny_shakespeare",
        "seed": 0,
        "hyperparameters": {"hidden_size": hidden, "dropout": dropout, "learning_rate": 0.003},
        "metrics": {
            "metric": metric,
            "best_valid": best / LN2,
            "test_at_best": best / LN2,
            "best_epoch": valid_nats.index(best) + 1,
            "stopped": "max_epochs",
        },
        "curve": curve,
    }
    path = directory / "records" / f"{trial_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


@pytest.fixture
def two_runs(tmp_path):
    write_record(tmp_path, "a" * 16, 0.0, [2.0, 1.5, 1.45, 1.47])
    write_record(tmp_path, "b" * 16, 0.2, [2.1, 1.5, 1.40, 1.38, 1.37])
    return tmp_path


def test_curves_are_in_bits_per_char_and_labelled_by_what_differs(two_runs):
    collection = collect([two_runs])
    labels = run_labels(collection.trials)
    assert labels == {"a" * 16: "vanilla dropout=0", "b" * 16: "vanilla dropout=0.2"}
    table = metric_curves(collection.trials, collection.curves)
    last = table[(table["run"] == "vanilla dropout=0.2") & (table["epoch"] == 4)].iloc[0]
    assert last["valid"] == pytest.approx(1.38 / LN2)
    assert last["train"] == pytest.approx(1.28 / LN2)
    assert len(table) == 9


def test_runs_with_the_same_label_are_kept_apart_by_trial_id(tmp_path):
    write_record(tmp_path, "a" * 16, 0.0, [2.0, 1.5])
    write_record(tmp_path, "b" * 16, 0.0, [2.2, 1.7])
    collection = collect([tmp_path])
    table = metric_curves(collection.trials, collection.curves)
    assert sorted(table["run"].unique()) == ["vanilla [aaaaaaaa]", "vanilla [bbbbbbbb]"]
    assert len(table) == 4


def test_runs_of_different_metrics_are_refused(tmp_path):
    write_record(tmp_path, "a" * 16, 0.0, [2.0, 1.5])
    write_record(tmp_path, "c" * 16, 0.0, [9.0, 8.5], metric="nll", hidden=64)
    collection = collect([tmp_path])
    with pytest.raises(AnalysisError, match="different metrics"):
        metric_curves(collection.trials, collection.curves)


def test_cli_writes_the_figure_and_the_table(two_runs, capsys):
    out = two_runs / "curves_out"
    assert main(["curves", str(two_runs), "--out", str(out), "--target", "2.0"]) == 0
    table = (out / "curves.md").read_text()
    assert table.startswith("Metric bits_per_char: one row per epoch, training and validation")
    assert "vanilla dropout=0.2: valid" in table and f"{1.38 / LN2:.4f}" in table
    # epoch 5: only the longer run has a number; the shorter one's cells are '-'
    assert [cell.strip() for cell in table.splitlines()[-1].split("|")[1:-1]][:3] == ["5", "-", "-"]
    image = imread(out / "curves.png")
    assert image.shape[0] >= 200 and image[..., :3].std() > 0.01
    assert (out / "curves.pdf").stat().st_size > 0
    assert "curves.png" in capsys.readouterr().out


def test_a_run_without_a_finite_value_keeps_its_columns_in_the_table(two_runs):
    """A run that diverged in its first epoch is in the table as '-', not silently left out."""
    write_record(two_runs, "c" * 16, 0.5, [math.nan, math.nan])
    out = two_runs / "curves_out"
    assert main(["curves", str(two_runs), "--out", str(out)]) == 0
    lines = (out / "curves.md").read_text().splitlines()
    header = [cell.strip() for cell in lines[2].split("|")[1:-1]]
    assert "vanilla dropout=0.5: train" in header and "vanilla dropout=0.5: valid" in header
    first = [cell.strip() for cell in lines[4].split("|")[1:-1]]
    assert first[header.index("vanilla dropout=0.5: valid")] == "-"


def test_a_key_one_run_lacks_is_left_out_of_its_label_not_shown_as_nan():
    trials = pd.DataFrame(
        {
            "trial_id": ["a" * 16, "b" * 16],
            "cell": ["vanilla", "vanilla"],
            "learning_rate": [0.01, 0.003],
            "momentum": [0.9, float("nan")],  # an SGD run beside an Adam run
        }
    )
    assert run_labels(trials) == {
        "a" * 16: "vanilla learning_rate=0.01 momentum=0.9",
        "b" * 16: "vanilla learning_rate=0.003",
    }


def test_the_y_axis_shows_the_end_of_training_and_counts_what_it_leaves_above():
    """First epochs at 40 and 20 would flatten the rest: the axis ends above the bulk, and the
    values left above it are returned to be named on the figure."""
    values = np.array(
        [[40.0, 39.0], [20.0, 21.0]] + [[1.0 + 0.1 * i, 1.1 + 0.1 * i] for i in range(9)]
    )
    low, high, above = y_window(np.vstack([values, [[np.nan, np.inf]]]))
    assert low < 1.0 < 1.9 < high < 20.0
    assert sorted(above) == [20.0, 21.0, 39.0, 40.0]
    flat_low, flat_high, flat_above = y_window(np.full((3, 2), 2.0))
    assert flat_low < 2.0 < flat_high and len(flat_above) == 0
    assert y_window(np.array([[np.nan, np.inf]])) is None
    # A target line outside the window widens it (it was left out of the figure without a word).
    assert y_window(values, target=1.5)[:2] == (low, high)
    far_low, far_high, far_above = y_window(values, target=30.0)
    assert far_low == low and 30.0 < far_high and sorted(far_above) == [39.0, 40.0]
    assert y_window(values, target=0.0)[0] < 0.0


def test_runs_whose_records_name_no_metric_show_the_recorded_loss_not_nan(tmp_path, capsys):
    # Records written before ``metrics.metric`` existed: their curves are the recorded loss.
    for trial_id, dropout in (("a" * 16, 0.0), ("b" * 16, 0.2)):
        write_record(tmp_path, trial_id, dropout, [2.0, 1.5])
        path = tmp_path / "records" / f"{trial_id}.json"
        record = json.loads(path.read_text())
        del record["metrics"]["metric"]
        path.write_text(json.dumps(record))
    collection = collect([tmp_path])
    table = metric_curves(collection.trials, collection.curves)
    assert table["valid"].tolist() == [2.0, 1.5, 2.0, 1.5]  # as recorded, not converted
    out = tmp_path / "curves_out"
    assert main(["curves", str(tmp_path), "--out", str(out)]) == 0
    assert (out / "curves.md").read_text().startswith("Metric recorded loss: one row per epoch")


def test_runs_with_and_without_a_named_metric_are_refused(tmp_path):
    write_record(tmp_path, "a" * 16, 0.0, [2.0, 1.5])
    write_record(tmp_path, "b" * 16, 0.2, [2.0, 1.5])
    path = tmp_path / "records" / ("b" * 16 + ".json")
    record = json.loads(path.read_text())
    del record["metrics"]["metric"]
    path.write_text(json.dumps(record))
    collection = collect([tmp_path])
    with pytest.raises(AnalysisError, match="name no metric"):
        metric_curves(collection.trials, collection.curves)


def test_the_epoch_axis_has_whole_epochs_only(two_runs, monkeypatch):
    from lstm_variants.analysis import run_curves

    figures = []
    monkeypatch.setattr(run_curves, "save", lambda figure, stem: figures.append(figure) or [])
    collection = collect([two_runs])
    table = metric_curves(collection.trials, collection.curves)
    run_curves.curves_figure(table, "bits_per_char", two_runs / "curves")
    figures[0].canvas.draw()
    assert all(float(tick).is_integer() for tick in figures[0].axes[0].get_xticks())
