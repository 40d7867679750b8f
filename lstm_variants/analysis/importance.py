"""Hyperparameter importance: functional ANOVA of a random-forest surrogate (Greff Figs. 4, 5).

**What is computed.** Let f(x) be the metric (the test metric at the best validation epoch) as a
function of the hyperparameters x = (x_1, ..., x_d), each taken uniformly over its search range on
the scale it was sampled on (log10 for log-uniform ones such as the learning rate and hidden size,
log10(1 - m) for Greff's momentum m = 1 - log-uniform, the raw value for uniform ones). Functional
ANOVA (Hooker 2007; Hutter, Hoos & Leyton-Brown 2014) splits f into a constant, main effects and
interactions,

    f(x) = mu + sum_i f_i(x_i) + sum_{i<j} f_ij(x_i, x_j) + ...,
    mu = E[f],   f_i(x_i) = E[f | x_i] - mu,   f_ij = E[f | x_i, x_j] - f_i - f_j - mu,

whose terms are orthogonal, so the variance splits as V = sum_i V_i + sum_{i<j} V_ij + ...,
with V_i = Var f_i and V_ij = Var f_ij. The *importance* of x_i is V_i / V (a Greff Fig. 5 pie
slice), that of a pair V_ij / V; what is left, 1 - sum, is higher-order interaction. The *marginal*
E[f | x_i] (= mu + f_i) as a curve over x_i is Greff's Fig. 4.

**How.** f is known only at the trials, so it is replaced by a random forest (scikit-learn) fitted
to them. A regression tree is piecewise constant on axis-aligned boxes (its leaves), so every
expectation above is exact for it: with leaf l having value v_l and box B_l, and w_l(S) the share
of the search range along the dimensions *outside* S that B_l covers,

    E[tree | x_S] = sum_l v_l w_l(S) 1[x_S in B_l restricted to S],

a step function on the grid cut by the leaves' edges along S. For |S| <= 2 it is built in
O(leaves + grid cells) with a difference array (each leaf adds a constant over a rectangle of grid
cells, then cumulative sums), so thousands of trials and dozens of trees take a second. Each tree
gives its own V_i / V, V_ij / V and marginal curves; we report their mean over trees and, as
uncertainty, their standard deviation over trees (the convention of the ``fanova`` package, whose
Fig. 4 bands Greff shows).

**Why hand-written.** The reference implementation, ``fanova`` (automl), needs ``pyrfr``, which
no longer builds with current compilers and Pythons; ``optuna.importance.FanovaImportanceEvaluator``
re-implements it on scikit-learn but returns main effects only (no pairs, no marginal curves) and
always works on the raw scale (a log-uniform learning rate is then dominated by its largest decade).
This module gives main effects, pairs and marginals on the sampled scale; its main effects are
checked against optuna's in the tests (same forest settings, same scale).

Categorical hyperparameters (e.g. the optimizer name) are coded 0..K-1 on the range
[-0.5, K-0.5], which gives every category the same weight.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lstm_variants.analysis.collect import AnalysisError, Collection, trials_table

SCALES = ("linear", "log", "one_minus_log", "categorical")
ROUNDING_ZERO = 1e-12  # a variance fraction this small is an exact zero seen through rounding

# Hyperparameters a record always carries (``hyperparameters``); used when there is no ``sampled``.
NUMERIC_HYPERPARAMETERS = (
    "learning_rate",
    "hidden_size",
    "momentum",
    "input_noise",
    "dropout",
    "clip_norm",
    "clip_value",
    "forget_bias",
    "batch_size",
    "num_layers",
)

# Scale by the last part of a parameter's name (Greff's search space); others are inferred.
KNOWN_SCALES = {
    "learning_rate": "log",
    "hidden_size": "log",
    "momentum": "one_minus_log",
    "input_noise": "linear",
    "dropout": "linear",
    "forget_bias": "linear",
    "clip_norm": "log",
    "clip_value": "log",
    "embed_size": "log",
    "batch_size": "log",
}

# Distribution names of a search-space config (issue 5) and the scale each implies.
DISTRIBUTION_SCALES = {
    "uniform": "linear",
    "int_uniform": "linear",
    "log_uniform": "log",
    "loguniform": "log",
    "log_uniform_int": "log",
    "int_log_uniform": "log",
    "one_minus_log_uniform": "one_minus_log",
    "choice": "categorical",
    "categorical": "categorical",
}


# --------------------------------------------------------------------------- scales


def to_unit(values: np.ndarray, scale: str) -> np.ndarray:
    """Map raw values to the scale they were sampled on (``SCALES``; not 'categorical')."""
    values = np.asarray(values, float)
    if scale == "linear":
        return values
    if scale == "log":
        return np.log10(values)
    if scale == "one_minus_log":
        return np.log10(1.0 - values)
    raise ValueError(f"unknown scale {scale!r}")


def from_unit(values: np.ndarray, scale: str) -> np.ndarray:
    """Inverse of ``to_unit``."""
    values = np.asarray(values, float)
    if scale == "linear":
        return values
    if scale == "log":
        return 10.0**values
    if scale == "one_minus_log":
        return 1.0 - 10.0**values
    raise ValueError(f"unknown scale {scale!r}")


def infer_scale(name: str, values: pd.Series) -> str:
    """The scale ``name`` was most likely sampled on.

    Known names (``KNOWN_SCALES``, matched on the last dotted part) first; then: non-numeric ->
    'categorical'; all positive and spanning at least two decades -> 'log'; else 'linear'.
    """
    leaf = name.split(".")[-1]
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any():
        return "categorical"
    if leaf in KNOWN_SCALES:
        scale = KNOWN_SCALES[leaf]
        if scale == "log" and (numeric > 0).all():
            return scale
        if scale == "one_minus_log" and (numeric < 1).all():
            return scale
        if scale == "linear":
            return scale
    if (numeric > 0).all() and numeric.max() / numeric.min() >= 100:
        return "log"
    return "linear"


def scales_from_search(config: Mapping[str, Any]) -> dict[str, str]:
    """Scales read from a search-space block of a record's config, if it has one.

    Accepts ``config['search']`` (or ``['search_space']``) as ``{dotted key: {'distribution' |
    'type' | 'kind' | '_target_': name, ...}}`` with the distribution names of
    ``DISTRIBUTION_SCALES``; anything else is ignored (the scale is then inferred).
    """
    scales = {}
    for key, spec in search_space(config).items():
        if not isinstance(spec, Mapping):
            continue
        for field in ("distribution", "type", "kind", "_target_"):
            kind = str(spec.get(field, "")).split(".")[-1].lower()
            if kind in DISTRIBUTION_SCALES:
                scales[str(key)] = DISTRIBUTION_SCALES[kind]
                break
    return scales


def search_space(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``{dotted key: spec}`` search space of a record's config (``config['search']['space']``,
    issue 5's layout), or an empty mapping."""
    space = config.get("search") or config.get("search_space") or {}
    if isinstance(space, Mapping) and isinstance(space.get("space"), Mapping):
        space = space["space"]
    return space if isinstance(space, Mapping) else {}


def bounds_from_search(config: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Raw-scale ranges of the searched keys (``low``/``high``; for ``one_minus_log_uniform``
    the value is 1 - y with y in [low, high], so the range is [1 - high, 1 - low])."""
    bounds = {}
    for key, spec in search_space(config).items():
        if not isinstance(spec, Mapping) or "low" not in spec or "high" not in spec:
            continue
        low, high = float(spec["low"]), float(spec["high"])
        if spec.get("distribution") == "one_minus_log_uniform":
            low, high = 1.0 - high, 1.0 - low
        bounds[str(key)] = (low, high)
    return bounds


def pretty(name: str) -> str:
    """'sampled.optimizer.learning_rate' -> 'learning rate'."""
    return name.split(".")[-1].replace("_", " ")


# --------------------------------------------------------------------------- trees as boxes


@dataclasses.dataclass(frozen=True)
class LeafBoxes:
    """A regression tree as its leaves: box ``[lower, upper)`` (unit scale) and value.

    Attributes:
      lower, upper: (leaves, d) box corners, clipped to the search bounds.
      value: (leaves,) the tree's prediction in each box.
      bounds: (d, 2) the search range of each dimension.
    """

    lower: np.ndarray
    upper: np.ndarray
    value: np.ndarray
    bounds: np.ndarray

    @property
    def widths(self) -> np.ndarray:
        """(leaves, d): the share of each dimension's range a leaf covers."""
        span = self.bounds[:, 1] - self.bounds[:, 0]
        return (self.upper - self.lower) / span

    @property
    def mass(self) -> np.ndarray:
        """(leaves,): the share of the search space a leaf covers (sums to 1)."""
        return np.prod(self.widths, axis=1)


def leaf_boxes(tree: Any, bounds: np.ndarray) -> LeafBoxes:
    """The leaves of a fitted ``sklearn.tree._tree.Tree`` as boxes within ``bounds``."""
    bounds = np.asarray(bounds, float)
    left, right = tree.children_left, tree.children_right
    feature, threshold = tree.feature, tree.threshold
    values = tree.value.reshape(tree.node_count, -1)[:, 0]
    lowers, uppers, leaf_values = [], [], []
    stack = [(0, bounds[:, 0].copy(), bounds[:, 1].copy())]
    while stack:
        node, low, high = stack.pop()
        if left[node] < 0:
            lowers.append(low)
            uppers.append(high)
            leaf_values.append(values[node])
            continue
        f, t = (
            feature[node],
            float(np.clip(threshold[node], low[feature[node]], high[feature[node]])),
        )
        left_high, right_low = high.copy(), low.copy()
        left_high[f], right_low[f] = t, t
        stack.append((left[node], low, left_high))
        stack.append((right[node], right_low, high))
    return LeafBoxes(np.array(lowers), np.array(uppers), np.array(leaf_values, float), bounds)


@dataclasses.dataclass(frozen=True)
class Grid:
    """The cells that a tree's leaf edges cut one dimension into.

    Attributes:
      edges: sorted cell edges (unit scale), first and last the search bounds.
      weights: the share of the range each cell covers (sums to 1).
      start, stop: (leaves,) the cells ``[start, stop)`` each leaf covers.
    """

    edges: np.ndarray
    weights: np.ndarray
    start: np.ndarray
    stop: np.ndarray

    def cell_of(self, points: np.ndarray) -> np.ndarray:
        """Index of the cell holding each point (points outside go to the nearest end cell)."""
        index = np.searchsorted(self.edges, points, side="right") - 1
        return np.clip(index, 0, len(self.weights) - 1)


def grid_along(boxes: LeafBoxes, dimension: int) -> Grid:
    """The grid of ``dimension`` cut by every leaf edge along it."""
    edges = np.unique(np.concatenate([boxes.lower[:, dimension], boxes.upper[:, dimension]]))
    span = boxes.bounds[dimension, 1] - boxes.bounds[dimension, 0]
    return Grid(
        edges=edges,
        weights=np.diff(edges) / span,
        start=np.searchsorted(edges, boxes.lower[:, dimension]),
        stop=np.searchsorted(edges, boxes.upper[:, dimension]),
    )


def marginal_1d(boxes: LeafBoxes, grid: Grid, dimension: int) -> np.ndarray:
    """E[tree | x_dimension] on each cell of ``grid``: sum_l v_l w_l(others) over covering leaves."""
    others = np.prod(np.delete(boxes.widths, dimension, axis=1), axis=1)
    difference = np.zeros(len(grid.weights) + 1)
    np.add.at(difference, grid.start, boxes.value * others)
    np.add.at(difference, grid.stop, -boxes.value * others)
    return np.cumsum(difference)[:-1]


def marginal_2d(
    boxes: LeafBoxes, grid_a: Grid, grid_b: Grid, dimension_a: int, dimension_b: int
) -> np.ndarray:
    """E[tree | x_a, x_b] on the cells of ``grid_a`` x ``grid_b`` (2-D difference array)."""
    others = np.prod(np.delete(boxes.widths, [dimension_a, dimension_b], axis=1), axis=1)
    amount = boxes.value * others
    difference = np.zeros((len(grid_a.weights) + 1, len(grid_b.weights) + 1))
    np.add.at(difference, (grid_a.start, grid_b.start), amount)
    np.add.at(difference, (grid_a.stop, grid_b.start), -amount)
    np.add.at(difference, (grid_a.start, grid_b.stop), -amount)
    np.add.at(difference, (grid_a.stop, grid_b.stop), amount)
    return np.cumsum(np.cumsum(difference, axis=0), axis=1)[:-1, :-1]


@dataclasses.dataclass(frozen=True)
class TreeAnova:
    """The functional ANOVA of one tree: mean, variance, main and pairwise variances."""

    mean: float
    variance: float
    main: np.ndarray  # (d,) V_i
    pairs: dict[tuple[int, int], float]  # V_ij (pure interaction)


def tree_anova(boxes: LeafBoxes, pairs: Iterable[tuple[int, int]]) -> TreeAnova:
    """Exact fANOVA terms of one tree for every dimension and the given pairs."""
    mass = boxes.mass
    mean = float(mass @ boxes.value)
    variance = float(mass @ (boxes.value - mean) ** 2)
    dims = boxes.lower.shape[1]
    grids = [grid_along(boxes, i) for i in range(dims)]
    main = np.array(
        [
            float(grids[i].weights @ (marginal_1d(boxes, grids[i], i) - mean) ** 2)
            for i in range(dims)
        ]
    )
    pair_variances = {}
    for a, b in pairs:
        surface = marginal_2d(boxes, grids[a], grids[b], a, b)
        weights = np.outer(grids[a].weights, grids[b].weights)
        total = float(np.sum(weights * (surface - mean) ** 2))
        pair_variances[(a, b)] = max(total - main[a] - main[b], 0.0)
    return TreeAnova(mean, variance, np.clip(main, 0.0, None), pair_variances)


# --------------------------------------------------------------------------- the forest


@dataclasses.dataclass
class Surrogate:
    """A random forest fitted on the unit-scale hyperparameters, with each tree's leaves.

    Attributes:
      names: the hyperparameter of each dimension.
      scales: the scale of each dimension (``SCALES``).
      bounds: (d, 2) the search range, unit scale.
      categories: for categorical dimensions, the category of each code.
      trees: every tree as ``LeafBoxes``.
      r2_out_of_bag: the forest's out-of-bag R^2 (how much of the metric it can explain at all).
    """

    names: list[str]
    scales: list[str]
    bounds: np.ndarray
    categories: dict[int, list[Any]]
    trees: list[LeafBoxes]
    r2_out_of_bag: float


def encode(
    frame: pd.DataFrame, names: Sequence[str], scales: Sequence[str]
) -> tuple[np.ndarray, dict[int, list[Any]]]:
    """The design matrix on the unit scale; categorical columns become codes 0..K-1."""
    columns, categories = [], {}
    for i, (name, scale) in enumerate(zip(names, scales, strict=True)):
        if scale == "categorical":
            labels = sorted(frame[name].astype(str).unique())
            categories[i] = labels
            columns.append(frame[name].astype(str).map({v: k for k, v in enumerate(labels)}))
        else:
            columns.append(to_unit(frame[name].to_numpy(float), scale))
    return np.column_stack(columns).astype(float), categories


def default_bounds(
    x: np.ndarray, scales: Sequence[str], categories: Mapping[int, list]
) -> np.ndarray:
    """The observed range of each dimension (categorical: [-0.5, K - 0.5])."""
    bounds = np.column_stack([x.min(axis=0), x.max(axis=0)])
    for i, labels in categories.items():
        bounds[i] = (-0.5, len(labels) - 0.5)
    return bounds


def fit_surrogate(
    x: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    scales: Sequence[str],
    bounds: np.ndarray,
    categories: Mapping[int, list] | None = None,
    trees: int = 32,
    min_samples_leaf: int = 1,
    max_depth: int | None = 64,
    seed: int = 0,
) -> Surrogate:
    """Fit the random forest (bootstrap samples, all features per split) and read its leaves."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(
        n_estimators=trees,
        min_samples_leaf=min_samples_leaf,
        max_depth=max_depth,
        oob_score=len(y) >= 10,
        random_state=seed,
    )
    with warnings.catch_warnings():
        # Few trees leave some trials never out of bag; the R^2 then covers the others.
        warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
        forest.fit(x, y)
    r2 = float(forest.oob_score_) if len(y) >= 10 else math.nan
    return Surrogate(
        names=list(names),
        scales=list(scales),
        bounds=np.asarray(bounds, float),
        categories=dict(categories or {}),
        trees=[leaf_boxes(e.tree_, bounds) for e in forest.estimators_],
        r2_out_of_bag=r2,
    )


def variance_fractions(
    surrogate: Surrogate, pairs: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Main-effect and pairwise variance fractions, mean and std over trees.

    Returns:
      (main, pairs): ``main`` has columns parameter, fraction, fraction_std; ``pairs`` has
      parameter_a, parameter_b, fraction, fraction_std. Both sorted by fraction, largest first.
      Trees with zero variance (constant) are left out, as in ``fanova``.
    """
    dims = len(surrogate.names)
    pair_index = list(itertools.combinations(range(dims), 2)) if pairs else []
    mains, pair_rows = [], []
    for boxes in surrogate.trees:
        anova = tree_anova(boxes, pair_index)
        if anova.variance <= 0:
            continue
        mains.append(anova.main / anova.variance)
        pair_rows.append([anova.pairs[p] / anova.variance for p in pair_index])
    if not mains:
        raise AnalysisError("the metric does not vary with any hyperparameter (zero variance)")
    mains, pair_rows = np.array(mains), np.array(pair_rows).reshape(len(mains), len(pair_index))
    # A pair's variance is a difference of sums; where the trees never split on both it is zero
    # up to rounding (+-1e-17), whose sign and order vary with the BLAS and summation order. Snap
    # it to 0 so that tables regenerate the same everywhere (ties keep the pairs' order).
    mains, pair_rows = (np.where(np.abs(a) < ROUNDING_ZERO, 0.0, a) for a in (mains, pair_rows))
    main = pd.DataFrame(
        {
            "parameter": surrogate.names,
            "fraction": mains.mean(axis=0),
            "fraction_std": mains.std(axis=0),
        }
    ).sort_values("fraction", ascending=False, ignore_index=True, kind="stable")
    pair_frame = pd.DataFrame(
        {
            "parameter_a": [surrogate.names[a] for a, _ in pair_index],
            "parameter_b": [surrogate.names[b] for _, b in pair_index],
            "fraction": pair_rows.mean(axis=0) if pair_index else [],
            "fraction_std": pair_rows.std(axis=0) if pair_index else [],
        }
    ).sort_values("fraction", ascending=False, ignore_index=True, kind="stable")
    return main, pair_frame


def marginal_curve(surrogate: Surrogate, dimension: int, points: int = 60) -> pd.DataFrame:
    """E[f | x_dimension] over its range: mean and std over trees (Greff Fig. 4).

    Returns:
      Columns value (raw scale, or the category), unit (sampled scale), mean, std.
    """
    low, high = surrogate.bounds[dimension]
    scale = surrogate.scales[dimension]
    if scale == "categorical":
        unit = np.arange(len(surrogate.categories[dimension]), dtype=float)
        value: Any = surrogate.categories[dimension]
    else:
        unit = np.linspace(low, high, points)
        value = from_unit(unit, scale)
    curves = []
    for boxes in surrogate.trees:
        grid = grid_along(boxes, dimension)
        curves.append(marginal_1d(boxes, grid, dimension)[grid.cell_of(unit)])
    curves = np.array(curves)
    return pd.DataFrame(
        {"value": value, "unit": unit, "mean": curves.mean(axis=0), "std": curves.std(axis=0)}
    )


def marginal_surface(
    surrogate: Surrogate, dimension_a: int, dimension_b: int, points: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E[f | x_a, x_b] on a ``points`` x ``points`` unit-scale grid, mean over trees.

    Returns:
      (unit_a, unit_b, surface) with ``surface[i, j]`` at (unit_a[i], unit_b[j]).
    """
    unit_a = np.linspace(*surrogate.bounds[dimension_a], points)
    unit_b = np.linspace(*surrogate.bounds[dimension_b], points)
    total = np.zeros((points, points))
    for boxes in surrogate.trees:
        grid_a, grid_b = grid_along(boxes, dimension_a), grid_along(boxes, dimension_b)
        surface = marginal_2d(boxes, grid_a, grid_b, dimension_a, dimension_b)
        total += surface[np.ix_(grid_a.cell_of(unit_a), grid_b.cell_of(unit_b))]
    return unit_a, unit_b, total / len(surrogate.trees)


# --------------------------------------------------------------------------- from trials


def hyperparameter_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that were searched over in ``frame``.

    The ``sampled.*`` columns (the values the random search drew) when every trial has them;
    otherwise the numeric ``hyperparameters`` (``NUMERIC_HYPERPARAMETERS``) that vary. Either way
    only columns with more than one distinct value and no missing value are kept.
    """
    sampled = [c for c in frame.columns if c.startswith("sampled.")]
    candidates = (
        sampled
        if sampled and frame[sampled].notna().all().all()
        else [c for c in NUMERIC_HYPERPARAMETERS if c in frame.columns]
    )
    return [c for c in candidates if frame[c].notna().all() and frame[c].nunique() > 1]


def check_parameters(frame: pd.DataFrame, names: Sequence[str], where: str = "") -> None:
    """``AnalysisError`` in one line for a parameter that cannot explain the target: not a column,
    a trial without a value (the forest needs one everywhere), or one value in every trial (no
    range to split or to draw a marginal over; it explains nothing, so leave it out). ``where``
    names the group in the message, e.g. ' (dataset=jsb_chorales)'."""
    for name in names:
        if name not in frame.columns:
            raise AnalysisError(f"parameter {name!r} is not a column of the trials table")
        missing = int(frame[name].isna().sum())
        if missing:
            raise AnalysisError(
                f"parameter {name!r} has no value in {missing} of the {len(frame)} trials"
                f"{where}; leave it out or analyse the trials that have it"
            )
        if frame[name].nunique() < 2:
            raise AnalysisError(
                f"parameter {name!r} has one value ({frame[name].iloc[0]}) in all "
                f"{len(frame)} trials{where}: it explains nothing; leave it out"
            )


def _search_from_trials(
    frame: pd.DataFrame,
) -> tuple[dict[str, str], dict[str, tuple[float, float]]]:
    """(scales, raw bounds) of the ``sampled.*`` columns from the first trial's search space."""
    if "config_json" not in frame or frame.empty:
        return {}, {}
    try:
        config = json.loads(frame["config_json"].iloc[0])
    except (TypeError, json.JSONDecodeError):
        return {}, {}
    scales = {f"sampled.{key}": scale for key, scale in scales_from_search(config).items()}
    bounds = {f"sampled.{key}": limits for key, limits in bounds_from_search(config).items()}
    return scales, bounds


@dataclasses.dataclass
class Importance:
    """fANOVA of one group of trials (a dataset, or a dataset and cell).

    Attributes:
      group: e.g. ``{'dataset': 'jsb_chorales'}``.
      target: the metric column explained.
      trials: trials used (finite target); excluded: trials without a finite target.
      main, pairs: the variance fractions (``variance_fractions``).
      marginals: parameter -> its marginal curve (``marginal_curve``).
      surrogate: the fitted forest (for surfaces).
    """

    group: dict[str, str]
    target: str
    trials: int
    excluded: int
    main: pd.DataFrame
    pairs: pd.DataFrame
    marginals: dict[str, pd.DataFrame]
    surrogate: Surrogate

    @property
    def title(self) -> str:
        return ", ".join(str(v) for v in self.group.values()) or "all trials"

    def surface(self, a: str, b: str, points: int = 40):
        """``marginal_surface`` for two named parameters."""
        names = self.surrogate.names
        return marginal_surface(self.surrogate, names.index(a), names.index(b), points)


def importance(
    frame: pd.DataFrame | Collection,
    target: str = "test_at_best",
    parameters: Sequence[str] | None = None,
    scales: Mapping[str, str] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    trees: int = 32,
    min_samples_leaf: int = 1,
    seed: int = 0,
    group: Mapping[str, str] | None = None,
) -> Importance:
    """fANOVA of ``target`` over the hyperparameters of ``frame`` (one group of trials).

    Args:
      frame: trials (``collect``, its table or the collection); rows without a finite target
        are left out and counted.
      target: the column explained (lower is better does not matter here).
      parameters: the columns to explain it by (default ``hyperparameter_columns``).
      scales: override the scale of a parameter (default: search-space config, then
        ``infer_scale``).
      bounds: override a parameter's range, raw scale (default: the search space's ``low`` and
        ``high`` when the records' config has one, else the observed range; the range always
        includes every observed value).
      trees, min_samples_leaf, seed: the random forest.
      group: labels of this group, kept on the result.

    Raises:
      AnalysisError: fewer than 8 usable trials, nothing varies, or a given parameter is not a
        column, lacks a value in a usable trial or has one value only.
    """
    frame = trials_table(frame, target)
    values = pd.to_numeric(frame[target], errors="coerce")
    usable = frame[np.isfinite(values.to_numpy(float))]
    names = list(parameters) if parameters is not None else hyperparameter_columns(usable)
    label = ", ".join(f"{k}={v}" for k, v in (group or {}).items()) or "the trials"
    if len(usable) < 8:
        raise AnalysisError(
            f"importance needs at least 8 trials with a {target}; {label} has {len(usable)}"
        )
    if not names:
        raise AnalysisError(f"no hyperparameter varies across {label}")
    check_parameters(usable, names, f" ({label})" if group else "")
    configured, searched_bounds = _search_from_trials(usable)
    bounds = searched_bounds | dict(bounds or {})
    chosen = [
        (scales or {}).get(name) or configured.get(name) or infer_scale(name, usable[name])
        for name in names
    ]
    for name, scale in zip(names, chosen, strict=True):
        if scale not in SCALES:
            raise AnalysisError(f"unknown scale {scale!r} for {name}; valid: {', '.join(SCALES)}")
    x, categories = encode(usable, names, chosen)
    limits = default_bounds(x, chosen, categories)
    for i, name in enumerate(names):
        if bounds and name in bounds and chosen[i] != "categorical":
            limits[i] = np.sort(to_unit(np.asarray(bounds[name], float), chosen[i]))
    limits[:, 0] = np.minimum(limits[:, 0], x.min(axis=0))
    limits[:, 1] = np.maximum(limits[:, 1], x.max(axis=0))
    surrogate = fit_surrogate(
        x,
        values.loc[usable.index].to_numpy(float),
        names,
        chosen,
        limits,
        categories,
        trees=trees,
        min_samples_leaf=min_samples_leaf,
        seed=seed,
    )
    main, pairs = variance_fractions(surrogate)
    marginals = {name: marginal_curve(surrogate, i) for i, name in enumerate(names)}
    return Importance(
        group=dict(group or {}),
        target=target,
        trials=len(usable),
        excluded=len(frame) - len(usable),
        main=main,
        pairs=pairs,
        marginals=marginals,
        surrogate=surrogate,
    )


def importance_by_group(
    trials: pd.DataFrame | Collection, by: Sequence[str] = ("dataset",), **options: Any
) -> list[Importance]:
    """``importance`` for every group of ``trials`` (default: each dataset, all cells pooled,
    as Greff's Fig. 5). Groups too small to analyse are skipped."""
    trials = trials_table(trials)
    results = []
    for key, frame in trials.groupby(list(by), observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        group = {name: str(value) for name, value in zip(by, key, strict=True)}
        try:
            results.append(importance(frame, group=group, **options))
        except AnalysisError:
            continue
    return results


def importance_table(results: Sequence[Importance]) -> pd.DataFrame:
    """One row per (group, term): main effects and pairs, with 'higher order' as the rest."""
    rows = []
    for result in results:
        base = dict(
            result.group, trials=result.trials, r2_out_of_bag=result.surrogate.r2_out_of_bag
        )
        for row in result.main.itertuples():
            rows.append(
                base
                | {
                    "term": pretty(row.parameter),
                    "kind": "main",
                    "fraction": row.fraction,
                    "fraction_std": row.fraction_std,
                }
            )
        for row in result.pairs.itertuples():
            rows.append(
                base
                | {
                    "term": f"{pretty(row.parameter_a)} x {pretty(row.parameter_b)}",
                    "kind": "pair",
                    "fraction": row.fraction,
                    "fraction_std": row.fraction_std,
                }
            )
        rest = 1.0 - result.main["fraction"].sum() - result.pairs["fraction"].sum()
        rows.append(
            base
            | {
                "term": "higher order",
                "kind": "rest",
                "fraction": max(rest, 0.0),
                "fraction_std": math.nan,
            }
        )
    return pd.DataFrame(rows)
