"""Paired comparison of cells that were searched with the same hyperparameter draws.

A paired random search (``search.paired``, every study in ``sweeps/``) gives draw k the same
hyperparameters, seed included, in every cell. The difference between a cell and the reference on
draw k then holds everything but the cell fixed, which removes the largest source of spread in a
random search (the learning rate alone spans four decades) from the comparison::

    d_k = metric(cell, draw k) - metric(reference, draw k)

and tests whether the d_k are centred on zero with the Wilcoxon signed-rank test (``scipy.stats``),
Holm-corrected over the cells of a dataset. Draws with d_k = 0 tell neither cell apart and are
left out of the test (Wilcoxon's convention); the direction of a significant result is the side
with the larger signed-rank sum, R+ = sum of rank(|d_k|) over d_k > 0 against R- (what the test
weighs), not the sign of the median, which is 0 when most draws tie. Draws are matched on every
``sampled.*`` value, so two trials pair only if the search really gave them the same values; a
pair where either trial has no result (diverged before its first validation) is left out and
counted.

``fraction`` < 1 keeps only the best draws, ranked by the mean of the pair's two validation results:
a draw with a learning rate so small that neither network learned much says little about the
cells, and ranking by both members (not by the reference alone) keeps the selection symmetric.

With few trials per cell this is the comparison with power: Greff et al.'s best-10 % test compares
2 to 3 trials a cell when there are 24.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from lstm_variants.analysis.collect import Collection, ordered_cells, trials_table
from lstm_variants.analysis.compare import check_reference_present, decimals_for, holm

PAIRED_COLUMNS = (
    "dataset",
    "cell",
    "reference",
    "fraction",
    "pairs",
    "unpaired",
    "median_difference",
    "ci_low",
    "ci_high",
    "mean_difference",
    "better_share",
    "p_wilcoxon",
    "p_adjusted",
    "marker",
)


def draw_columns(trials: pd.DataFrame) -> list[str]:
    """The columns that identify a draw: every sampled value, the seed and the study (two
    studies of the same search, e.g. with another loss normalisation, share their draws but do
    not pair)."""
    sampled = sorted(c for c in trials.columns if c.startswith("sampled."))
    return sampled + ["seed"] + (["study"] if "study" in trials.columns else [])


def paired_differences(
    trials: pd.DataFrame,
    cell: str,
    reference: str,
    metric: str = "test_at_best",
    fraction: float = 1.0,
    select_by: str = "best_valid",
) -> tuple[pd.Series, int]:
    """(d_k over the kept matched draws, number of this cell's trials without a usable partner).

    A draw pairs only if it is one trial in each cell: runs without any ``sampled.*`` value were
    not drawn by a search and never pair, and a draw found more than once in either cell (two
    searches under one study name) is ambiguous, so its trials count as unpaired.
    With ``fraction`` < 1 only the best ``ceil(fraction * pairs)`` draws are kept, ranked by the
    mean of the two trials' ``select_by`` (lower is better).
    """
    keys = draw_columns(trials)
    columns = keys + list(dict.fromkeys([metric, select_by]))
    mine = trials[trials["cell"].astype(str) == cell]
    theirs = trials[trials["cell"].astype(str) == reference]
    if not any(key.startswith("sampled.") for key in keys):
        return pd.Series([], dtype=float), len(mine)
    unique_mine = mine[~mine.duplicated(keys, keep=False)]
    unique_theirs = theirs[~theirs.duplicated(keys, keep=False)]
    merged = unique_mine[columns].merge(
        unique_theirs[columns], on=keys, how="left", suffixes=("", "_reference"), validate="1:1"
    )
    merged["d"] = (merged[metric] - merged[f"{metric}_reference"]).astype(float)
    merged["rank_by"] = (merged[select_by] + merged[f"{select_by}_reference"]).astype(float)
    usable = merged[np.isfinite(merged["d"]) & np.isfinite(merged["rank_by"])]
    unpaired = len(mine) - len(usable)
    if fraction < 1.0:
        usable = usable.nsmallest(math.ceil(fraction * len(usable)), "rank_by")
    return usable["d"].reset_index(drop=True), unpaired


def worse_by_ranks(nonzero: np.ndarray) -> bool:
    """Whether the cell is on the worse side: R+ > R-, the signed-rank sums of the nonzero d_k
    (ties in |d_k| get their mean rank, as in the test)."""
    ranks = stats.rankdata(np.abs(nonzero))
    return bool(ranks[nonzero > 0].sum() > ranks[nonzero < 0].sum())


def median_interval(
    differences: np.ndarray, resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median difference."""
    if resamples <= 0 or len(differences) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(differences), size=(resamples, len(differences)))
    medians = np.median(differences[index], axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(medians, [tail, 1.0 - tail])
    return float(low), float(high)


def paired_compare(
    trials: pd.DataFrame | Collection,
    reference: str = "vanilla",
    metric: str = "test_at_best",
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
    fraction: float = 1.0,
) -> pd.DataFrame:
    """One row per dataset and cell other than ``reference``: the paired comparison.

    Args:
      trials: ``collect(...).trials`` of paired sweeps (lower metric is better), or the
        ``Collection`` itself.
      reference: the cell every other is compared with.
      metric: the compared column.
      alpha: significance level of the marker ('better' / 'worse' after Holm correction).
      resamples: bootstrap resamples of the median difference's interval (0: none).
      seed: of the bootstrap.
      fraction: the share of matched draws compared, the best by the pair's mean validation
        result (default 1: all).

    Returns:
      Columns ``PAIRED_COLUMNS``; empty when no draw of any cell matches one of the reference.
      A cell none of whose draws matches has a row of 0 ``pairs`` and NaN statistics.
      ``better_share`` is the share of draws on which the cell beat the reference.

    Raises:
      AnalysisError: the reference cell is in none of the datasets.
    """
    trials = trials_table(trials, metric)
    check_reference_present(trials, reference)
    rows = []
    for dataset in sorted(trials["dataset"].astype(str).unique()):
        frame = trials[trials["dataset"].astype(str) == dataset]
        cells = ordered_cells(frame["cell"].astype(str), reference)
        if reference not in cells:
            continue
        group = []
        for cell in (c for c in cells if c != reference):
            differences, unpaired = paired_differences(frame, cell, reference, metric, fraction)
            if differences.empty:  # kept as a row of 0 draws: a cell missing would say nothing
                group.append(unmatched_row(dataset, cell, reference, fraction, unpaired))
                continue
            d = differences.to_numpy()
            nonzero = d[d != 0]
            p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else float("nan")
            low, high = median_interval(d, resamples, seed)
            group.append(
                {
                    "dataset": dataset,
                    "cell": cell,
                    "reference": reference,
                    "fraction": fraction,
                    "pairs": len(d),
                    "unpaired": unpaired,
                    "median_difference": float(np.median(d)),
                    "ci_low": low,
                    "ci_high": high,
                    "mean_difference": float(np.mean(d)),
                    "better_share": float(np.mean(d < 0)),
                    "p_wilcoxon": p,
                    "_worse": worse_by_ranks(nonzero),
                }
            )
        if not any(row["pairs"] for row in group):
            continue
        p_values = np.array([row["p_wilcoxon"] for row in group])
        adjusted = np.full(len(group), np.nan)
        tested = np.isfinite(p_values)
        adjusted[tested] = holm(p_values[tested])
        for row, p_adjusted in zip(group, adjusted, strict=True):
            row["p_adjusted"] = float(p_adjusted)
            significant = np.isfinite(p_adjusted) and p_adjusted < alpha
            worse = row.pop("_worse")
            row["marker"] = ("worse" if worse else "better") if significant else ""
        rows += group
    return pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))


def unmatched_row(dataset: str, cell: str, reference: str, fraction: float, unpaired: int) -> dict:
    """The row of a cell none of whose draws matches one of the reference (its search drew
    others, or another seed): 0 pairs and no statistic."""
    nothing = float("nan")
    return {
        "dataset": dataset, "cell": cell, "reference": reference, "fraction": fraction,
        "pairs": 0, "unpaired": unpaired, "median_difference": nothing, "ci_low": nothing,
        "ci_high": nothing, "mean_difference": nothing, "better_share": nothing,
        "p_wilcoxon": nothing, "_worse": False,
    }  # fmt: skip


def paired_markdown(table: pd.DataFrame) -> str:
    """The paired table as markdown, one block per dataset."""
    from lstm_variants.analysis.compare import markdown_table

    def number(value: float) -> str:
        return "–" if not np.isfinite(value) else f"{value:+.{digits}f}"

    blocks = []
    for (dataset, share), frame in table.groupby(["dataset", "fraction"], sort=False):
        # 3 significant digits of the largest difference, at least 3 decimals: 3 for differences
        # of 0.1 to 1 nat, more for an MSE of 1e-4, whose differences would all print as +0.000.
        spread = np.abs(frame[["median_difference", "mean_difference"]].to_numpy(float))
        digits = max(3, decimals_for([np.nanmax(spread, initial=0.0)]) - 1)  # 3 significant
        rows = [
            [
                f"**{r.cell}**" if r.marker else r.cell,
                str(r.pairs),
                f"{number(r.median_difference)} [{number(r.ci_low)}, {number(r.ci_high)}]",
                number(r.mean_difference),
                f"{100 * r.better_share:.0f} %" if np.isfinite(r.better_share) else "–",
                "–" if not np.isfinite(r.p_adjusted) else f"{r.p_adjusted:.3g}",
                r.marker,
            ]
            for r in frame.itertuples()
        ]
        header = [
            "cell",
            "draws",
            f"median d vs {frame['reference'].iloc[0]} [95 % CI]",
            "mean d",
            "draws better",
            "p (Wilcoxon, Holm)",
            "significant",
        ]
        scope = "all draws" if share >= 1.0 else f"the best {100 * share:.0f} % of draws"
        blocks.append(f"#### {dataset}, {scope}\n\n" + markdown_table(header, rows))
    return "\n\n".join(blocks)
