"""Tables of the studies as Markdown and JSON, and the figures, written to one folder."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstm_variants.atomic_files import write_text_atomic
from lstm_variants.diagnostics import plots
from lstm_variants.diagnostics.studies import rate_table
from lstm_variants.records import write_json_atomic


def format_number(value: Any) -> str:
    """A table cell: 4 significant digits for floats, '-' for NaN or None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return (
            f"{value:.3e}"
            if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4)
            else f"{value:.4g}"
        )
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of ``rows`` with (key, header) ``columns``."""
    head = "| " + " | ".join(header for _, header in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(format_number(row.get(k)) for k, _ in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


RATE_COLUMNS = [
    ("cell", "cell"),
    ("state", "model"),
    ("rate_h", "rate/step h"),
    ("decades_h", "decades/100 steps h"),
    ("ratio_100_h", "g_h(100)/g_h(1)"),
    ("rate_c", "rate/step c"),
    ("decades_c", "decades/100 steps c"),
    ("ratio_100_c", "g_c(100)/g_c(1)"),
    ("valid_metric", "best valid"),
    ("metric", "metric"),
    ("stopped", "stopped"),
]
# The figures a report may write; those this run does not write are removed, so that a reused
# out_dir shows no figure of an earlier run beside this run's summary.
FIGURES = ("gradient_flow.png", "gate_saturation_*.png", "forget_gate.png", "init_study.png")
INIT_COLUMNS = [("cell", "cell"), ("initializer", "recurrent init"), ("gain", "gain"),
                ("rate_h", "rate/step h"), ("rate_c", "rate/step c")]  # fmt: skip
CLIP_COLUMNS = [("cell", "cell"), ("gain", "gain"), ("clip_norm", "clip_norm"), ("rate_h_fresh", "rate h, fresh"),
                ("rate_h_trained", "rate h, trained"), ("best_valid", "best valid"),
                ("epochs_run", "epochs"), ("stopped", "stopped")]  # fmt: skip


def gate_rows(cell_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (cell, state, gate): mean saturation fractions and the long-memory units."""
    out = []
    for row in cell_rows:
        report = row["gates"]
        for gate, sat in report.saturation.items():
            out.append(
                {
                    "cell": row["cell"],
                    "state": row["state"],
                    "gate": gate,
                    "mean_left": float(sat.left.mean()),
                    "mean_right": float(sat.right.mean()),
                }
            )
    return out


def long_memory_lines(cell_rows: Sequence[Mapping[str, Any]], shown: int = 8) -> list[str]:
    """One line per (cell, state) listing its long-memory units (most persistent first)."""
    lines = []
    for row in cell_rows:
        report = row["gates"]
        if report.retention_values is None:
            continue
        if report.long_memory is None:
            lines.append(
                f"- {row['cell']} ({row['state']}): not counted: its retention is not finite "
                "(the network diverged)"
            )
            continue
        units = ", ".join(f"{j} ({share:.0%})" for j, share in report.long_memory[:shown])
        more = (
            f" and {len(report.long_memory) - shown} more"
            if len(report.long_memory) > shown
            else ""
        )
        lines.append(
            f"- {row['cell']} ({row['state']}): {len(report.long_memory)} of {report.units} units"
            + (f": {units}{more}" if units else "")
        )
    return lines


def write_report(
    out_dir: Path,
    cell_rows: Sequence[Mapping[str, Any]],
    init_rows: Sequence[Mapping[str, Any]] = (),
    clip_rows: Sequence[Mapping[str, Any]] = (),
    header: str = "",
    long_memory_mostly: float = 0.5,
) -> list[Path]:
    """Write summary.md, results.json and the figures to ``out_dir``; return the paths written.

    ``long_memory_mostly`` is the fraction of the steps the long-memory units were counted with
    (``diagnose.long_memory_mostly``), which their section's heading states.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    rates = rate_table(cell_rows)
    sections = [
        header,
        "## Gradient flow: fitted rate per step\n",
        markdown_table(rates, RATE_COLUMNS),
    ]
    gates = gate_rows(cell_rows)
    if gates:
        gate_columns = [("cell", "cell"), ("state", "model"), ("gate", "gate"),
                        ("mean_left", "mean fraction < 0.1"), ("mean_right", "mean fraction > 0.9")]  # fmt: skip
        sections += [
            "\n## Gate saturation (mean over units)\n",
            markdown_table(gates, gate_columns),
        ]
    lines = long_memory_lines(cell_rows)
    if lines:
        sections += [
            f"\n## Long-memory units (retention > 0.9 on more than {long_memory_mostly:.0%} of "
            "the steps)\n",
            "\n".join(lines),
        ]
    if init_rows:
        sections += [
            "\n## Initialisation study (fresh models)\n",
            markdown_table(init_rows, INIT_COLUMNS),
        ]
    if clip_rows:
        sections += [
            "\n## Clipping study (brief training)\n",
            markdown_table(clip_rows, CLIP_COLUMNS),
        ]
    summary = out_dir / "summary.md"
    write_text_atomic(summary, "\n".join(s for s in sections if s) + "\n")
    written.append(summary)

    results = {
        "rates": rates,
        "gates": gates,
        "long_memory": {f"{r['cell']}/{r['state']}": r["gates"].long_memory for r in cell_rows},
        "profiles": {
            f"{r['cell']}/{r['state']}": {k: v.tolist() for k, v in r["flow"].profiles.items()}
            for r in cell_rows
        },
        "init_study": [{k: v for k, v in r.items() if k != "profile_h"} for r in init_rows],
        "clipping_study": list(clip_rows),
    }
    path = out_dir / "results.json"
    write_json_atomic(path, json.loads(json.dumps(results, default=float)))
    written.append(path)

    written.append(plots.save(plots.gradient_flow_figure(cell_rows), out_dir / "gradient_flow.png"))
    for state in dict.fromkeys(r["state"] for r in cell_rows):
        if any(r["gates"].saturation for r in cell_rows if r["state"] == state):
            figure = plots.saturation_figure(cell_rows, state)
            written.append(plots.save(figure, out_dir / f"gate_saturation_{state}.png"))
    if any(r["gates"].retention_values is not None for r in cell_rows):
        written.append(plots.save(plots.retention_figure(cell_rows), out_dir / "forget_gate.png"))
    if init_rows:
        written.append(plots.save(plots.init_study_figure(init_rows), out_dir / "init_study.png"))
    for pattern in FIGURES:
        for stale in set(out_dir.glob(pattern)) - set(written):
            stale.unlink()
    return written
