"""What a study cost, from its records, and what a larger one would cost on the same machine.

A record carries the wall time of the population chunk its trial trained in (``wall_seconds``:
initialisation, compilation, every epoch and the test pass) and the chunk's size
(``population.size``); a stand-alone run is a chunk of one. A trial's share of the machine is
therefore ``wall_seconds / population_size``, and the shares of a cell's trials add up to the time
its populations took. Process start-up and data loading are not in any record and not counted.

The projection scales each cell's mean seconds per trial to ``trials`` per cell: the same search
space, protocol and population size, on the same device kind.
"""

from __future__ import annotations

import pandas as pd

from lstm_variants.analysis.collect import ordered_cells

COST_COLUMNS = (
    "dataset",
    "cell",
    "trials",
    "trial_epochs",
    "wall_seconds",
    "seconds_per_trial",
    "seconds_per_trial_epoch",
    "compile_seconds",
    "device_kind",
)


def trial_shares(trials: pd.DataFrame) -> pd.DataFrame:
    """Per trial: its share of its chunk's wall and compile seconds, and the epochs it ran."""
    size = pd.to_numeric(trials["population_size"], errors="coerce").fillna(1.0).clip(lower=1.0)
    return pd.DataFrame(
        {
            "dataset": trials["dataset"].astype(str),
            "cell": trials["cell"].astype(str),
            "wall_share": pd.to_numeric(trials["wall_seconds"], errors="coerce") / size,
            "compile_share": pd.to_numeric(trials["compile_seconds"], errors="coerce") / size,
            "epochs": pd.to_numeric(trials.get("epochs_run"), errors="coerce"),
            "device_kind": trials["device_kind"].astype(str),
        }
    )


def cost_table(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset and cell: trials, trial-epochs, seconds in all, per trial, per epoch.

    Args:
      trials: ``collect(...).trials``.

    Returns:
      Columns ``COST_COLUMNS``; cells in the canonical order within each dataset. Trials without a
      recorded wall time (old records) are left out of the sums.
    """
    shares = trial_shares(trials).dropna(subset=["wall_share"])
    rows = []
    for dataset in sorted(shares["dataset"].unique()):
        frame = shares[shares["dataset"] == dataset]
        for cell in ordered_cells(frame["cell"]):
            group = frame[frame["cell"] == cell]
            epochs = group["epochs"].sum()
            wall = group["wall_share"].sum()
            rows.append(
                {
                    "dataset": dataset,
                    "cell": cell,
                    "trials": len(group),
                    "trial_epochs": int(epochs),
                    "wall_seconds": wall,
                    "seconds_per_trial": wall / len(group),
                    "seconds_per_trial_epoch": wall / epochs if epochs else float("nan"),
                    "compile_seconds": group["compile_share"].sum(),
                    "device_kind": ", ".join(sorted(group["device_kind"].unique())),
                }
            )
    return pd.DataFrame(rows, columns=list(COST_COLUMNS))


def projected_seconds(table: pd.DataFrame, trials_per_cell: int) -> pd.Series:
    """Per dataset: seconds for ``trials_per_cell`` trials of each of its cells at the measured rates."""
    return (table["seconds_per_trial"] * trials_per_cell).groupby(table["dataset"]).sum()
