"""One markdown report of one or more sweeps: tables, figures, configuration and environment.

``write_report(directories, output_dir)`` collects every record under ``directories`` and writes,
under ``output_dir``::

    report.md                  the report (relative links only: the folder is self-contained)
    tables/comparison.{md,tex,csv}, tables/importance.csv, tables/cost.csv, tables/best.csv,
                               tables/paired.csv (paired searches: lstm_variants.analysis.paired)
    figures/*.png, *.pdf       box plots, learning curves, best results, importance, marginals,
                               interaction heat maps
    data/trials.parquet, data/curves.parquet, data/skipped.csv

The sweep-end callback (issue 5) calls the same function, so a finished sweep and a later
``lstm-variants-analyze report SWEEP_DIR`` write the same report.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_variants.analysis.best import best_table, best_trials
from lstm_variants.analysis.collect import (
    AnalysisError,
    Collection,
    collect,
    ordered_cells,
    require_trials,
    select_studies,
)
from lstm_variants.analysis.compare import (
    check_reference_present,
    compare,
    compared_fraction,
    comparison_selection,
    markdown_table,
    share_label,
    to_markdown,
    write_tables,
)
from lstm_variants.analysis.cost import cost_table, projected_seconds
from lstm_variants.analysis.importance import (
    Importance,
    importance_by_group,
    importance_table,
    pretty,
)
from lstm_variants.analysis.paired import paired_compare, paired_markdown
from lstm_variants.atomic_files import write_table_atomic, write_text_atomic
from lstm_variants.cell_label import cell_name
from lstm_variants.durations import format_duration
from lstm_variants.records import path_list

MAX_SKIPPED_LISTED = 20
PROJECTED_TRIALS = 200  # Greff et al. (2017): 200 trials per variant and dataset
PAIRED_FRACTIONS = (1.0, 0.5)  # the paired comparison over all draws and over the better half


def recorded_reference(trials: pd.DataFrame, default: str = "vanilla") -> str:
    """The ``reference_cell`` the trials' studies were run with, if they agree; else ``default``.

    A Jozefowicz or forget-bias sweep compares against 'lstm', Greff's against 'vanilla': the
    analysis commands take the study's own choice unless ``--reference`` names another.
    """
    configs = trials["config_json"] if "config_json" in trials else []
    # Only names count: an edited record's list or number there names no cell (and a list
    # cannot be a set member).
    names = (json.loads(text).get("reference_cell") for text in configs)
    named = {name for name in names if isinstance(name, str) and name}
    return named.pop() if len(named) == 1 else default


def reference_label(trials: pd.DataFrame, reference: str | None) -> str | None:
    """``reference``, or where the trials have that cell only built with options, its first
    label in the canonical order (``cell_label``: ``vanilla (forget_bias=0.0)`` for 'vanilla'
    in a study of ``-m '+cell.options.forget_bias=0.0,1.0'``)."""
    cells = ordered_cells(trials["cell"].astype(str))
    if reference is None or reference in cells:
        return reference
    return next((label for label in cells if cell_name(label) == reference), reference)


def resolve_reference(trials: pd.DataFrame, reference: str | None) -> tuple[str, str | None]:
    """(reference cell to use, a note if it had to change).

    The requested one if any dataset has a usable trial of it; else that cell built with options
    (``reference_label``); else the first cell with one in the canonical order (so a Jozefowicz
    sweep without V still gets a table, against 'lstm').
    The study summary (``lstm_variants.sweep``) and the report both choose here, so they agree.
    """
    usable = trials[trials["usable"]] if "usable" in trials and trials["usable"].any() else trials
    cells = ordered_cells(usable["cell"].astype(str))
    if reference in cells:
        return reference, None
    labelled = reference_label(usable, reference)
    if labelled in cells:
        note = f"reference cell {reference!r} has trials only with options here; compared against"
        return labelled, f"{note} {labelled!r}"
    chosen = cells[0]
    present = reference in set(trials["cell"].astype(str))
    why = "has no usable trial here" if present else "is not in these sweeps"
    note = f"reference cell {reference!r} {why}; compared against {chosen!r}"
    return chosen, note if reference else None


def _given_options(**values: Any) -> list[str]:
    """The command-line options of ``write_report``'s settings that differ from its defaults
    (None: not given), for the report's "Regenerate with" line."""
    defaults = inspect.signature(write_report).parameters
    return [
        f"--{name} {value}"
        for name, value in values.items()
        if value is not None and value != defaults[name].default
    ]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1} (lists kept as values)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def config_summary(trials: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """(settings shared by every trial, one row per setting that varies: distinct values, range)."""
    configs = [flatten(json.loads(text)) for text in trials["config_json"]]
    keys = sorted(set().union(*configs)) if configs else []
    shared, varying = {}, []
    for key in keys:
        values = [json.dumps(c.get(key), sort_keys=True, default=str) for c in configs]
        distinct = sorted(set(values))
        if len(distinct) == 1:
            shared[key] = configs[0].get(key)
            continue
        numbers = pd.to_numeric(pd.Series([c.get(key) for c in configs]), errors="coerce")
        described = (
            f"{numbers.min():.6g} .. {numbers.max():.6g}"
            if numbers.notna().all()
            else ", ".join(json.loads(v) if v.startswith('"') else v for v in distinct[:6])
            + (" ..." if len(distinct) > 6 else "")
        )
        varying.append({"key": key, "distinct": len(distinct), "values": described})
    return shared, pd.DataFrame(varying, columns=["key", "distinct", "values"])


def environment_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """The distinct environments (versions, devices, commit) with how many trials ran on each."""
    environments = trials["environment_json"].map(json.loads)
    # Where a trial ran, not what with: a study's pinned jobs would otherwise split every row.
    rows = pd.DataFrame(list(environments)).drop(columns=["host", "cpu_cores"], errors="ignore")
    if rows.empty:
        return rows
    rows = rows.astype(str)
    return rows.value_counts().rename("trials").reset_index()


def _figure(paths: dict[str, list[Path]], key: str, output_dir: Path, caption: str) -> str:
    if key not in paths:
        return ""
    png = next(p for p in paths[key] if p.suffix == ".png")
    pdf = next((p for p in paths[key] if p.suffix == ".pdf"), None)
    link = f" ([PDF]({pdf.relative_to(output_dir).as_posix()}))" if pdf else ""
    return f"![{caption}]({png.relative_to(output_dir).as_posix()})\n\n*{caption}*{link}\n"


def _frame_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    def text(value: Any) -> str:
        if isinstance(value, float):
            return "–" if not math.isfinite(value) else f"{value:.{digits}f}"
        return str(value)

    rows = [[text(v) for v in row] for row in frame.itertuples(index=False)]
    return markdown_table([str(c) for c in frame.columns], rows)


def uninformative_reason(r2: float) -> str | None:
    """Why a forest with out-of-bag R² ``r2`` explains nothing (its shares are then noise), or
    None where it explains something."""
    if math.isfinite(r2) and r2 > 0:
        return None
    if math.isfinite(r2):
        return f"its out-of-bag R² is {r2:.2f}, no better than predicting the mean"
    return "too few trials (under 10) to measure how well it predicts"


def _surrogate_warning(r2: float) -> list[str]:
    """A warning paragraph where the forest explains nothing: its shares then describe noise."""
    why = uninformative_reason(r2)
    if why is None:
        return []
    return [
        f"**Not informative: the forest does not predict the test metric ({why}), so the shares "
        "below are noise, not the hyperparameters' effects. Read them only after more trials.**",
        "",
    ]


def _importance_section(result: Importance, figures: dict, output_dir: Path) -> list[str]:
    slug = "_".join(result.group.values()) or "all"
    rows = [
        [pretty(r.parameter), f"{100 * r.fraction:.1f} %", f"± {100 * r.fraction_std:.1f}"]
        for r in result.main.itertuples()
    ]
    rows += [
        [
            f"{pretty(r.parameter_a)} x {pretty(r.parameter_b)}",
            f"{100 * r.fraction:.1f} %",
            f"± {100 * r.fraction_std:.1f}",
        ]
        for r in result.pairs.head(5).itertuples()
    ]
    lines = [
        f"### Hyperparameter importance: {result.title}",
        "",
        f"Functional ANOVA of the test metric on a random-forest surrogate ({result.trials} trials"
        f" with a result, {result.excluded} without; forest out-of-bag R² "
        f"{result.surrogate.r2_out_of_bag:.2f}). Share of variance explained by each "
        "hyperparameter and pair (mean ± std over trees). Scales: "
        + ", ".join(
            f"{pretty(n)} {s}"
            for n, s in zip(result.surrogate.names, result.surrogate.scales, strict=True)
        )
        + ".",
        "",
        *_surrogate_warning(result.surrogate.r2_out_of_bag),
        markdown_table(["term", "share", "std"], rows),
        "",
        _figure(figures, f"importance_{slug}", output_dir, f"Variance shares, {result.title}"),
        _figure(
            figures,
            f"marginals_{slug}",
            output_dir,
            f"Marginal predicted test metric, mean ± std over trees, {result.title}",
        ),
        _figure(
            figures,
            f"interaction_{slug}",
            output_dir,
            f"Interaction heat map (predicted test metric), {result.title}",
        ),
    ]
    return lines


def _cost_section(cost: pd.DataFrame, projected_trials: int) -> list[str]:
    if cost.empty:
        return []
    shown = cost.assign(
        wall=cost["wall_seconds"].map(format_duration),
        per_trial=cost["seconds_per_trial"].map(lambda s: f"{s:.1f}"),
        per_epoch=cost["seconds_per_trial_epoch"].map(lambda s: f"{s:.3f}"),
    )[
        [
            "dataset",
            "cell",
            "trials",
            "trial_epochs",
            "wall",
            "per_trial",
            "per_epoch",
            "device_kind",
        ]
    ]
    shown.columns = [
        "dataset",
        "cell",
        "trials",
        "trial-epochs",
        "wall time",
        "s / trial",
        "s / trial-epoch",
        "device",
    ]
    projection = projected_seconds(cost, projected_trials)
    lines = [
        "## Cost",
        "",
        "Each trial's share of its population's wall time (initialisation, compilation, epochs and "
        "test; process start and data loading excluded), summed per cell.",
        "",
        _frame_markdown(shown),
        "",
    ]
    for dataset, seconds in projection.items():
        rows = cost[cost["dataset"] == dataset]
        epochs = rows["trial_epochs"].sum() / rows["trials"].sum()
        lines.append(
            f"At these rates, {projected_trials} trials of each of the {len(rows)} cells on "
            f"{dataset} would take **{format_duration(seconds)}** on this device, if they ran as "
            f"many epochs as these did ({epochs:.1f} per trial on average); the time grows with "
            "the epochs (a longer run is mostly epochs, s / trial-epoch above)."
        )
    return lines + [""]


def selection_sentence(comparison: pd.DataFrame) -> str:
    """Which trials the comparison summarises: Greff's best fraction, or all of them."""
    fraction = compared_fraction(comparison.iloc[0])
    if fraction >= 1:
        return "Every usable trial of each cell."
    return (
        f"{share_label(fraction).capitalize()}: the trials with the lowest validation metric "
        "(Greff et al. 2017)."
    )


def render_report(
    collection: Collection,
    comparison: pd.DataFrame,
    importances: Sequence[Importance],
    figures: dict[str, list[Path]],
    output_dir: Path,
    reference: str,
    notes: Sequence[str] = (),
    cost: pd.DataFrame | None = None,
    projected_trials: int = PROJECTED_TRIALS,
    paired: pd.DataFrame | None = None,
    best: pd.DataFrame | None = None,
    studies: Sequence[str] | None = None,
    pool_studies: bool = False,
    alpha: float = 0.05,
    family: str = "dataset",
    options: Sequence[str] = (),
) -> str:
    """The markdown text of the report (links relative to ``output_dir``)."""
    trials = collection.trials
    lines = [
        "# Study report",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from "
        + ", ".join(f"`{d}`" for d in collection.directories)
        + ".",
        "",
        f"**{collection.summary()}.** Studies: "
        + ", ".join(sorted(trials["study"].astype(str).unique()))
        + ". Reference cell: "
        + f"`{reference}`.",
        "",
    ]
    lines += [f"> Note: {note}" for note in notes]
    if collection.skipped or collection.duplicates:
        lines += ["", "## Skipped records", ""]
        listed = collection.skipped[:MAX_SKIPPED_LISTED]
        lines += [f"- `{path}`: {reason}" for path, reason in listed]
        if len(collection.skipped) > len(listed):
            lines.append(
                f"- ... and {len(collection.skipped) - len(listed)} more (data/skipped.csv)"
            )
        if collection.duplicates:
            other = collection.duplicates_with_other_results()
            lines.append(
                f"- {len(collection.duplicates)} duplicate trial(s) kept once"
                + (f", {other} of them with other results than the record kept" if other else "")
                + " (data/skipped.csv names each)"
            )
    lines += [
        "",
        "## Comparison of cells",
        "",
        selection_sentence(comparison) + " Bold: significantly better or worse than the",
        f"reference (adjusted p < {alpha:g}; tests corrected together: "
        + ("each dataset's" if family == "dataset" else "the whole table's")
        + ").",
        "",
        to_markdown(comparison),
    ]
    if paired is not None and not paired.empty:
        lines += [
            "",
            "### Paired comparison (same hyperparameter draws)",
            "",
            "Draw k of the random search gave every cell the same hyperparameters and seed (in a"
            " rerun study: seed k of a draw that the cells share), so d = metric (cell) - metric"
            " (reference) on the same draw isolates the cell. Wilcoxon signed-rank"
            " test over draws, Holm-corrected per dataset; median d with a bootstrap CI; negative"
            " d: the cell is better. Bold: significant. Once over all draws, once over the better"
            " half (ranked by the mean validation result of the pair: draws where neither network"
            " learned much say little about the cells).",
            "",
            paired_markdown(paired),
            "",
        ]
    for dataset in comparison["dataset"].unique():
        lines += [
            _figure(figures, f"box_{dataset}", output_dir, f"Test metric per cell, {dataset}"),
            _figure(figures, f"curves_{dataset}", output_dir, f"Learning curves, {dataset}"),
        ]
    if best is not None and not best.empty:
        lines += [
            "### Best trial per cell and task",
            "",
            "As Jozefowicz et al. (2015) report: each cell's trial with the lowest validation"
            " metric, and its test metric (star: the task's lowest); accuracy where the task"
            " scores whole answers. The chosen trials are in `tables/best.csv`.",
            "",
            _frame_markdown(best_table(best).reset_index()),
            "",
        ]
    lines.append(_figure(figures, "best_results", output_dir, "Best test result per cell and task"))
    lines += ["## Hyperparameters", ""]
    if not importances:
        lines.append("Too few trials with a result for a functional ANOVA (at least 8 needed).")
    for result in importances:
        lines += _importance_section(result, figures, output_dir)
    if cost is not None:
        lines += _cost_section(cost, projected_trials)
    shared, varying = config_summary(trials)
    lines += [
        "## Configuration",
        "",
        "Settings that vary across trials:",
        "",
        _frame_markdown(varying) if len(varying) else "(none)",
        "",
        "Settings shared by every trial:",
        "",
        "```json",
        json.dumps(shared, indent=1, sort_keys=True, default=str),
        "```",
        "",
        "## Environment",
        "",
        _frame_markdown(environment_summary(trials)),
        "",
        "## Files",
        "",
        "- tables: `tables/comparison.md`, `.tex`, `.csv`; `tables/importance.csv`; "
        "`tables/cost.csv`; `tables/best.csv`; `tables/paired.csv` (paired searches)",
        "- data: `data/trials.parquet` (one row per trial), `data/curves.parquet`, "
        "`data/skipped.csv`",
        "- figures: `figures/` (PNG and PDF)",
        "",
        "Regenerate with `lstm-variants-analyze report "
        + " ".join(collection.directories)
        + f" --out {output_dir.as_posix()} --reference {reference}"
        + "".join(f" --study {name}" for name in studies or ())
        + (" --pool-studies" if pool_studies else "")
        + "".join(f" {option}" for option in options)
        + "`.",
        "",
    ]
    return "\n".join(lines)


def check_some_usable(trials: pd.DataFrame, directories: Sequence[str | Path]) -> None:
    """Raise ``AnalysisError`` when no trial has a result to compare (all diverged or unfinished)."""
    if not trials["usable"].any():
        raise AnalysisError(
            f"none of the {len(trials)} trial(s) under {', '.join(map(str, directories))} has a "
            "result (all diverged before their first validation, or none finished)"
        )


# In a report's folder: what a study's report was made from (``sweep.report_inputs``).
MADE_FROM_FILE = ".made_from"
# In a report's folder: the files the report wrote, one path (relative to the folder) per line.
FILES_FILE = ".files"


def report_files(output_dir: Path) -> list[Path] | None:
    """The files the report in ``output_dir`` wrote (``FILES_FILE``); None if it does not say.
    Only paths inside the folder count: an edited list must not name a file elsewhere."""
    folder = Path(output_dir)
    try:
        listed = (folder / FILES_FILE).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    paths = [folder / line for line in listed if line]
    return [path for path in paths if path.resolve().is_relative_to(folder.resolve())]


def report_is_whole(output_dir: Path) -> bool:
    """Whether every file the report in ``output_dir`` wrote is still there (a figure or table
    deleted since leaves a link in report.md that leads nowhere)."""
    files = report_files(output_dir)
    return files is not None and all(path.is_file() for path in files)


def write_report(
    directories: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    reference: str | None = None,
    *,
    fraction: float | None = None,
    sample: str | None = None,
    test: str = "permutation",
    correction: str = "holm",
    family: str = "dataset",
    alpha: float = 0.05,
    trees: int = 32,
    resamples: int = 2000,
    permutations: int = 2000,
    projected_trials: int = PROJECTED_TRIALS,
    studies: Sequence[str] | None = None,
    pool_studies: bool = False,
    status: Callable[[str], None] | None = None,
    strict_reference: bool = False,
    collected: Collection | None = None,
) -> Path:
    """Write the report of the sweeps in ``directories`` into ``output_dir``; return report.md.

    Args:
      directories: sweep roots (or any folders holding ``**/records/*.json``), one or several.
      output_dir: where the report, tables, figures and data go (created).
      reference: the cell every other is tested against (None: the studies' own
        ``reference_cell``, ``recorded_reference``); if no sweep has it, the first cell in the
        canonical order is used and the report says so.
      fraction, sample: see ``compare.compare``; None: the study's own
        (``compare.comparison_selection``: best 10 %, or every trial of a rerun).
      test, correction, family, alpha, resamples, permutations: see ``compare.compare``
        (``alpha`` is the paired comparison's level too).
      trees: random-forest size of the importance analysis.
      projected_trials: trials per cell the cost section projects the measured rates to.
      studies, pool_studies: which studies to report, and whether several studies on one dataset
        may be compared as one sample (``collect.select_studies``).
      status: called with a short line before each step (progress display).
      strict_reference: a ``reference`` that no sweep has is an error, not replaced (the
        command line's ``--reference``, where it is a typo).
      collected: the records of ``directories`` as the caller has collected them already
        (``collect``), so that they are not read again (a study's summary, at 5,400 records).

    Raises:
      AnalysisError: no records under ``directories``, or none with a usable result; studies
        that ``collect.select_studies`` refuses.
    """
    say = status or (lambda line: None)
    directories = path_list(directories)  # one folder as a string is one folder
    output_dir = Path(output_dir)
    earlier = report_files(output_dir) or []
    # A study's note of what its report was made from no longer holds for this one (the
    # callback writes it again after its own report: ``sweep.current_report``).
    (output_dir / MADE_FROM_FILE).unlink(missing_ok=True)
    if collected is None:
        say("collecting records")
        collected = collect(directories, progress=status is not None)
    collection = select_studies(collected, studies, pool=pool_studies)
    trials = require_trials(collection)
    check_some_usable(trials, directories)
    if strict_reference and reference is not None:
        check_reference_present(trials, reference)
    written = list(collection.save(output_dir / "data").values())

    def write_table(name: str, table: pd.DataFrame) -> None:
        written.append(output_dir / "tables" / name)
        write_table_atomic(written[-1], table)

    chosen, note = resolve_reference(trials, reference or recorded_reference(trials))
    say("comparing cells")
    tests = dict(
        test=test,
        correction=correction,
        family=family,
        alpha=alpha,
        resamples=resamples,
        permutations=permutations,
    )
    # The options as given, for the "Regenerate with" line; a study's own choice is not one.
    options = _given_options(fraction=fraction, sample=sample, trees=trees, **tests)
    fraction, sample = comparison_selection(trials, fraction, sample)
    comparison = compare(trials, reference=chosen, fraction=fraction, sample=sample, **tests)
    written += write_tables(comparison, output_dir / "tables").values()
    say("functional ANOVA")
    importances = importance_by_group(trials, trees=trees)
    if importances:
        write_table("importance.csv", importance_table(importances))
    say("drawing figures")
    from lstm_variants.analysis.plots import all_figures  # matplotlib: only for a report

    figures = all_figures(
        trials, collection.curves, comparison, importances, output_dir / "figures", chosen
    )
    written += [path for paths in figures.values() for path in paths]
    cost = cost_table(trials)
    write_table("cost.csv", cost)
    best = best_trials(trials)
    write_table("best.csv", best)
    paired = pd.concat(
        [
            paired_compare(
                trials, reference=chosen, alpha=alpha, resamples=resamples, fraction=share
            )
            for share in PAIRED_FRACTIONS
        ],
        ignore_index=True,
    )
    if not paired.empty:
        write_table("paired.csv", paired)
    report = output_dir / "report.md"
    text = render_report(
        collection,
        comparison,
        importances,
        figures,
        output_dir,
        chosen,
        [note] if note else [],
        cost=cost,
        projected_trials=projected_trials,
        paired=paired,
        best=best,
        studies=studies,
        pool_studies=pool_studies,
        alpha=alpha,
        family=family,
        options=options,
    )
    write_text_atomic(report, text)
    written.append(report)
    # An earlier report's file that this one did not write again (the paired table of a study
    # that is no longer paired, a figure of a dataset no longer there) would be read as this
    # report's: only files an earlier report listed go, never the user's.
    kept = {path.resolve() for path in written}
    for path in earlier:
        if path.resolve() not in kept:
            path.unlink(missing_ok=True)
    listing = sorted(str(path.relative_to(output_dir)) for path in written)
    write_text_atomic(output_dir / FILES_FILE, "\n".join(listing) + "\n")
    return report
