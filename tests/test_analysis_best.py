"""Jozefowicz's best-result table: chosen on validation, never on test."""

import pandas as pd

from lstm_variants.analysis.best import best_table, best_trials


def trial(trial_id, dataset, cell, valid, test, solved=None, usable=True):
    return {
        "trial_id": trial_id,
        "dataset": dataset,
        "cell": cell,
        "best_valid": valid,
        "test_at_best": test,
        "test_solved_fraction": solved,
        "metric": "cross_entropy",
        "usable": usable,
    }


TRIALS = pd.DataFrame(
    [
        # gru: the best test (0.50) belongs to a trial with a worse validation: not chosen.
        trial("g1", "xml", "gru", 0.70, 0.80),
        trial("g2", "xml", "gru", 0.90, 0.50),
        # lstm: the lowest validation is a diverged (unusable) trial: skipped.
        trial("l1", "xml", "lstm", 0.10, 0.10, usable=False),
        trial("l2", "xml", "lstm", 0.60, 0.75),
        # a tie on validation is broken by trial id.
        trial("b2", "arithmetic", "lstm", 1.00, 1.20, solved=0.30),
        trial("b1", "arithmetic", "lstm", 1.00, 1.30, solved=0.25),
        trial("m1", "arithmetic", "mut1", 0.90, 1.10, solved=0.40),
    ]
)


def test_the_trial_with_the_best_validation_is_reported():
    best = best_trials(TRIALS).set_index(["dataset", "cell"])
    assert best.loc[("xml", "gru"), "trial_id"] == "g1"
    assert best.loc[("xml", "lstm"), "trial_id"] == "l2"
    assert best.loc[("arithmetic", "lstm"), "trial_id"] == "b1"
    assert best.loc[("arithmetic", "lstm"), "test_at_best"] == 1.30


def test_the_wide_table_has_a_column_per_task_accuracy_where_scored_and_stars_the_best():
    table = best_table(best_trials(TRIALS))
    assert list(table.index) == ["lstm", "gru", "mut1"]  # canonical order: LSTM before GRU, MUTs
    assert list(table.columns) == [
        "arithmetic (cross_entropy)",
        "arithmetic accuracy",
        "xml (cross_entropy)",
    ]
    assert table.loc["mut1", "arithmetic (cross_entropy)"] == "1.100 *"
    assert table.loc["lstm", "arithmetic accuracy"] == "25.0 %"
    assert table.loc["lstm", "xml (cross_entropy)"] == "0.750 *"
    assert table.loc["gru", "arithmetic accuracy"] == "-"  # gru was not run on arithmetic


def test_small_metrics_keep_three_significant_digits_not_zeros():
    best = best_trials(
        pd.DataFrame(
            [
                trial("a", "adding", "lstm", 2.1e-4, 1.9e-4),
                trial("b", "adding", "gru", 3e-4, 2.2e-4),
            ]
        ).assign(metric="mse")
    )
    column = best_table(best)["adding (mse)"]
    assert column["lstm"] == "0.000190 *" and column["gru"] == "0.000220"
