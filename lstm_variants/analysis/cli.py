"""The ``lstm-variants-analyze`` command: tables, tests, importance, figures and reports of sweeps.

    lstm-variants-analyze collect    DIRS... [--out DIR]   trials.parquet, curves.parquet, skipped.csv
    lstm-variants-analyze compare    DIRS... [--out DIR] [--reference CELL] [--test permutation]
                                     [--sample top] [--correction holm] [--alpha 0.05] ...
    lstm-variants-analyze paired     DIRS... [--out DIR] [--reference CELL] [--fraction 1]
    lstm-variants-analyze importance DIRS... [--out DIR] [--by dataset|cell] [--trees 32]
    lstm-variants-analyze plots      DIRS... [--out DIR] [--reference CELL]
    lstm-variants-analyze report     DIRS... [--out DIR] [--reference CELL] [compare's options]
    lstm-variants-analyze curves     DIRS... [--out DIR] [--target 2.0]   a few runs' curves

DIRS are sweep roots or any folders holding ``**/records/*.json``. ``--out`` defaults to
``<first DIR>/analysis``. ``--study NAME`` keeps one study's records; the commands that compare
refuse two studies on one dataset unless ``--pool-studies`` (``collect.select_studies``).
``--reference`` defaults to the studies' own ``reference_cell`` (vanilla for Greff's, lstm for
Jozefowicz's), else vanilla; where the studies have none of it, the first of their cells, with
a note (as the report and the sweep summary choose). Bad input
(a missing directory, no records, an unknown reference cell or option) ends with one
``lstm-variants-analyze: error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from pandas.api.types import is_numeric_dtype
from rich.console import Console

from lstm_variants.analysis.collect import AnalysisError, collect, require_trials, select_studies
from lstm_variants.analysis.compare import (
    CORRECTIONS,
    FAMILIES,
    SAMPLES,
    TESTS,
    compare,
    comparison_selection,
    is_rerun_study,
    to_markdown,
    write_tables,
)
from lstm_variants.argument_parser import ArgumentParser
from lstm_variants.atomic_files import write_table_atomic, write_text_atomic
from lstm_variants.interrupt import ending_interrupts, quiet_when_reader_leaves
from lstm_variants.version import VersionAction

PROG = "lstm-variants-analyze"
USAGE_ERROR = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directories", nargs="+", metavar="DIR", help="sweep or output directories")
    parser.add_argument("--out", help="output directory (default: <first DIR>/analysis)")
    parser.add_argument(
        "--study",
        action="append",
        metavar="NAME",
        help="only this study's records (repeat for several; default: all)",
    )


def _pooling_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pool-studies",
        action="store_true",
        help="compare the trials of several studies on one dataset as one sample "
        "(by default that is an error: a study and its smoke run or rerun answer other questions)",
    )


def whole_number(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return value

    return parse


positive = whole_number(1)  # --trees, --permutations
count = whole_number(0)  # --resamples: 0 draws no confidence intervals


def level(text: str) -> float:
    """An ``--alpha`` value: a significance level, in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:  # nan fails too
        raise argparse.ArgumentTypeError(f"must be a level in (0, 1), e.g. 0.05, got {text!r}")
    return value


def finite(text: str) -> float:
    """A ``--target`` value: a finite number (a line at nan or inf draws nothing)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, e.g. 8.5, got {text!r}")
    return value


def share(text: str) -> float:
    """A ``--fraction`` value: a share of the trials, in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:  # nan fails too
        raise argparse.ArgumentTypeError(f"must be a share in (0, 1], e.g. 0.1, got {text!r}")
    return value


def _comparison_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference", help="cell tested against (default: the study's reference_cell)"
    )
    parser.add_argument(
        "--fraction",
        type=share,
        help="best fraction by validation (default 0.1; 1 for a rerun study, search.rerun)",
    )
    parser.add_argument(
        "--sample",
        choices=SAMPLES,
        help="compare the best fraction or all trials (default top; all for a rerun study)",
    )
    parser.add_argument(
        "--test", choices=TESTS, default="permutation", help="test behind the marker"
    )
    parser.add_argument(
        "--correction", choices=CORRECTIONS, default="holm", help="multiple-comparison correction"
    )
    parser.add_argument(
        "--family", choices=FAMILIES, default="dataset", help="tests corrected together"
    )
    parser.add_argument("--alpha", type=level, default=0.05, help="significance level (0.05)")
    parser.add_argument(
        "--resamples", type=count, default=2000, help="bootstrap resamples (0: no CIs)"
    )
    parser.add_argument(
        "--permutations", type=positive, default=2000, help="permutation-test relabellings"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Comparison tables, significance tests, hyperparameter importance, figures "
        "and reports of lstm-variants sweeps.",
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    collect_parser = commands.add_parser(
        "collect",
        help="all records into trials.parquet (the table a sweep's end writes as results.parquet)",
    )
    _common(collect_parser)
    compare_parser = commands.add_parser(
        "compare", help="Greff's table: best 10 %%, tests vs a reference"
    )
    _common(compare_parser)
    _pooling_option(compare_parser)
    _comparison_options(compare_parser)
    paired_parser = commands.add_parser(
        "paired", help="cells vs a reference on the same hyperparameter draws (Wilcoxon)"
    )
    _common(paired_parser)
    _pooling_option(paired_parser)
    paired_parser.add_argument(
        "--reference", help="cell tested against (default: the study's reference_cell)"
    )
    paired_parser.add_argument("--alpha", type=level, default=0.05, help="significance level")
    paired_parser.add_argument(
        "--fraction",
        type=share,
        default=1.0,
        help="compare the best share of draws, by the pair's mean validation result (1: all)",
    )
    paired_parser.add_argument(
        "--resamples", type=count, default=2000, help="bootstrap resamples (0: no CIs)"
    )
    importance_parser = commands.add_parser(
        "importance", help="fANOVA variance shares and marginals"
    )
    _common(importance_parser)
    _pooling_option(importance_parser)
    importance_parser.add_argument(
        "--by",
        choices=("dataset", "cell"),
        default="dataset",
        help="one analysis per dataset (cells pooled) or per dataset and cell",
    )
    importance_parser.add_argument(
        "--trees", type=positive, default=32, help="random-forest trees (32)"
    )
    importance_parser.add_argument(
        "--target", default="test_at_best", help="metric column explained"
    )
    plots_parser = commands.add_parser("plots", help="every figure, PNG and PDF")
    _common(plots_parser)
    _pooling_option(plots_parser)
    plots_parser.add_argument(
        "--reference", help="cell tested against (default: the study's reference_cell)"
    )
    plots_parser.add_argument("--trees", type=positive, default=32, help="random-forest trees (32)")
    report_parser = commands.add_parser("report", help="one self-contained markdown report")
    _common(report_parser)
    _pooling_option(report_parser)
    _comparison_options(report_parser)
    report_parser.add_argument(
        "--trees", type=positive, default=32, help="random-forest trees (32)"
    )
    curves_parser = commands.add_parser(
        "curves", help="train and valid metric per epoch of each run: curves.{png,pdf,md}"
    )
    _common(curves_parser)
    curves_parser.add_argument(
        "--target", type=finite, help="draw a horizontal line at this metric value"
    )
    return parser


def run(arguments: argparse.Namespace, console: Console) -> None:
    # An empty name reads as '.' (Path('')), whose analysis/ could be a source folder of its own.
    if any(not str(directory).strip() for directory in arguments.directories):
        raise AnalysisError("a DIR is empty; name the sweep directories, e.g. multirun/greff_jsb")
    if arguments.out is not None and not str(arguments.out).strip():
        raise AnalysisError("--out is empty; name a directory for the tables and figures")
    out = Path(arguments.out) if arguments.out else Path(arguments.directories[0]) / "analysis"
    if out.exists() and not out.is_dir():
        raise AnalysisError(f"--out {out} is a file; name a directory for the tables and figures")
    if arguments.command == "report":
        from lstm_variants.analysis.report import write_report

        with console.status("report") as status:
            path = write_report(
                arguments.directories,
                out,
                arguments.reference,
                fraction=arguments.fraction,
                sample=arguments.sample,
                test=arguments.test,
                correction=arguments.correction,
                family=arguments.family,
                alpha=arguments.alpha,
                resamples=arguments.resamples,
                permutations=arguments.permutations,
                trees=arguments.trees,
                studies=arguments.study,
                pool_studies=arguments.pool_studies,
                status=lambda line: status.update(line),
                strict_reference=True,  # a --reference given that names no cell is a typo
            )
        print(f"report: {path}")
        return
    with console.status("collecting records"):
        collection = collect(arguments.directories, progress=True)
    # collect and curves list runs, so they may mix studies; the comparisons may not, unasked.
    pool = getattr(arguments, "pool_studies", True)
    collection = select_studies(collection, arguments.study, pool=pool)
    console.print(collection.summary(), highlight=False, soft_wrap=True)
    require_trials(collection)  # none readable: one error line, which names one of them
    if collection.skipped_line() is not None:
        print(f"{PROG}: warning: {collection.skipped_line()}", file=sys.stderr)
    if arguments.command not in ("collect", "curves"):  # they list runs, results or not
        from lstm_variants.analysis.report import check_some_usable

        check_some_usable(collection.trials, arguments.directories)
    if getattr(arguments, "reference", "") is None:  # the studies' own reference cell
        from lstm_variants.analysis.report import recorded_reference, resolve_reference

        # Where the studies have none of it (a GRU-only sweep), the first cell, with a note, as
        # the report and the sweep summary choose; a --reference given is taken as given.
        recorded = recorded_reference(collection.trials)
        arguments.reference, note = resolve_reference(collection.trials, recorded)
        if note is not None:
            console.print(f"note: {note}", highlight=False, soft_wrap=True)
    if arguments.command == "collect":
        paths = collection.save(out)
        print("\n".join(f"{name}: {path}" for name, path in paths.items()))
        return
    if arguments.command == "curves":
        from lstm_variants.analysis.run_curves import (
            curves_figure,
            curves_markdown,
            curves_metric,
            metric_curves,
        )

        table = metric_curves(collection.trials, collection.curves)
        if not np.isfinite(table[["train", "valid"]].to_numpy(float)).any():
            raise AnalysisError(
                "no run here has a finite training or validation result to plot (each diverged "
                "in its first epoch, or none finished one)"
            )
        metric = curves_metric(collection.trials)
        markdown = curves_markdown(table, metric)
        print(markdown)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "curves.md", markdown + "\n")
        paths = curves_figure(table, metric, out / "curves", arguments.target)
        print("\n".join(str(path) for path in [out / "curves.md", *paths]))
        return
    if arguments.command == "compare":
        fraction, sample = comparison_selection(
            collection.trials, arguments.fraction, arguments.sample
        )
        with console.status("comparing cells"):
            table = compare(
                collection.trials,
                reference=arguments.reference,
                fraction=fraction,
                sample=sample,
                test=arguments.test,
                correction=arguments.correction,
                family=arguments.family,
                alpha=arguments.alpha,
                resamples=arguments.resamples,
                permutations=arguments.permutations,
            )
        print(to_markdown(table))
        paths = write_tables(table, out)
        print("\n".join(f"{kind}: {path}" for kind, path in paths.items()))
        return
    if arguments.command == "paired":
        from lstm_variants.analysis.paired import paired_compare, paired_markdown

        table = paired_compare(
            collection.trials,
            reference=arguments.reference,
            alpha=arguments.alpha,
            resamples=arguments.resamples,
            fraction=arguments.fraction,
        )
        others = set(collection.trials["cell"].astype(str)) - {arguments.reference}
        if table.empty and not others:
            raise AnalysisError(
                f"these records hold only the reference cell {arguments.reference!r}: paired "
                "compares other cells with it on the same draws (add their records, or choose "
                "another --reference)"
            )
        if table.empty:
            raise AnalysisError(
                f"no trial pairs with {arguments.reference!r} on the same sampled draws: "
                "run the cells with search.paired=true and the same search seed"
            )
        print(paired_markdown(table))
        out.mkdir(parents=True, exist_ok=True)
        write_table_atomic(out / "paired.csv", table)
        print(f"paired: {out / 'paired.csv'}")
        return
    from lstm_variants.analysis.importance import importance_by_group, importance_table

    target = getattr(arguments, "target", None)
    # A column of names (cell, study) has no number to explain: every trial would be left out
    # and the error would wrongly say that no group has enough trials with a result.
    if target is not None and (
        target not in collection.trials or not is_numeric_dtype(collection.trials[target])
    ):
        metrics = [c for c in ("test_at_best", "best_valid") if c in collection.trials]
        what = "not a column" if target not in collection.trials else "not a numeric column"
        raise AnalysisError(
            f"--target {target!r} is {what} of these records; use one of: " + ", ".join(metrics)
        )
    by = ("dataset",) if getattr(arguments, "by", "dataset") == "dataset" else ("dataset", "cell")
    if is_rerun_study(collection.trials):  # a few draws, each cell's own: shares of nothing random
        print(
            "warning: these records are a rerun (each cell's best draws again, with new seeds), "
            "not a random search: the variance shares only split the few rerun draws between "
            "parameters that move together; run importance on the study the rerun came from",
            file=sys.stderr,
        )
    with console.status("functional ANOVA"):
        results = importance_by_group(
            collection.trials,
            by=by,
            trees=arguments.trees,
            **({"target": arguments.target} if hasattr(arguments, "target") else {}),
        )
    if not results and arguments.command == "importance":
        raise AnalysisError("no group has 8 or more trials with a result: nothing to analyse")
    if not results:  # plots: the box plots, curves and best results need no forest
        print(
            "note: no dataset has 8 or more trials with a result: no importance, marginal or "
            "interaction figures",
            file=sys.stderr,
        )
    if arguments.command == "importance":
        table = importance_table(results)
        out.mkdir(parents=True, exist_ok=True)
        write_table_atomic(out / "importance.csv", table)
        for result in results:
            for name, curve in result.marginals.items():
                slug = "_".join(result.group.values())
                write_table_atomic(out / f"marginal_{slug}_{name.split('.')[-1]}.csv", curve)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        from lstm_variants.analysis.report import uninformative_reason

        for result in results:
            why = uninformative_reason(result.surrogate.r2_out_of_bag)
            if why:
                group = " ".join(f"{k}={v}" for k, v in result.group.items())
                print(
                    f"warning: {group}: the forest does not predict the metric ({why}): its "
                    "shares are noise, not the hyperparameters' effects",
                    file=sys.stderr,
                )
        print(f"importance: {out / 'importance.csv'}")
        return
    from lstm_variants.analysis.plots import all_figures

    with console.status("comparing cells"):
        reference = arguments.reference
        # The sample compare and report test (every trial of a rerun study), so the figures
        # hatch the cells the tables mark and the lower box panel shows the trials they compare.
        fraction, sample = comparison_selection(collection.trials)
        table = compare(
            collection.trials, reference=reference, fraction=fraction, sample=sample, resamples=0
        )
    with console.status("drawing figures"):
        written = all_figures(collection.trials, collection.curves, table, results, out, reference)
    print("\n".join(str(p) for paths in written.values() for p in paths))


def main(argv: list[str] | None = None) -> int:
    console = Console(stderr=True)
    # Ctrl-C (or kill) is one line and status 130 (143), as lstm-variants, not a traceback; a
    # reader that leaves early (| head) ends it quietly with status 141.
    with (
        ending_interrupts(f"{PROG}: interrupted; run the command again to write its output"),
        quiet_when_reader_leaves(),
    ):
        arguments = build_parser().parse_args(argv)
        try:
            run(arguments, console)
        except AnalysisError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return USAGE_ERROR
        except BrokenPipeError:  # the reader of the tables left: quiet_when_reader_leaves ends it
            raise
        except OSError as error:  # an --out that cannot be created or written
            where = f" {error.filename}" if error.filename else ""
            print(f"{PROG}: error: cannot write{where}: {error.strerror or error}", file=sys.stderr)
            return USAGE_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
