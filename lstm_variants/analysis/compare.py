"""Compare cells: Greff's table (best 10 %, Welch's t-test against V) with corrections and CIs.

For every (dataset, cell) of a trials table (``collect``):

- ``trials``: records found; ``usable``: those with a finite best validation and test metric;
  ``diverged_share``: the share of trials whose training diverged (stopped == 'diverged').
- the *best 10 %*: the ``ceil(fraction * trials)`` usable trials with the lowest validation metric
  (Greff et al. 2017, Fig. 3, bottom row; the fraction counts every trial, so a cell whose trials
  diverge more keeps fewer good ones rather than dipping into bad ones). Their test metric's
  median (with a bootstrap confidence interval), mean and standard deviation.
- ``best_test``: the test metric of the trial with the lowest validation metric ("test at best
  validation", Jozefowicz et al. 2015 report this number).

Against the reference cell (Greff's V, ``'vanilla'``, unless told otherwise), on the chosen sample
(best 10 % by default, or all usable trials; the table's ``fraction`` and ``sample`` columns; a
rerun study, ``search.rerun``, uses all of its trials: ``comparison_selection``), with x the
cell's and r the reference's test metrics:

- difference of means  delta = mean(x) - mean(r)  (> 0: the cell is worse; every metric here is
  lower-is-better), with a bootstrap (BCa) confidence interval that resamples *all* trials of
  each cell and re-selects the best 10 % in every resample (the selection is part of the
  statistic; resampling only the selected trials would ignore it). Intervals of statistics of the
  extremes of a sample are approximate; read them as a scale of uncertainty, not exact coverage.
- Welch's t-test (Greff's; unequal variances):  t = delta / sqrt(s_x^2/n_x + s_r^2/n_r), with
  the Welch-Satterthwaite degrees of freedom  nu = (s_x^2/n_x + s_r^2/n_r)^2 /
  ((s_x^2/n_x)^2/(n_x-1) + (s_r^2/n_r)^2/(n_r-1)), two-sided p-value ``p_welch``;
- a permutation test of delta (``p_permutation``, the default behind the marker): the trials of
  both cells are pooled and relabelled at random, and the best 10 % re-selected each time. On the
  best 10 % Welch's test is *not* calibrated: which trials make the best 10 % depends on how many
  of a cell's random-search draws landed near a good learning rate, a variation that their spread
  among themselves does not show. On random-search data with no effect (tests) its
  false-positive rate at alpha = 0.05 is about 0.2, the permutation test's 0.05. On all usable
  trials both are calibrated.
- a multiple-comparison correction over the family of tests (per dataset by default, or the
  whole table): Holm's step-down (controls the family-wise error rate) or Benjamini-Hochberg's
  step-up (controls the false discovery rate); both written here, on sorted p-values
  p_(1) <= ... <= p_(m):  Holm  p~_(i) = max_{j<=i} min(1, (m-j+1) p_(j));
  BH  p~_(i) = min_{j>=i} min(1, m p_(j) / j);
- effect size Hedges' g = J d with Cohen's d = delta / s_pooled,
  s_pooled^2 = ((n_x-1) s_x^2 + (n_r-1) s_r^2) / (n_x+n_r-2), and J = 1 - 3/(4(n_x+n_r)-9);
- ``marker``: 'worse' or 'better' when the corrected p-value is below ``alpha``, else ''.

The test and correction functions are vectorised over leading axes, so the false-positive rate
can be checked over thousands of simulated tables in a blink (see the tests).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from lstm_variants.analysis.collect import (
    AnalysisError,
    Collection,
    canonical_order,
    ordered_cells,
    trials_table,
)
from lstm_variants.atomic_files import write_table_atomic, write_text_atomic

CORRECTIONS = ("holm", "bh", "none")
TESTS = ("permutation", "welch")
SAMPLES = ("top", "all")
FAMILIES = ("dataset", "table")

# Lower is better for every metric the harness records; a higher-is-better one would be named here.
HIGHER_IS_BETTER: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- statistics (pure)


def welch_t_test(x: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch's two-sided t-test of mean(x) = mean(r) along the last axis.

    Args:
      x, r: samples, shape (..., n_x) and (..., n_r) with broadcastable leading axes.

    Returns:
      (t, degrees of freedom, p), each of the leading shape; NaN where a sample has < 2 values.
    """
    x, r = np.asarray(x, float), np.asarray(r, float)
    n_x, n_r = x.shape[-1], r.shape[-1]
    if n_x < 2 or n_r < 2:
        shape = np.broadcast_shapes(x.shape[:-1], r.shape[:-1])
        nan = np.full(shape, np.nan)
        return nan, nan.copy(), nan.copy()
    v_x, v_r = x.var(axis=-1, ddof=1) / n_x, r.var(axis=-1, ddof=1) / n_r
    standard_error = np.sqrt(v_x + v_r)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (x.mean(axis=-1) - r.mean(axis=-1)) / standard_error
        dof = (v_x + v_r) ** 2 / (v_x**2 / (n_x - 1) + v_r**2 / (n_r - 1))
    p = 2.0 * stats.t.sf(np.abs(t), dof)
    return t, dof, p


def hedges_g(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hedges' g of x against r along the last axis (> 0: x has the larger mean)."""
    x, r = np.asarray(x, float), np.asarray(r, float)
    n_x, n_r = x.shape[-1], r.shape[-1]
    if n_x < 2 or n_r < 2:
        return np.full(np.broadcast_shapes(x.shape[:-1], r.shape[:-1]), np.nan)
    pooled = ((n_x - 1) * x.var(axis=-1, ddof=1) + (n_r - 1) * r.var(axis=-1, ddof=1)) / (
        n_x + n_r - 2
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        cohens_d = (x.mean(axis=-1) - r.mean(axis=-1)) / np.sqrt(pooled)
    return (1.0 - 3.0 / (4.0 * (n_x + n_r) - 9.0)) * cohens_d


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (NaN entries are not tests and stay NaN)."""
    return _adjust(np.asarray(p, float), step="down")


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg-adjusted p-values along the last axis (NaN entries stay NaN)."""
    return _adjust(np.asarray(p, float), step="up")


def _adjust(p: np.ndarray, step: str) -> np.ndarray:
    """Holm (``step='down'``) or BH (``'up'``) on the last axis; NaNs sort last and are skipped."""
    if p.size == 0:
        return p.copy()
    order = np.argsort(p, axis=-1)  # NaN last
    ranked = np.take_along_axis(p, order, axis=-1)
    valid = ~np.isnan(ranked)
    m = valid.sum(axis=-1, keepdims=True)
    rank = np.arange(1, p.shape[-1] + 1)  # 1-based j
    if step == "down":
        scaled = np.where(valid, np.minimum(1.0, (m - rank + 1) * ranked), -np.inf)
        adjusted = np.maximum.accumulate(scaled, axis=-1)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(valid, np.minimum(1.0, m * ranked / rank), np.inf)
        adjusted = np.minimum.accumulate(scaled[..., ::-1], axis=-1)[..., ::-1]
    adjusted = np.where(valid, adjusted, np.nan)
    result = np.empty_like(adjusted)
    np.put_along_axis(result, order, adjusted, axis=-1)
    return result


ADJUSTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "holm": holm,
    "bh": benjamini_hochberg,
    "none": lambda p: np.asarray(p, float).copy(),
}


def bootstrap_interval(
    samples: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """A BCa bootstrap interval of ``statistic(*samples)`` (percentile if BCa cannot be formed).

    ``statistic`` takes the samples and an ``axis`` keyword (scipy's vectorised convention).
    Returns (NaN, NaN) for samples too small (< 3 values) or constant, or ``resamples == 0``.
    """
    if resamples <= 0 or any(len(s) < 3 for s in samples):
        return math.nan, math.nan
    if all(np.ptp(s) == 0 for s in samples):
        return math.nan, math.nan
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                result = stats.bootstrap(
                    samples,
                    statistic,
                    confidence_level=confidence,
                    n_resamples=resamples,
                    method=method,
                    vectorized=True,
                    rng=np.random.default_rng(seed),
                )
            except (ValueError, RuntimeWarning, stats.DegenerateDataWarning):
                continue
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high)
    return math.nan, math.nan


def top_mean(valid: np.ndarray, metric: np.ndarray, count: int) -> np.ndarray:
    """Mean ``metric`` of the ``count`` entries with the lowest ``valid``, along the last axis.

    Entries without a result carry ``valid = +inf`` (never chosen before a real one) and
    ``metric = NaN`` (left out of the mean if chosen anyway); where every chosen entry is NaN the
    mean is NaN.
    """
    order = np.argsort(valid, axis=-1)[..., :count]
    with warnings.catch_warnings():  # all chosen entries without a result: NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.take_along_axis(metric, order, axis=-1), axis=-1)


def top_permutation_test(
    valid_x: np.ndarray,
    metric_x: np.ndarray,
    valid_r: np.ndarray,
    metric_r: np.ndarray,
    fraction: float = 0.1,
    permutations: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided permutation test of the difference of best-``fraction`` means.

    The statistic is  D = mean of x's best ceil(fraction n_x) by validation - the same for r.
    Under the null hypothesis that the two cells' trials are exchangeable, relabelling the pooled
    trials at random (group sizes kept) gives D's null distribution exactly, so
    p = (1 + #{|D*| >= |D|}) / (1 + #{D* defined}) has the stated level. D* is undefined where a
    relabelled group got no trial with a result (its best-fraction mean is NaN); such relabellings
    are left out, not counted as less extreme, and p is NaN where D itself is undefined (a cell or
    the reference without any result: nothing was compared). Welch's t-test on the
    selected trials (Greff's) does not: which trials make the best 10 % depends on how many of a
    cell's random-search draws landed near the good learning rate, a variation their spread
    among themselves does not show, and its false-positive rate is several times ``alpha`` (see
    tests/test_analysis_compare.py).

    Args:
      valid_x, metric_x: (..., n_x) validation (selects) and test (compared) metric of the cell.
      valid_r, metric_r: (..., n_r) the same for the reference; leading axes broadcast.
      fraction: the best fraction compared.
      permutations: random relabellings.
      seed: their randomness.

    Returns:
      (D, p), each of the leading shape.
    """
    valid_x, metric_x, valid_r, metric_r = (
        np.asarray(a, float) for a in (valid_x, metric_x, valid_r, metric_r)
    )
    n_x, n_r = valid_x.shape[-1], valid_r.shape[-1]
    k_x, k_r = max(1, math.ceil(fraction * n_x)), max(1, math.ceil(fraction * n_r))
    observed = top_mean(valid_x, metric_x, k_x) - top_mean(valid_r, metric_r, k_r)
    valid = np.concatenate(_broadcast_leading(valid_x, valid_r), axis=-1)
    metric = np.concatenate(_broadcast_leading(metric_x, metric_r), axis=-1)
    rng = np.random.default_rng(seed)
    shape = (*valid.shape[:-1], permutations, n_x + n_r)
    labels = rng.permuted(np.broadcast_to(np.arange(n_x + n_r), shape), axis=-1)
    shuffled_valid = np.take_along_axis(valid[..., None, :], labels, axis=-1)
    shuffled_metric = np.take_along_axis(metric[..., None, :], labels, axis=-1)
    null = top_mean(shuffled_valid[..., :n_x], shuffled_metric[..., :n_x], k_x) - top_mean(
        shuffled_valid[..., n_x:], shuffled_metric[..., n_x:], k_r
    )
    defined = np.isfinite(null)
    extreme = np.sum(defined & (np.abs(null) >= np.abs(observed)[..., None] - 1e-12), axis=-1)
    p = (1.0 + extreme) / (1.0 + defined.sum(axis=-1))
    return observed, np.where(np.isfinite(observed), p, np.nan)


def _broadcast_leading(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast the leading axes of ``a`` and ``b``, keeping each one's last axis."""
    leading = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    return (
        np.broadcast_to(a, (*leading, a.shape[-1])),
        np.broadcast_to(b, (*leading, b.shape[-1])),
    )


# --------------------------------------------------------------------------- selections


def top_trials(group: pd.DataFrame, fraction: float = 0.1, by: str = "best_valid") -> pd.DataFrame:
    """The ``ceil(fraction * len(group))`` usable trials with the lowest ``by``."""
    count = max(1, math.ceil(fraction * len(group)))
    usable = group[group["usable"]] if "usable" in group else group.dropna(subset=[by])
    return usable.nsmallest(count, by)


def comparison_sample(
    group: pd.DataFrame, sample: str, fraction: float, select_by: str
) -> pd.DataFrame:
    """The trials a test compares: the best ``fraction`` by ``select_by``, or all usable ones."""
    if sample == "top":
        return top_trials(group, fraction, select_by)
    if sample == "all":
        return group[group["usable"]]
    raise AnalysisError(f"unknown sample {sample!r}; valid: {', '.join(SAMPLES)}")


# --------------------------------------------------------------------------- the table


def check_reference_present(trials: pd.DataFrame, reference: str) -> None:
    """Raise ``AnalysisError`` unless some dataset of ``trials`` has the reference cell."""
    cells_present = set(trials["cell"].astype(str))
    if reference not in cells_present:
        raise AnalysisError(
            f"reference cell {reference!r} is in no dataset; cells found: "
            f"{', '.join(ordered_cells(cells_present))} (choose one as the reference: "
            "--reference on the command line)"
        )


def compare(
    trials: pd.DataFrame | Collection,
    reference: str = "vanilla",
    metric: str = "test_at_best",
    select_by: str = "best_valid",
    fraction: float = 0.1,
    sample: str = "top",
    test: str = "permutation",
    alpha: float = 0.05,
    correction: str = "holm",
    family: str = "dataset",
    permutations: int = 2000,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (dataset, cell): Greff's summary and the test against ``reference``.

    Args:
      trials: the table of ``collect`` (columns ``dataset``, ``cell``, ``usable``, ``diverged``,
        ``select_by`` and ``metric``), or the ``Collection`` itself.
      reference: the cell every other cell is tested against.
      metric: the column compared (lower is better): the test metric at the best validation epoch.
      select_by: the column that picks the best trials (validation, never test).
      fraction: the best fraction of trials (0.1: Greff's best 10 %).
      sample: 'top' (the best fraction, as Greff) or 'all' usable trials, for the tests.
      test: 'permutation' (the p-value behind ``marker``: exact level, see
        ``top_permutation_test``) or 'welch' (Greff's t-test on the selected trials). Both
        p-values are always in the table (``p_permutation``, ``p_welch``).
      alpha: significance level for ``marker`` after correction.
      correction: 'holm', 'bh' (Benjamini-Hochberg) or 'none'.
      family: the tests corrected together: 'dataset' (each dataset's cells) or 'table' (all).
      permutations: relabellings of the permutation test.
      confidence, resamples, seed: bootstrap intervals (``resamples=0`` skips them).

    Returns:
      The comparison table (columns are described in the module docstring), datasets sorted,
      cells in the canonical order with the reference first.

    Raises:
      AnalysisError: unknown option, or the reference cell is in none of the datasets.
    """
    for name, value, valid in (
        ("correction", correction, CORRECTIONS),
        ("sample", sample, SAMPLES),
        ("family", family, FAMILIES),
        ("test", test, TESTS),
    ):
        if value not in valid:
            raise AnalysisError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    trials = canonical_order(trials_table(trials, metric, select_by))
    if trials.empty:
        raise AnalysisError("no trials to compare")
    check_reference_present(trials, reference)
    rows = []
    for dataset, by_dataset in trials.groupby("dataset", observed=True, sort=True):
        cells = ordered_cells(by_dataset["cell"].astype(str), reference)
        groups = {c: by_dataset[by_dataset["cell"].astype(str) == c] for c in cells}
        for cell in cells:
            rows.append(
                _cell_row(
                    str(dataset),
                    cell,
                    groups[cell],
                    reference,
                    groups.get(reference),
                    metric=metric,
                    select_by=select_by,
                    fraction=fraction,
                    sample=sample,
                    test=test,
                    permutations=permutations,
                    confidence=confidence,
                    resamples=resamples,
                    seed=seed,
                )
            )
    table = pd.DataFrame(rows)
    table["p_adjusted"] = np.nan
    family_keys = ["dataset"] if family == "dataset" else [None]
    for key in family_keys:
        groups = table.groupby(key).groups.values() if key else [table.index]
        for index in groups:
            table.loc[index, "p_adjusted"] = ADJUSTERS[correction](table.loc[index, "p"].to_numpy())
    table["correction"] = correction
    table["marker"] = [
        _marker(row.p_adjusted, row.mean_difference, alpha, row.metric)
        for row in table.itertuples()
    ]
    table.loc[table["cell"] == reference, "marker"] = "reference"
    return table


def _marker(p_adjusted: float, difference: float, alpha: float, metric: str) -> str:
    if not (p_adjusted < alpha) or not np.isfinite(difference):
        return ""
    worse = difference > 0
    if metric in HIGHER_IS_BETTER:
        worse = not worse
    return "worse" if worse else "better"


def cell_arrays(group: pd.DataFrame, metric: str, select_by: str) -> tuple[np.ndarray, np.ndarray]:
    """(selection values, metric values) of every trial; trials without a result get (inf, NaN)."""
    usable = group["usable"].to_numpy(bool)
    valid = np.where(usable, group[select_by].to_numpy(float), np.inf)
    values = np.where(usable, group[metric].to_numpy(float), np.nan)
    return valid, values


def _cell_row(
    dataset: str,
    cell: str,
    group: pd.DataFrame,
    reference: str,
    reference_group: pd.DataFrame | None,
    *,
    metric: str,
    select_by: str,
    fraction: float,
    sample: str,
    test: str,
    permutations: int,
    confidence: float,
    resamples: int,
    seed: int,
) -> dict:
    """The row of one cell (no correction yet)."""
    top = top_trials(group, fraction, select_by)
    top_metric = top[metric].to_numpy(float)
    usable = group[group["usable"]]
    best = usable.nsmallest(1, select_by)
    valid, values = cell_arrays(group, metric, select_by)
    count = max(1, math.ceil(fraction * len(group)))

    def resampled_top_median(index, axis=-1):
        index = index.astype(int)
        order = np.argsort(valid[index], axis=-1)[..., :count]
        chosen = np.take_along_axis(index, order, axis=-1)
        return np.nanmedian(values[chosen], axis=-1)

    low, high = bootstrap_interval(
        (np.arange(len(group), dtype=float),), resampled_top_median, confidence, resamples, seed
    )
    row = {
        "dataset": dataset,
        "cell": cell,
        "metric": _metric_name(group),
        "trials": len(group),
        "usable": len(usable),
        "diverged_share": float(group["diverged"].mean()) if len(group) else math.nan,
        "top_n": len(top_metric),
        "top_median": float(np.median(top_metric)) if len(top_metric) else math.nan,
        "top_median_ci_low": low,
        "top_median_ci_high": high,
        "top_mean": float(top_metric.mean()) if len(top_metric) else math.nan,
        "top_std": float(top_metric.std(ddof=1)) if len(top_metric) > 1 else math.nan,
        "best_valid": float(best[select_by].iloc[0]) if len(best) else math.nan,
        "best_test": float(best[metric].iloc[0]) if len(best) else math.nan,
        "reference": reference,
        "fraction": fraction,
        "sample": sample,
        "test": test,
        "n_compared": 0,
        "mean_difference": math.nan,
        "difference_ci_low": math.nan,
        "difference_ci_high": math.nan,
        "t": math.nan,
        "dof": math.nan,
        "p_welch": math.nan,
        "p_permutation": math.nan,
        "p": math.nan,
        "hedges_g": math.nan,
    }
    if cell == reference or reference_group is None:
        return row
    compared = comparison_sample(group, sample, fraction, select_by)[metric].to_numpy(float)
    reference_sample = comparison_sample(reference_group, sample, fraction, select_by)[
        metric
    ].to_numpy(float)
    reference_valid, reference_values = cell_arrays(reference_group, metric, select_by)
    share = fraction if sample == "top" else 1.0
    t, dof, p_welch = welch_t_test(compared, reference_sample)
    difference, p_permutation = top_permutation_test(
        valid, values, reference_valid, reference_values, share, permutations, seed
    )
    count_x = max(1, math.ceil(share * len(valid)))
    count_r = max(1, math.ceil(share * len(reference_valid)))

    def resampled_difference(index_x, index_r, axis=-1):
        index_x, index_r = index_x.astype(int), index_r.astype(int)
        return top_mean(valid[index_x], values[index_x], count_x) - top_mean(
            reference_valid[index_r], reference_values[index_r], count_r
        )

    low, high = bootstrap_interval(
        (np.arange(len(valid), dtype=float), np.arange(len(reference_valid), dtype=float)),
        resampled_difference,
        confidence,
        resamples,
        seed,
    )
    row.update(
        n_compared=len(compared),
        mean_difference=float(difference),
        difference_ci_low=low,
        difference_ci_high=high,
        t=float(t),
        dof=float(dof),
        p_welch=float(p_welch),
        p_permutation=float(p_permutation),
        p=float(p_welch if test == "welch" else p_permutation),
        hedges_g=float(hedges_g(compared, reference_sample)),
    )
    return row


def _metric_name(group: pd.DataFrame) -> str:
    if "metric" in group and group["metric"].notna().any():
        return str(group["metric"].dropna().iloc[0])
    return "metric"


# --------------------------------------------------------------------------- rendering


def decimals_for(values) -> int:
    """Decimals that show the smallest nonzero magnitude among ``values`` to 4 significant digits,
    and at least 3: NLLs of 8.5 keep 3 decimals, an MSE of 3.4e-4 gets 7 (not '0.000')."""
    magnitudes = np.abs(np.asarray([v for v in values if v is not None], float))
    magnitudes = magnitudes[np.isfinite(magnitudes) & (magnitudes > 0)]
    if not magnitudes.size:
        return 3
    return int(np.clip(3 - np.floor(np.log10(magnitudes.min())), 3, 10))


def _number(value: float, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _p_value(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _interval(low: float, high: float, digits: int = 3) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f" [{low:.{digits}f}, {high:.{digits}f}]"


DISPLAY_HEADER = (
    "cell",
    "trials",
    "diverged",
    "{share}: median [95 % CI]",
    "{share}: mean ± std",
    "best test",
    "Δ mean vs ref [95 % CI]",
    "g",
    "p (adj.)",
    "significant",
)


def share_label(fraction: float) -> str:
    """'best 10 %', or 'all trials' for a fraction of 1."""
    return "all trials" if fraction >= 1 else f"best {100 * fraction:g} %"


def compared_fraction(row: pd.Series) -> float:
    """The fraction of trials a comparison row summarises (0.1 for tables written before the
    ``fraction`` column existed)."""
    return float(row["fraction"]) if "fraction" in row else 0.1


def display_header(table: pd.DataFrame) -> tuple[str, ...]:
    """``DISPLAY_HEADER`` with the share of trials the table summarises filled in."""
    share = share_label(compared_fraction(table.iloc[0]))
    return tuple(name.format(share=share) for name in DISPLAY_HEADER)


def is_rerun_study(trials: pd.DataFrame) -> bool:
    """Whether every trial of ``trials`` trains an earlier study's draw again (``search.rerun``)."""
    return "rerun_of" in trials and len(trials) > 0 and bool(trials["rerun_of"].notna().all())


def comparison_selection(
    trials: pd.DataFrame, fraction: float | None = None, sample: str | None = None
) -> tuple[float, str]:
    """(fraction, sample) for comparing a study's cells, where not given: Greff's best 10 % of a
    random search; every trial of a rerun (``search.rerun``: seeds of the same draws, none of
    which validation should pick over another)."""
    rerun = is_rerun_study(trials)
    fraction_default, sample_default = (1.0, "all") if rerun else (0.1, "top")
    return (
        fraction_default if fraction is None else fraction,
        sample_default if sample is None else sample,
    )


def display_rows(table: pd.DataFrame, dataset: str, mark: Callable[[str], str]) -> list[list[str]]:
    """The human-readable cells of one dataset's rows (``mark`` renders the marker)."""
    rows = []
    own = table[table["dataset"] == dataset]
    digits = decimals_for([*own["top_median"], *own["top_mean"], *own["best_test"]])
    for row in own.itertuples():
        is_reference = row.marker == "reference"
        rows.append(
            [
                f"{row.cell} (ref.)" if is_reference else str(row.cell),
                str(row.trials),
                f"{100 * row.diverged_share:.0f} %",
                _number(row.top_median, digits)
                + _interval(row.top_median_ci_low, row.top_median_ci_high, digits),
                f"{_number(row.top_mean, digits)} ± {_number(row.top_std, digits)}",
                _number(row.best_test, digits),
                ""
                if is_reference
                else f"{row.mean_difference:+.{digits}f}"
                + _interval(row.difference_ci_low, row.difference_ci_high, digits)
                if np.isfinite(row.mean_difference)
                else "–",
                "" if is_reference else _number(row.hedges_g, 2),
                "" if is_reference else _p_value(row.p_adjusted),
                mark(row.marker) if row.marker and not is_reference else "",
            ]
        )
    return rows


def _caption(table: pd.DataFrame, dataset: str) -> str:
    first = table[table["dataset"] == dataset].iloc[0]
    sample = (
        f"its {share_label(compared_fraction(first))} by validation"
        if first["sample"] == "top"
        else "all its usable trials"
    )
    test_name = "permutation test" if first["test"] == "permutation" else "Welch's t-test"
    return (
        f"{dataset} ({first['metric']}, test set, lower is better). Each cell against "
        f"{first['reference']} on {sample}: {test_name}, {first['correction']}-corrected "
        f"p-values; g: Hedges' g; CIs: bootstrap over trials."
    )


def markdown_table(header: list[str] | tuple[str, ...], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (numbers right-aligned)."""

    def escape(text: str) -> str:
        return str(text).replace("|", "\\|")

    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = [
        "| " + " | ".join(escape(h) for h in header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(table: pd.DataFrame) -> str:
    """One markdown table per dataset, significant cells in bold with their direction."""
    sections = []
    for dataset in table["dataset"].unique():
        rows = display_rows(table, dataset, lambda marker: f"**{marker}**")
        sections.append(
            f"#### {dataset}\n\n{_caption(table, dataset)}\n\n"
            + markdown_table(display_header(table), rows)
        )
    return "\n\n".join(sections) + "\n"


def _latex_escape(text: str) -> str:
    for char, replacement in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("±", r"$\pm$"),
        ("Δ", r"$\Delta$"),
        ("–", "--"),
    ):
        text = text.replace(char, replacement)
    return text


def to_latex(table: pd.DataFrame) -> str:
    """One booktabs ``table`` per dataset (needs ``\\usepackage{booktabs}``)."""
    blocks = []
    for dataset in table["dataset"].unique():
        rows = display_rows(table, dataset, lambda marker: marker)
        body = [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in rows]
        blocks.append(
            "\n".join(
                [
                    r"\begin{table}[t]",
                    r"\centering\small",
                    r"\begin{tabular}{l" + "r" * (len(DISPLAY_HEADER) - 1) + "}",
                    r"\toprule",
                    " & ".join(_latex_escape(h) for h in display_header(table)) + r" \\",
                    r"\midrule",
                    *body,
                    r"\bottomrule",
                    r"\end{tabular}",
                    r"\caption{" + _latex_escape(_caption(table, dataset)) + "}",
                    r"\end{table}",
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


def write_tables(table: pd.DataFrame, output_dir, stem: str = "comparison") -> dict[str, object]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` into ``output_dir``."""
    from pathlib import Path

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: output_dir / f"{stem}.{kind}" for kind in ("csv", "md", "tex")}
    write_table_atomic(paths["csv"], table)
    write_text_atomic(paths["md"], to_markdown(table))
    write_text_atomic(paths["tex"], to_latex(table))
    return paths
