"""The cost table: each trial's share of its population's wall time, summed and projected."""

import math

import pandas as pd
import pytest

from lstm_variants.analysis.cost import cost_table, projected_seconds
from lstm_variants.durations import format_duration


def trial(cell, wall, size, epochs, compile_seconds=2.0, dataset="jsb_chorales"):
    return {
        "dataset": dataset,
        "cell": cell,
        "wall_seconds": wall,
        "compile_seconds": compile_seconds,
        "population_size": size,
        "epochs_run": epochs,
        "device_kind": "cpu",
    }


def test_shares_of_one_population_add_up_to_its_wall_time():
    # One population of 4 vanilla members (40 s) and two stand-alone NFG runs (10 s and 30 s).
    trials = pd.DataFrame(
        [trial("vanilla", 40.0, 4, e) for e in (10, 20, 30, 40)]
        + [trial("nfg", 10.0, None, 5), trial("nfg", 30.0, 1, 15)]
    )
    table = cost_table(trials).set_index("cell")
    assert list(table.index) == ["vanilla", "nfg"]  # canonical order, reference first
    assert table.loc["vanilla", "wall_seconds"] == pytest.approx(40.0)
    assert table.loc["vanilla", "seconds_per_trial"] == pytest.approx(10.0)
    assert table.loc["vanilla", "seconds_per_trial_epoch"] == pytest.approx(40.0 / 100)
    assert table.loc["vanilla", "compile_seconds"] == pytest.approx(2.0)
    assert table.loc["nfg", "wall_seconds"] == pytest.approx(40.0)
    assert table.loc["nfg", "trial_epochs"] == 20
    projected = projected_seconds(cost_table(trials), trials_per_cell=200)
    assert projected["jsb_chorales"] == pytest.approx(200 * 10.0 + 200 * 20.0)


def test_records_without_wall_time_are_left_out_and_datasets_kept_apart():
    trials = pd.DataFrame(
        [
            trial("gru", 8.0, 2, 4, dataset="xml"),
            trial("gru", 8.0, 2, 4, dataset="xml"),
            trial("gru", math.nan, 2, 4, dataset="xml"),
            trial("gru", 3.0, 1, 3, dataset="arithmetic"),
        ]
    )
    table = cost_table(trials)
    assert list(table["dataset"]) == ["arithmetic", "xml"]
    assert list(table["trials"]) == [1, 2]
    assert list(table["seconds_per_trial_epoch"]) == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize(
    ("seconds", "text"), [(42.0, "42 s"), (750.0, "12.5 min"), (11520.0, "3.2 h")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(119.4, "119 s"), (120.0, "2.0 min"), (7199.0, "120.0 min"), (7200.0, "2.0 h")],
)
def test_format_duration_changes_unit_at_two_minutes_and_two_hours(seconds, text):
    # Seconds up to two minutes, minutes up to two hours: "2.0 min", never "120 s" or "1.0 h".
    assert format_duration(seconds) == text
