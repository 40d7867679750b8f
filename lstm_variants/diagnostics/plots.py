"""Figures of the diagnostics: small PNGs meant to be committed beside docs/diagnostics.md.

Every function takes the rows of ``studies`` and returns a matplotlib Figure; ``save`` writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from lstm_variants.atomic_files import save_figure_atomic

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

GATE_COLOURS = {
    "i": "tab:green",
    "f": "tab:blue",
    "o": "tab:red",
    "r": "tab:purple",
    "u": "tab:orange",
}
COMPONENT_TITLES = {"h": "hidden state: ||dL_T / dh_t||", "c": "cell state: ||dL_T / dc_t||"}


# At 80 dpi and 7-point legends a label was 8 pixels high ('tanh_rnn' read 'tanh_mn'): the
# study figures' resolution, and legends of 8 points, 17 pixels.
DPI = 150
LEGEND_FONTSIZE = 8


def save(figure: Figure, path: Path, dpi: int = DPI) -> Path:
    """Write ``figure`` as a PNG and close it."""
    save_figure_atomic(path, figure, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return path


def cell_colours(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One colour per cell label, the same in every panel (cells without a cell state skip panels)."""
    labels = dict.fromkeys(row["cell"] for row in rows)
    palette = plt.get_cmap("tab10").colors
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _states(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(row["state"] for row in rows))


def gradient_flow_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """g(k) against the lag k = T - t on a log scale: one panel per (state, h or c), one line per cell.

    The legend gives each cell's fitted rate per step.
    """
    states = _states(rows)
    colours = cell_colours(rows)
    figure, axes = plt.subplots(
        len(states), 2, figsize=(11, 3.6 * len(states)), squeeze=False, sharex=True
    )
    for i, state in enumerate(states):
        for j, name in enumerate(("h", "c")):
            ax = axes[i, j]
            if not any(name in r["flow"].profiles for r in rows if r["state"] == state):
                ax.set_axis_off()  # GRU, MGU, MUTs and the tanh RNN carry no cell state c
                ax.text(0.5, 0.5, f"no cell shown has a {name} state", ha="center", va="center")
                continue
            for row in (r for r in rows if r["state"] == state):
                profile = row["flow"].profiles.get(name)
                if profile is None:
                    continue
                lags = np.arange(len(profile))
                shown = np.where(
                    profile > 0, profile, np.nan
                )  # log scale: zeros (underflow) are gaps
                fit = row["flow"].fits[name]
                ax.semilogy(
                    lags[1:],
                    shown[1:],
                    color=colours[row["cell"]],
                    label=f"{row['cell']} (r = {fit.rate:.3f})",
                )
            ax.set_title(f"{state}: {COMPONENT_TITLES[name]}", fontsize=10)
            ax.set_xlabel("T - t (steps back from the loss)")
            ax.set_ylabel(f"g_{name}(T - t), mean over sequences")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=LEGEND_FONTSIZE)
    figure.tight_layout()
    return figure


def saturation_figure(rows: Sequence[Mapping[str, Any]], state: str) -> Figure:
    """Karpathy et al.'s scatter: per unit, fraction left-saturated (x) and right-saturated (y).

    One panel per gated cell, one colour per gate; points near the origin are never saturated, points
    on the anti-diagonal always are.
    """
    gated = [r for r in rows if r["state"] == state and r["gates"].saturation]
    columns = min(3, max(1, len(gated)))
    lines = -(-max(1, len(gated)) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(3.6 * columns, 3.4 * lines), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for ax, row in zip(axes.ravel(), gated, strict=False):
        ax.set_visible(True)
        for gate, sat in row["gates"].saturation.items():
            ax.scatter(
                sat.left, sat.right, s=10, alpha=0.6, label=gate, color=GATE_COLOURS.get(gate)
            )
        ax.plot([0, 1], [1, 0], color="grey", lw=0.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{row['cell']} ({state})", fontsize=10)
        ax.set_xlabel("fraction left-saturated (< 0.1)", fontsize=8)
        ax.set_ylabel("fraction right-saturated (> 0.9)", fontsize=8)
        ax.legend(fontsize=LEGEND_FONTSIZE, loc="upper right")
    figure.tight_layout()
    return figure


def retention_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Histograms of the retention (LSTM forget gate f, GRU update gate u) per cell, one panel per state."""
    states = _states(rows)
    colours = cell_colours(rows)
    figure, axes = plt.subplots(1, len(states), figsize=(5.5 * len(states), 3.6), squeeze=False)
    bins = np.linspace(0.0, 1.0, 41)
    for ax, state in zip(axes[0], states, strict=True):
        for row in (r for r in rows if r["state"] == state):
            values = row["gates"].retention_values
            if values is None:
                continue
            ax.hist(
                values,
                bins=bins,
                histtype="step",
                density=True,
                color=colours[row["cell"]],
                label=row["cell"],
            )
        ax.axvline(0.9, color="grey", lw=0.5, ls="--")
        ax.set_yscale("log")
        ax.set_title(f"{state}: forget-gate (retention) values", fontsize=10)
        ax.set_xlabel("retention: f (LSTM; NFG: f = 1), u (GRU), 1 - f (MGU), 1 - u (MUTs)")
        ax.set_ylabel("density (log scale)")
        ax.legend(fontsize=LEGEND_FONTSIZE)
    figure.tight_layout()
    return figure


def init_study_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Fitted rate of ||dL_T/dh_t|| against the recurrent gain: one panel per initialiser."""
    initializers = list(dict.fromkeys(r["initializer"] for r in rows))
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    figure, axes = plt.subplots(
        1, len(initializers), figsize=(4.2 * len(initializers), 3.5), squeeze=False, sharey=True
    )
    for ax, name in zip(axes[0], initializers, strict=True):
        for cell in cells:
            mine = sorted((r for r in rows if r["initializer"] == name and r["cell"] == cell),
                          key=lambda r: r["gain"])  # fmt: skip
            ax.plot([r["gain"] for r in mine], [r["rate_h"] for r in mine], "o-", label=cell)
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_yscale("log")
        ax.set_title(f"recurrent init: {name}", fontsize=10)
        ax.set_xlabel("recurrent gain s")
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("rate per step of ||dL_T/dh_t||")
    axes[0, -1].legend(fontsize=LEGEND_FONTSIZE)
    figure.tight_layout()
    return figure
