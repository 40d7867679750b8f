"""Learning curves of a few named runs, in the dataset's own metric: ``lstm-variants-analyze curves``.

A study's figures (``plots``) rank cells; this is for the handful of runs a write-up quotes, e.g.
"2.0 bits per character on Tiny Shakespeare within 15 minutes": every run's training (dashed) and
validation (solid) curve per epoch, converted from the recorded mean frame loss to the metric
(``losses.metric_value``: bits per character, perplexity, NLL, ...), optionally with a target
line, and the same numbers as a markdown table.

Runs are labelled by their cell and the hyperparameters in which they differ from each other.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from lstm_variants.analysis.collect import AnalysisError
from lstm_variants.analysis.plots import LINESTYLES, MARKERS, robust_limits, save
from lstm_variants.losses import metric_value

# Hyperparameter columns that may tell runs apart in a label, in this order.
LABEL_KEYS = (
    "hidden_size",
    "num_layers",
    "learning_rate",
    "batch_size",
    "dropout",
    "input_noise",
    "momentum",
    "clip_norm",
    "forget_bias",
    "seed",
)


def run_labels(trials: pd.DataFrame) -> dict[str, str]:
    """trial id -> 'cell key=value ...' with only the keys whose values differ between runs."""
    differing = [
        key
        for key in LABEL_KEYS
        if key in trials and trials[key].astype(str).nunique(dropna=False) > 1
    ]
    labels = {}
    for _, trial in trials.iterrows():
        # A key a run does not have (momentum of an Adam run) is left out, not shown as 'nan'.
        parts = [str(trial["cell"])] + [
            f"{key}={_short(trial[key])}" for key in differing if pd.notna(trial[key])
        ]
        labels[trial["trial_id"]] = " ".join(parts)
    counts = pd.Series(labels).value_counts()
    # Runs that differ only elsewhere (another dataset option, say) keep apart by their trial id.
    return {
        trial: f"{label} [{trial[:8]}]" if counts[label] > 1 else label
        for trial, label in labels.items()
    }


def _short(value) -> str:
    return f"{value:g}" if isinstance(value, int | float | np.number) else str(value)


# What the curves show when no record names its metric (records written before
# ``metrics.metric`` existed): the loss as recorded, unconverted.
UNNAMED_METRIC = "recorded loss"


def curves_metric(trials: pd.DataFrame) -> str:
    """The one metric every run of ``trials`` names, or ``UNNAMED_METRIC`` if none names one;
    AnalysisError in one line for runs of different metrics, or some named and some not."""
    named = trials["metric"].dropna() if "metric" in trials else pd.Series([], dtype=object)
    if named.nunique() > 1:
        raise AnalysisError(
            "the runs report different metrics "
            f"({', '.join(sorted(named.astype(str).unique()))}): plot one dataset at a time"
        )
    if named.empty:
        return UNNAMED_METRIC
    if len(named) < len(trials):
        raise AnalysisError(
            f"{len(trials) - len(named)} of the runs' records name no metric (written before "
            f"metrics.metric existed) and the others report {named.iloc[0]}: plot them apart"
        )
    return str(named.iloc[0])


def metric_curves(trials: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (trial, epoch): label, epoch, train and valid in the trial's dataset metric."""
    metric = curves_metric(trials)
    labels = run_labels(trials)
    frame = curves[curves["trial_id"].isin(labels)].copy()
    frame["run"] = frame["trial_id"].map(labels)
    for column in ("train", "valid"):
        frame[column] = [metric_value(v, metric) for v in frame[f"{column}_loss"]]
    frame = frame.sort_values(["run", "epoch"])
    return frame[["run", "trial_id", "epoch", "train", "valid"]].reset_index(drop=True)


def curves_figure(
    table: pd.DataFrame, metric: str, stem: Path, target: float | None = None
) -> list[Path]:
    """Training (dashed, open markers) and validation (solid) metric per epoch; ``stem.png/.pdf``."""
    figure = Figure(figsize=(6.5, 4.2))
    axis = figure.subplots()
    styles = itertools.cycle(zip(MARKERS, itertools.cycle(("black", "0.45")), strict=False))
    for run, curve in table.groupby("run", sort=False):
        marker, color = next(styles)
        every = max(1, len(curve) // 8)
        best = curve["valid"].min()  # NaN for a run that never had a finite validation result
        axis.plot(curve["epoch"], curve["valid"], color=color, marker=marker, markevery=every,
                  markersize=4, linewidth=1.2, label=f"{run}: valid (best {best:.4g})")  # fmt: skip
        axis.plot(curve["epoch"], curve["train"], color=color, linestyle=LINESTYLES[1],
                  marker=marker, markevery=every, markersize=4, markerfacecolor="white",
                  linewidth=0.9, label=f"{run}: train")  # fmt: skip
    if target is not None:
        axis.axhline(target, color="black", linewidth=0.8, linestyle=LINESTYLES[3])
        axis.annotate(f"target {target:g}", (1, target), textcoords="offset points",
                      xytext=(2, 3), fontsize=8)  # fmt: skip
    window = y_window(table[["train", "valid"]].to_numpy(float), target)
    if window is not None:
        low, high, above = window
        axis.set_ylim(low, high)
        if len(above):
            axis.annotate(f"{len(above)} higher value(s) off the top, up to {above.max():.4g}",
                          (0.99, 0.98), xycoords="axes fraction", ha="right", va="top",
                          fontsize=7, color="0.3")  # fmt: skip
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))  # no epoch 2.5
    axis.set_ylabel(metric.replace("_", " "))
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)
    axis.grid(color="0.9", linewidth=0.5)
    return save(figure, stem)


def y_window(
    values: np.ndarray, target: float | None = None
) -> tuple[float, float, np.ndarray] | None:
    """(low, high, the finite values above high) of a curves plot; None with no finite value.

    The axis shows the bulk of the values, up to Q3 + 3 IQR as the box plots do
    (``plots.robust_limits``), so that the first epochs' large losses do not flatten the end of
    training, which is the story; the figure says how many values it leaves above. A ``target``
    outside that window widens it: a target line asked for is drawn, however far off.
    """
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    low, high = robust_limits(finite)
    if target is not None and np.isfinite(target) and not low <= target <= high:
        margin = 0.05 * (max(high, target) - min(low, target))
        low, high = min(low, target - margin), max(high, target + margin)
    return low, high, finite[finite > high]


def curves_markdown(table: pd.DataFrame, metric: str) -> str:
    """The curves as one markdown table under a line naming ``metric``: an epoch per row,
    train and valid of each run."""
    # dropna=False: a run without one finite value (diverged in its first epoch) keeps its
    # columns, of '-', rather than leaving the table unnoticed.
    wide = table.pivot_table(index="epoch", columns="run", values=["train", "valid"], dropna=False)
    wide.columns = [f"{run}: {kind}" for kind, run in wide.columns]
    ordered = sorted(wide.columns, key=lambda name: (name.rsplit(": ", 1)[0], name))
    formats = [".0f"] + [".4f"] * len(ordered)
    table = wide[ordered].reset_index().astype(object)
    table = table.where(table.notna(), None)  # a run that stopped earlier: '-', not 'nan'
    caption = f"Metric {metric}: one row per epoch, training and validation set of each run"
    return caption + "\n\n" + table.to_markdown(index=False, floatfmt=formats, missingval="-")
