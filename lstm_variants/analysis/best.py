"""Jozefowicz et al. (2015)'s table: the best result of each cell on each task.

For every (task, cell), the trial with the lowest validation metric is chosen, and its test metric
is reported (never the best test metric, which would select on the test set). Where the task
scores whole answers (arithmetic, adding, temporal order: ``test_solved_fraction``), that trial's
test accuracy is reported too, as Jozefowicz et al. report accuracy for arithmetic.

    best = best_trials(trials)       # one row per (dataset, cell): the chosen trial
    wide = best_table(best)          # cells x tasks, for the report and docs
"""

from __future__ import annotations

import pandas as pd

from lstm_variants.analysis.collect import ordered_cells
from lstm_variants.analysis.compare import decimals_for

KEPT = ("trial_id", "test_at_best", "best_valid", "test_solved_fraction", "hidden_size",
        "learning_rate", "epochs_run", "metric")  # fmt: skip


def ranked_by_validation(trials: pd.DataFrame) -> pd.DataFrame:
    """The usable trials, best ``best_valid`` first. Ties are broken by trial id, so a choice of
    the best does not depend on the order records were read."""
    return trials[trials["usable"]].sort_values(["best_valid", "trial_id"], kind="stable")


def best_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The usable trial with the lowest ``best_valid`` per (dataset, cell), in canonical order."""
    usable = ranked_by_validation(trials)
    chosen = usable.groupby(["dataset", "cell"], observed=True, sort=False).head(1)
    columns = ["dataset", "cell", *(c for c in KEPT if c in chosen.columns)]
    chosen = chosen[columns].astype({"dataset": str, "cell": str})
    order = {cell: i for i, cell in enumerate(ordered_cells(chosen["cell"]))}
    chosen = chosen.assign(_order=chosen["cell"].map(order))
    return chosen.sort_values(["dataset", "_order"]).drop(columns="_order").reset_index(drop=True)


def best_table(best: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Cells as rows, one column per task (its metric in the header), as display strings.

    A task with answer accuracy gets a second column, ``<task> accuracy``, in per cent. The best
    (lowest) test metric of each task is marked with a star. Each task gets at least ``digits``
    decimals, and more where its smallest value needs them for 3 significant digits (an MSE of
    1.9e-4 shows as 0.000190, not 0.000; ``compare.decimals_for``).
    """
    columns: dict[str, pd.Series] = {}
    for dataset, group in best.groupby("dataset", sort=True):
        values = group.set_index("cell")["test_at_best"]
        lowest = values.min()
        places = max(digits, decimals_for(values) - 1)
        header = f"{dataset} ({group['metric'].iloc[0]})"
        columns[header] = values.map(
            lambda v, low=lowest, places=places: f"{v:.{places}f}" + (" *" if v == low else "")
        )
        if "test_solved_fraction" in group and group["test_solved_fraction"].notna().any():
            accuracy = group.set_index("cell")["test_solved_fraction"]
            columns[f"{dataset} accuracy"] = accuracy.map(lambda a: f"{100 * a:.1f} %")
    table = pd.DataFrame(columns)
    table = table.loc[ordered_cells(pd.Series(table.index))].fillna("-")
    table.index.name = "cell"
    return table
