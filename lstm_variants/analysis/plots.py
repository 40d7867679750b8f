"""Figures of a study, readable in black and white (hatches, markers, line styles, grey bands).

- ``box_plots``: Greff et al. (2017) Fig. 3: the test metric of every cell, all trials (top) and
  the best 10 % by validation (bottom); significantly worse cells hatched '///', better ones
  '...', the reference shaded grey.
- ``marginal_plots``: Greff Fig. 4: the predicted metric against each hyperparameter (fANOVA
  marginal, mean over trees) with a band of +-1 standard deviation over trees; the y-axis shows
  the bulk (a corner of diverging learning rates falls off the top) and the panel says where
  the curve or band leaves it.
- ``interaction_heatmap``: the predicted metric over learning rate x hidden size, with contours
  (labelled only where a label can be read) and the best learning rate of each hidden size drawn
  as a line (Greff: it does not move with size).
- ``importance_chart``: Greff Fig. 5 as bars: the variance share of each hyperparameter and pair.
- ``learning_curves``: the validation metric (bits per character, NLL, ...) per epoch of each
  cell's best trial (line style and marker both change from cell to cell; legend beside the axes).
- ``best_result_bars``: Jozefowicz et al. (2015) style: the best test result of every cell, one
  panel per task (hatch and grey face: up to 31 cells told apart).

Every function takes its data and an output path *stem* and writes ``stem.png`` and ``stem.pdf``;
figures are built with ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot state), so this
works headless and in threads.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import patheffects, ticker
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from matplotlib.transforms import Bbox

from lstm_variants.analysis.collect import ordered_cells
from lstm_variants.analysis.compare import (
    compared_fraction,
    decimals_for,
    share_label,
    top_trials,
)
from lstm_variants.analysis.importance import Importance, pretty
from lstm_variants.analysis.report import uninformative_reason
from lstm_variants.atomic_files import save_figure_atomic
from lstm_variants.losses import metric_value

FORMATS = ("png", "pdf")
DPI = 150
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++", "**", "||", "OO")
LABEL_STEP = 40  # points between the places a contour offers for a label
BEST_MARKERS = 8  # markers on the heat map's best-a line: few enough to stay apart
BAR_FACES = ("white", "0.65", "0.45")  # with HATCHES, a bar of its own for up to 31 cells
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "*", "h")
LINESTYLES = ("-", "--", "-.", ":")
NO_RESULT = "no usable trial"
MARKER_HATCH = {"worse": "///", "better": "...", "": "", "reference": ""}


def save(figure: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``; return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension in FORMATS:
        path = stem.with_suffix(f".{extension}")
        save_figure_atomic(path, figure, dpi=DPI, bbox_inches="tight")
        paths.append(path)
    return paths


# What each recorded metric is, with its unit, for axis labels (losses.metric_value converts).
METRIC_NAMES = {
    "nll_per_step": "NLL per time step (nats)",
    "cross_entropy": "cross-entropy (nats)",
    "bits_per_char": "bits per character",
    "perplexity": "perplexity",
    "mse": "mean squared error",
}


def describe_metric(metric: str) -> str:
    """An axis label for ``metric``: its meaning and unit ('NLL per time step (nats)')."""
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def _one_metric(trials: pd.DataFrame) -> str | None:
    names = trials["metric"].dropna().unique() if "metric" in trials else []
    return str(names[0]) if len(names) == 1 else None


def _metric_label(trials: pd.DataFrame) -> str:
    metric = _one_metric(trials)
    return f"test {describe_metric(metric)}" if metric else "test metric"


def robust_limits(values: np.ndarray) -> tuple[float, float]:
    """y-limits that show the bulk: up to Q3 + 3 IQR (diverged-like outliers fall off the top)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    q1, q3 = np.percentile(values, [25, 75])
    return _full_limits(values[values <= q3 + 3 * max(q3 - q1, 1e-9)])


def _full_limits(values: np.ndarray) -> tuple[float, float]:
    """y-limits that show every finite value, with a 5 % margin.

    Values that are (nearly) all equal, one trial say, get +- 1 % of their size instead: a margin
    of their spread, 1e-10, drew ticks '1.6 ... 2.4' under an offset '1e-10+1.959'.
    """
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    low, top = values.min(), values.max()
    scale = max(abs(low), abs(top), 1.0)
    pad = 0.05 * (top - low) if top - low > 1e-3 * scale else 0.01 * scale
    return low - pad, top + pad


def box_plots(
    trials: pd.DataFrame,
    comparison: pd.DataFrame,
    dataset: str,
    stem: Path,
    reference: str = "vanilla",
    metric: str = "test_at_best",
    fraction: float = 0.1,
) -> list[Path]:
    """Greff's Fig. 3 for one dataset (``box_figure``), saved at ``stem``."""
    return save(box_figure(trials, comparison, dataset, reference, metric, fraction), stem)


def box_figure(
    trials: pd.DataFrame,
    comparison: pd.DataFrame,
    dataset: str,
    reference: str = "vanilla",
    metric: str = "test_at_best",
    fraction: float = 0.1,
) -> Figure:
    """Greff's Fig. 3 for one dataset: all trials (top) and the best ``fraction`` per cell."""
    frame = trials[trials["dataset"].astype(str) == dataset]
    cells = ordered_cells(frame["cell"].astype(str), reference)
    markers = comparison[comparison["dataset"] == dataset].set_index("cell")["marker"].to_dict()
    figure = Figure(figsize=(max(5.0, 0.8 * len(cells) + 2), 6.5))
    axes = figure.subplots(2, 1, sharex=True)
    # The lower panel is the sample the comparison table tests, so it shows every value; the
    # upper one cuts off far outliers (diverged-like trials) and counts them in its title.
    lower = f"{share_label(fraction)} by validation" if fraction < 1 else "all trials, full range"
    panels = (
        ("all trials", lambda g: g[g["usable"]], robust_limits),
        (lower, lambda g: top_trials(g, fraction), _full_limits),
    )
    for axis, (title, select, limits) in zip(axes, panels, strict=True):
        data = [
            select(frame[frame["cell"].astype(str) == cell])[metric].to_numpy(float)
            for cell in cells
        ]
        positions = np.arange(1, len(cells) + 1)
        shown = [d if len(d) else np.array([np.nan]) for d in data]
        boxes = axis.boxplot(
            shown,
            positions=positions,
            widths=0.6,
            patch_artist=True,
            showfliers=True,
            flierprops={"marker": ".", "markersize": 3, "markerfacecolor": "black"},
            medianprops={"color": "black", "linewidth": 1.5},
        )
        for patch, cell in zip(boxes["boxes"], cells, strict=True):
            marker = markers.get(cell, "")
            patch.set_facecolor("0.85" if cell == reference else "white")
            patch.set_edgecolor("black")
            patch.set_hatch(MARKER_HATCH.get(marker, ""))
        every = np.concatenate([d for d in data if len(d)] or [np.array([0.0])])
        low, high = limits(every)
        # The bulk's limits may pass over a whole cell's middle (greff_jsb_rerun: half of noaf's
        # trials above the others' Q3 + 3 IQR hid its median): widen to every cell's median.
        medians = [np.median(d[np.isfinite(d)]) for d in data if np.isfinite(d).any()]
        if medians and max(medians) > high:
            high = max(medians) + 0.05 * (max(medians) - low)
        axis.set_ylim(low, high)
        # A cell without a result (every trial diverged) would be a blank slot, read as missing
        # data or a drawing fault: say why it is empty.
        for position, values in zip(positions, data, strict=True):
            if not np.isfinite(values).any():
                axis.text(position, 0.5, NO_RESULT, transform=axis.get_xaxis_transform(),
                          ha="center", va="center", rotation=90, fontsize=8, color="0.3")  # fmt: skip
        hidden = int(np.sum(every > high))
        label = f"{title} ({hidden} above the axis)" if hidden else title
        axis.set_title(label, fontsize=10)
        axis.set_ylabel(_metric_label(frame))
        axis.grid(axis="y", color="0.85", linewidth=0.5)
    labels = [_cell_label(cell, markers.get(cell, ""), reference) for cell in cells]
    axes[-1].set_xticks(np.arange(1, len(cells) + 1), labels, rotation=30, ha="right")
    figure.suptitle(
        f"{dataset}: ///: significantly worse than {reference}, ...: better", fontsize=10
    )
    return figure


def _cell_label(cell: str, marker: str, reference: str) -> str:
    if cell == reference:
        return f"{cell} (ref.)"
    return {"worse": f"{cell} (-)", "better": f"{cell} (+)"}.get(marker, cell)


def _plain_log_ticks(axis, which: str) -> None:
    """Log axis with plain numbers at 1, 2, 5 x 10^k, or at every 10^k when it spans more than
    two decades (a learning rate over [1e-6, 1e-2] would crowd its labels into one line)."""
    target = axis.xaxis if which == "x" else axis.yaxis
    low, high = axis.get_xlim() if which == "x" else axis.get_ylim()
    decades = math.log10(high / low) if low > 0 and high > 0 else 0.0
    subs = (1.0,) if decades > 2.0 else (1.0, 2.0, 5.0)
    target.set_major_locator(ticker.LogLocator(subs=subs))
    target.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(ticker.NullFormatter())


def _axis_for(scale: str):
    """(transform unit -> plotted x, x-scale, label suffix) for a hyperparameter's scale."""
    if scale == "log":
        return (lambda unit: 10.0**unit), "log", ""
    if scale == "one_minus_log":
        return (lambda unit: 10.0**unit), "log", " (1 - value, log axis)"
    return (lambda unit: unit), "linear", ""


def _uninformative_line(result: Importance) -> str:
    """A title line flagging a forest that predicts nothing (its curves, surface and shares are
    then noise; the report says so in its text, and a figure is often read without it), or ''."""
    r2 = result.surrogate.r2_out_of_bag
    if uninformative_reason(r2) is None:
        return ""
    why = f"forest OOB R² {r2:.2f} ≤ 0" if math.isfinite(r2) else "under 10 trials"
    return f"\nNOT INFORMATIVE ({why}): noise, not the hyperparameters' effects"


def _marginal_limits(mean: np.ndarray, std: np.ndarray) -> tuple[float, float]:
    """y-limits of a marginal (mean +- std): its bulk (``robust_limits``) where what lies above
    would take over half the axis, else all of it.

    A corner of diverging learning rates (greff_jsb: ~44 below 2.2e-6, 10-12 from 1e-5 to
    1e-2) took the whole axis and flattened the curve where it matters; a band a little above a
    flat curve (a tiny IQR) stays whole, as hiding it would gain the curve nothing.
    """
    values = np.concatenate([mean - std, mean, mean + std])
    full, bulk = _full_limits(values), robust_limits(values)
    return bulk if full[1] - full[0] > 2 * (bulk[1] - bulk[0]) else full


def _runs(x: np.ndarray, where: np.ndarray) -> str:
    """The stretches of ``x`` where ``where`` holds: '1e-06–2.2e-06, 0.0034–0.01'."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], where.astype(int), [0]])))
    return ", ".join(
        f"{x[start]:.2g}" if stop - 1 == start else f"{x[start]:.2g}–{x[stop - 1]:.2g}"
        for start, stop in zip(edges[::2], edges[1::2], strict=True)
    )


def _above_axis_note(x: np.ndarray, mean: np.ndarray, std: np.ndarray, high: float) -> str:
    """Where a marginal leaves the top of its axis, in words ('' if it does not): the curve
    (mean), and where only its band (mean + std) does, with how high and over which x."""
    lines = []
    mean_above, band_above = mean > high, (mean + std > high) & (mean <= high)
    if mean_above.any():
        lines.append(f"mean above the axis at {_runs(x, mean_above)} (up to {mean.max():.3g})")
    if band_above.any():
        top = (mean + std)[band_above].max()
        lines.append(f"band above the axis at {_runs(x, band_above)} (up to {top:.3g})")
    return "\n".join(lines)


def marginal_plots(result: Importance, stem: Path, metric_label: str = "test metric") -> list[Path]:
    """Greff's Fig. 4: one panel per hyperparameter, mean +- std over trees."""
    names = list(result.marginals)
    columns = min(len(names), 4)
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.8 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axis, name in zip(axes, names, strict=False):
        curve = result.marginals[name]
        scale = result.surrogate.scales[result.surrogate.names.index(name)]
        mean, std = curve["mean"].to_numpy(), curve["std"].to_numpy()
        if scale == "categorical":
            x = np.arange(len(curve))
            axis.errorbar(x, mean, yerr=std, fmt="o", color="black", capsize=4)
            axis.set_xticks(x, [str(v) for v in curve["value"]])
            suffix = ""
        else:
            transform, xscale, suffix = _axis_for(scale)
            x = transform(curve["unit"].to_numpy())
            axis.fill_between(x, mean - std, mean + std, color="0.8", linewidth=0)
            axis.plot(x, mean, color="black", linewidth=1.5)
            axis.set_xscale(xscale)
            if xscale == "log":
                _plain_log_ticks(axis, "x")
            low, high = _marginal_limits(mean, std)
            axis.set_ylim(low, high)
            axis.set_title(_above_axis_note(x, mean, std, high), fontsize=8)
        axis.set_xlabel(pretty(name) + suffix)
        axis.set_ylabel(metric_label)
        axis.grid(color="0.9", linewidth=0.5)
    for axis in axes[len(names) :]:
        axis.set_visible(False)
    figure.suptitle(
        f"{result.title}: predicted {metric_label}; marginal, mean ± std over trees, "
        f"{result.trials} trials" + _uninformative_line(result),
        fontsize=10,
    )
    figure.tight_layout()
    return save(figure, stem)


def interaction_heatmap(
    result: Importance, a: str, b: str, stem: Path, metric_label: str = "test metric"
) -> list[Path]:
    """Predicted metric over ``a`` (x) and ``b`` (y), contours, and the best ``a`` per ``b`` row.

    Shades and contours span the bulk of the surface (``robust_limits``): a corner of diverging
    learning rates would otherwise take the whole grey scale and leave the good region flat black.
    """
    names, scales = result.surrogate.names, result.surrogate.scales
    unit_a, unit_b, surface = result.surface(a, b)
    scale_a, scale_b = scales[names.index(a)], scales[names.index(b)]
    transform_a, xscale, suffix_a = _axis_for(scale_a)
    transform_b, yscale, suffix_b = _axis_for(scale_b)
    x, y = transform_a(unit_a), transform_b(unit_b)
    figure = Figure(figsize=(5.5, 4.5))
    axis = figure.subplots()
    low, high = float(np.min(surface)), robust_limits(surface.ravel())[1]
    image = axis.pcolormesh(x, y, surface.T, cmap="Greys_r", shading="nearest", vmin=low, vmax=high)
    levels = np.linspace(low, high, 9)[1:] if high > low else 8
    contours = axis.contour(x, y, surface.T, levels=levels, colors="black", linewidths=0.6)
    # One row of the grid per b value: its best a drawn as a line (white, outlined, to read on
    # dark and light shades), with a marker every few rows. A marker on each of the 40 rows
    # merged into a solid column (greff_jsb: the best rate is the same at every size).
    best = np.argmin(surface, axis=0)  # best a for each b
    (path,) = axis.plot(
        x[best],
        y,
        color="white",
        linewidth=1.2,
        path_effects=[patheffects.withStroke(linewidth=2.6, foreground="black")],
        marker="o",
        markevery=max(1, math.ceil(len(y) / BEST_MARKERS)),
        markerfacecolor="white",
        markeredgecolor="black",
        markersize=5,
        label=f"best {pretty(a)} per {pretty(b)}",
    )
    axis.set_xscale(xscale)
    axis.set_yscale(yscale)
    for which, kind in (("x", xscale), ("y", yscale)):
        if kind == "log":
            _plain_log_ticks(axis, which)
    axis.set_xlabel(pretty(a) + suffix_a)
    axis.set_ylabel(pretty(b) + suffix_b)
    # Below the axes, not on them: inside, it hid a corner of the surface (a corner where the
    # best learning rates of the large networks lay, in greff_jsb's report).
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False)
    figure.colorbar(image, ax=axis, label=f"predicted {metric_label}")
    axis.set_title(
        f"{result.title}: {pretty(a)} x {pretty(b)}" + _uninformative_line(result), fontsize=10
    )
    # Last: where labels go and which collide depends on the final scales and axes size.
    _label_contours(contours, avoid=_segment_boxes(path))
    return save(figure, stem)


def _segment_boxes(line) -> list[Bbox]:
    """Display boxes around each segment of ``line`` (its width and markers included)."""
    points = line.get_transform().transform(line.get_xydata())
    pad = max(line.get_linewidth(), line.get_markersize()) * line.figure.dpi / 72
    return [
        Bbox([np.minimum(start, stop), np.maximum(start, stop)]).padded(pad)
        for start, stop in itertools.pairwise(points)
    ]


def _label_contours(contours, avoid: Sequence[Bbox] = (), per_level: int = 2) -> None:
    """Label each level of ``contours`` up to ``per_level`` times where the label can be read:
    clear of every other label, of the boxes in ``avoid``, of other levels' lines and of the
    axes' edges.

    matplotlib's own placement labels every long enough piece of a contour, once, wherever
    the piece is straightest: a thin loop got its label twice on top of itself, and labels sat
    in bundles of close contours at a cliff of the surface (greff_jsb: '12.9' over '12.9',
    four labels near a learning rate of 2e-3). Here each piece offers a label every
    ``LABEL_STEP`` points along it; they are tried without breaking the lines, a round of one
    per level at a time, and the kept ones drawn again inline (the lines broken under them).
    """
    axis = contours.axes
    contours.clabel(manual=[], fontsize=7, fmt="%.3g")  # label style, no labels yet
    screen = contours.get_transform()
    pieces = [  # the lines on screen, one per connected piece of each level
        (index, screen.transform(piece))
        for index, path in enumerate(contours.get_paths())
        for piece in path.to_polygons(closed_only=False)
        if len(piece) > 1
    ]
    lines = [(index, MplPath(points)) for index, points in pieces]
    step = LABEL_STEP * axis.figure.dpi / 72
    offers: dict[int, list[tuple[float, np.ndarray]]] = {}
    for index, points in pieces:
        run = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
        for at in np.arange(step / 2, run[-1] - step / 4, step):
            spot = np.array([np.interp(at, run, points[:, 0]), np.interp(at, run, points[:, 1])])
            # The middle of the longest piece first: a label there names the most line.
            offers.setdefault(index, []).append((abs(at - run[-1] / 2) - run[-1], spot))
    kept, boxes = [], list(avoid)
    named: dict[int, list[np.ndarray]] = {}
    inside = axis.bbox.padded(-2)
    for _ in range(per_level):
        for index, spots in offers.items():
            spots.sort(key=lambda offer: offer[0])
            while spots:
                x, y = spot = spots.pop(0)[1]
                if any(np.hypot(*(spot - other)) < 3 * step for other in named.get(index, [])):
                    continue  # a second label of a level names another stretch of it
                contours.add_label_near(x, y, inline=False, transform=False)
                box = contours.labelTexts[-1].get_window_extent().padded(2)
                contours.pop_label()
                if (
                    inside.contains(box.x0, box.y0)
                    and inside.contains(box.x1, box.y1)
                    and not any(box.overlaps(other) for other in boxes)
                    and not any(
                        line.intersects_bbox(box, filled=False)
                        for other, line in lines
                        if other != index
                    )
                ):
                    kept.append((x, y))
                    boxes.append(box)
                    named.setdefault(index, []).append(spot)
                    break
    for x, y in kept:
        contours.add_label_near(x, y, inline=True, transform=False)
    for label in contours.labelTexts:
        if abs(label.get_rotation() - 270) <= 5:  # an upright one reads upwards, as y labels do
            label.set_rotation(label.get_rotation() - 180)
        # Black with a white edge reads on the darkest shade too.
        label.set_path_effects([patheffects.withStroke(linewidth=1.5, foreground="white")])


def importance_chart(result: Importance, stem: Path, top_pairs: int = 5) -> list[Path]:
    """Greff's Fig. 5 as horizontal bars: main effects (plain), pairs (hatched), the rest (dotted)."""
    main = result.main
    pairs = result.pairs.head(top_pairs)
    rest = max(0.0, 1.0 - result.main["fraction"].sum() - result.pairs["fraction"].sum())
    labels = [pretty(p) for p in main["parameter"]]
    labels += [f"{pretty(r.parameter_a)} x {pretty(r.parameter_b)}" for r in pairs.itertuples()]
    labels.append("higher order")
    values = [*main["fraction"], *pairs["fraction"], rest]
    errors = [*main["fraction_std"], *pairs["fraction_std"], 0.0]
    hatches = [""] * len(main) + ["//"] * len(pairs) + [".."]
    figure = Figure(figsize=(6.0, 0.35 * len(values) + 1.2))
    axis = figure.subplots()
    positions = np.arange(len(values))[::-1]
    bars = axis.barh(
        positions,
        values,
        xerr=errors,
        color="white",
        edgecolor="black",
        error_kw={"ecolor": "black", "capsize": 2},
    )
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    # Each label right of its error bar, and the axis wide enough for both: a share of 0.53
    # +- 0.50 over trees (few trials) had its bar cut at 0.73 and its label struck through.
    ends = [value + error for value, error in zip(values, errors, strict=True)]
    for position, value, end in zip(positions, values, ends, strict=True):
        axis.text(end + 0.01, position, f"{100 * value:.1f} %", va="center", fontsize=8)
    axis.set_yticks(positions, labels)
    axis.set_xlim(0, max(ends) + 0.2)
    axis.set_xlabel("share of variance of the predicted metric")
    r2 = result.surrogate.r2_out_of_bag
    axis.set_title(
        f"{result.title}: fANOVA ({result.trials} trials, forest OOB R² {r2:.2f})"
        + _uninformative_line(result),
        fontsize=10,
    )
    return save(figure, stem)


def learning_curves(
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    dataset: str,
    stem: Path,
    reference: str = "vanilla",
    per_cell: int = 1,
) -> list[Path]:
    """Validation metric per epoch of the ``per_cell`` best trials (by validation) of each cell.

    Curves record the mean frame loss (nats, or squared error); they are drawn in the dataset's
    metric (``losses.metric_value``: bits per character = nats / ln 2, perplexity = e^nats), the
    unit of the tables and the other figures, so a curve's lowest point is the table's best
    validation result.
    """
    frame = trials[(trials["dataset"].astype(str) == dataset) & trials["usable"]]
    cells = ordered_cells(frame["cell"].astype(str), reference)
    metric = _one_metric(frame)
    curves = curves[curves["trial_id"].isin(frame["trial_id"])].copy()
    if metric:
        curves["valid_loss"] = [metric_value(v, metric) for v in curves["valid_loss"]]
    figure = Figure(figsize=(6.5, 4.2))
    axis = figure.subplots()
    # Line style and marker both change from one cell to the next (4 and 11 are coprime: 44
    # distinct pairs); in turn, solid lines with ten markers came first, and the 1st and 11th
    # cells differed only by a circle against a hexagon.
    styles = (
        (LINESTYLES[i % len(LINESTYLES)], MARKERS[i % len(MARKERS)]) for i in itertools.count()
    )
    shown = []
    for cell in cells:
        best = frame[frame["cell"].astype(str) == cell].nsmallest(per_cell, "best_valid")
        shown += list(best["trial_id"])
        linestyle, marker = next(styles)
        for rank, trial in enumerate(best["trial_id"]):
            curve = curves[curves["trial_id"] == trial].sort_values("epoch")
            if curve.empty:
                continue
            every = max(1, len(curve) // 8)
            axis.plot(
                curve["epoch"],
                curve["valid_loss"],
                color="black",
                linestyle=linestyle,
                marker=marker,
                markevery=every,
                markersize=4,
                linewidth=1,
                label=cell if rank == 0 else None,
            )
    # Limits of the curves drawn, not of every trial's (the worst would flatten the best).
    drawn = curves[curves["trial_id"].isin(shown)]
    low, high = robust_limits(drawn["valid_loss"].to_numpy(float))
    # The bulk's limits cut off a cell whose best curve lies wholly above the others' (a cell
    # that learned little): widen to every curve's lowest point, so each cell in the legend
    # has a curve on the axes.
    lowest = drawn.groupby("trial_id")["valid_loss"].min().to_numpy(float)
    lowest = lowest[np.isfinite(lowest)]
    if len(lowest) and lowest.max() > high:
        high = lowest.max() + 0.05 * (lowest.max() - low)
    axis.set_ylim(low, high)
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))  # no epoch 2.5
    axis.set_ylabel(f"validation {describe_metric(metric)}" if metric else "validation loss")
    axis.set_title(f"{dataset}: best trial of each cell", fontsize=10)
    # Beside the axes: inside, even at its 'best' place, it covered curves (14 cells, 3 epochs).
    axis.legend(
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        frameon=False,
        ncols=1 if len(cells) <= 20 else 2,
    )
    axis.grid(color="0.9", linewidth=0.5)
    return save(figure, stem)


def bar_styles(cells: Sequence[str], reference: str) -> dict[str, tuple[str, str]]:
    """(face colour, hatch) of each cell's bar, the same in every panel: ``reference`` grey
    and plain, the others through ``HATCHES`` on white, then hatched on each grey of
    ``BAR_FACES``, so that up to 31 cells have bars of their own (hatches alone repeated from
    the 12th cell: mut3 drawn as nig)."""
    styles = [(face, hatch) for face in BAR_FACES for hatch in HATCHES if face == "white" or hatch]
    return {
        cell: ("0.85", "") if cell == reference else styles[i % len(styles)]
        for i, cell in enumerate(cells)
    }


def best_result_bars(
    comparison: pd.DataFrame, stem: Path, reference: str = "vanilla"
) -> list[Path]:
    """Jozefowicz et al.'s comparison: the best test result (at best validation) per cell and task."""
    datasets = list(comparison["dataset"].unique())
    figure = Figure(
        figsize=(4.0 * min(len(datasets), 3), 0.35 * comparison["cell"].nunique() + 1.8)
    )
    columns = min(len(datasets), 3)
    rows = math.ceil(len(datasets) / columns)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    style_of = bar_styles(ordered_cells(comparison["cell"], reference), reference)
    for axis, dataset in zip(axes, datasets, strict=False):
        table = comparison[comparison["dataset"] == dataset]
        cells = ordered_cells(table["cell"], reference)
        values = table.set_index("cell").loc[cells, "best_test"].to_numpy(float)
        positions = np.arange(len(cells))[::-1]
        bars = axis.barh(positions, values, color="white", edgecolor="black")
        for bar, cell in zip(bars, cells, strict=True):
            face, hatch = style_of[cell]
            bar.set_facecolor(face)
            bar.set_hatch(hatch)
        finite = values[np.isfinite(values)]
        if len(finite):
            low, high = finite.min(), finite.max()
            pad = max(0.15 * (high - low), 0.02 * abs(high) or 0.01)
            axis.set_xlim(low - 2 * pad, high + 2 * pad)
            best = np.nanargmin(values)
            digits = decimals_for(finite)
            for position, value, index in zip(positions, values, range(len(values)), strict=True):
                if np.isfinite(value):
                    text = f"{value:.{digits}f}" + (" (best)" if index == best else "")
                    axis.text(value, position, " " + text, va="center", fontsize=7)
                else:  # no bar: say why (its trials all diverged), rather than leave a gap
                    axis.text(low - 2 * pad, position, " " + NO_RESULT, va="center", fontsize=7,
                              color="0.3")  # fmt: skip
        axis.set_yticks(positions, cells)
        if not np.isfinite(values).all():  # a row without a bar keeps its height
            axis.set_ylim(-0.6, len(cells) - 0.4)
        metric = table["metric"].iloc[0]
        axis.set_xlabel(f"best test {describe_metric(str(metric))}, lower is better")
        axis.set_title(dataset, fontsize=10)
    for axis in axes[len(datasets) :]:
        axis.set_visible(False)
    figure.tight_layout()
    return save(figure, stem)


def pick_interaction(result: Importance) -> tuple[str, str] | None:
    """The (learning rate, hidden size) pair if both were searched, else the strongest pair."""
    names = result.surrogate.names
    leaf = {name.split(".")[-1]: name for name in names}
    if "learning_rate" in leaf and "hidden_size" in leaf:
        return leaf["learning_rate"], leaf["hidden_size"]
    if len(result.pairs):
        top = result.pairs.iloc[0]
        return top["parameter_a"], top["parameter_b"]
    return None


def all_figures(
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    comparison: pd.DataFrame,
    importances: Sequence[Importance],
    output_dir: Path,
    reference: str = "vanilla",
) -> dict[str, list[Path]]:
    """Every figure of a study into ``output_dir``; returns name -> written paths."""
    output_dir = Path(output_dir)
    written: dict[str, list[Path]] = {}
    # The lower box panel shows the sample the table compared: every usable trial where it
    # tested them all (a rerun study, or sample='all' with the best-fraction summary kept).
    first = comparison.iloc[0]
    fraction = 1.0 if first.get("sample") == "all" else compared_fraction(first)
    for dataset in comparison["dataset"].unique():
        written[f"box_{dataset}"] = box_plots(
            trials, comparison, dataset, output_dir / f"box_{dataset}", reference, fraction=fraction
        )
        written[f"curves_{dataset}"] = learning_curves(
            trials, curves, dataset, output_dir / f"curves_{dataset}", reference
        )
    written["best_results"] = best_result_bars(comparison, output_dir / "best_results", reference)
    for result in importances:
        slug = "_".join(result.group.values()) or "all"
        label = (
            _metric_label(trials[trials["dataset"].astype(str) == result.group.get("dataset", "")])
            if "dataset" in result.group
            else "test metric"
        )
        written[f"importance_{slug}"] = importance_chart(result, output_dir / f"importance_{slug}")
        written[f"marginals_{slug}"] = marginal_plots(
            result, output_dir / f"marginals_{slug}", label
        )
        pair = pick_interaction(result)
        if pair:
            written[f"interaction_{slug}"] = interaction_heatmap(
                result, *pair, output_dir / f"interaction_{slug}", label
            )
    return written
