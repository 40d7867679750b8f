"""The `lstm-variants-data` command: which datasets there are, and what one of them holds.

    lstm-variants-data list [--data-dir DIR]
        one row per registered dataset: name, target, metric, availability ('generated',
        'local <path>', 'corrupt: <file that fails its sha256 check, and the fix>',
        'downloadable', 'user file (option path)' or 'missing: <what to obtain>')
    lstm-variants-data describe NAME [--option key=value ...] [--batch-size B] [--data-dir DIR]
        loads the dataset (downloading it if needed) and prints `SequenceDataset.describe()`:
        sizes, input and output kind, metric, each split's sizes and its padding fraction
        (whole split, random batches of B, batches bucketed by length)
    lstm-variants-data fetch [NAME ...] [--data-dir DIR]
        downloads and checks the files of the named datasets (default: every downloadable one),
        e.g. on a login node before jobs run where there is no network; a line per dataset

Option values are read as YAML scalars (`T=200`, `download=false`), except that an option taking
text takes it as written (`path=2024` is the file named 2024, `variant=6b`). An unknown
dataset or option, a bad option value, or a dataset that cannot be loaded (missing file, bad
checksum, malformed file) ends with one `lstm-variants-data: error: ...` line and exit status 2,
as bad input does for `lstm-variants`. A malformed command line (`-o T` without a value) gets
argparse's usage before that line.
"""

from __future__ import annotations

import argparse
import inspect
import sys

import yaml

from lstm_variants.argument_parser import ArgumentParser
from lstm_variants.config_values import rule_of_type
from lstm_variants.data import (
    DATASETS,
    INFO,
    DataError,
    availability,
    dataset_options,
    load_dataset,
    padding_report,
)
from lstm_variants.data.cache import resolve_data_dir
from lstm_variants.errors import nearest_hint
from lstm_variants.interrupt import ending_interrupts, quiet_when_reader_leaves
from lstm_variants.version import VersionAction

PROG = "lstm-variants-data"
USAGE_ERROR = 2


def parse_option(text: str) -> tuple[str, str]:
    """`'key=value'` -> `(key, value)`, the value as written; `option_value` reads it."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def option_value(name: str, key: str, text: str) -> object:
    """The value of option `key` of dataset `name` written as `text`.

    An option that takes text (a path, a variant, a split) takes `text` as written: YAML would
    read `path=2024` as the integer 2024, `path=yes` as true and `path=a: b.txt` as a mapping,
    none of them the file named. Any other option reads `text` as a YAML scalar (`T=200`,
    `download=false`).
    """
    rule = rule_of_type(inspect.signature(DATASETS[name]).parameters[key].annotation)
    if rule is not None and rule.kind == "text":
        return text
    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Plain left-aligned columns separated by two spaces."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def list_rows(data_dir: str | None) -> list[list[str]]:
    """One row per registered dataset: name, target, metric, availability."""
    return [
        [
            name,
            INFO[name].target,
            INFO[name].metric or "(see describe)",
            availability(name, data_dir),
        ]
        for name in sorted(DATASETS)
    ]


def describe_text(name: str, options: dict, data_dir: str | None, batch_size: int) -> str:
    """The `describe` view of a loaded dataset, as lines of text."""
    data = load_dataset(name, data_dir=data_dir, **options)
    summary = data.describe()
    info = INFO[name]
    lines = [f"{name}  ({availability(name, data_dir)})"]
    for key in ("input_size", "input_kind", "output_size", "target", "target_at", "metric"):
        lines.append(f"  {key}: {summary[key]}")
    for key in ("streams", "success", "tolerance"):
        if summary[key]:
            lines.append(f"  {key}: {summary[key]}")
    if info.checksum:
        lines.append(f"  checksum: {info.checksum}")
    if options:
        lines.append("  options: " + ", ".join(f"{k}={v}" for k, v in options.items()))
    rows = []
    for split_name, split in data.splits().items():
        sizes = summary["splits"][split_name]
        padding = padding_report(split, batch_size)
        rows.append(
            [
                split_name,
                sizes["sequences"],
                sizes["steps"],
                sizes["max_length"],
                f"{sizes['mean_length']:.1f}",
                f"{padding['whole_split']:.3f}",
                f"{padding['random_batches']:.3f}",
                f"{padding['bucketed']:.3f}",
            ]
        )
    header = ["split", "sequences", "steps", "max_len", "mean_len", "pad_all"]
    header += [f"pad_random_{batch_size}", f"pad_bucketed_{batch_size}"]
    lines.append("")
    lines.append(format_table(header, rows))
    lines.append(
        "  (padding fraction: pad_all = the split padded to its longest sequence; "
        f"pad_random / pad_bucketed = batches of {batch_size}, shuffled / sorted by length)"
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="List the registered datasets, load one and describe it, or fetch their files.",
    )
    data_dir_help = (
        "directory of data files (default: $LSTM_VARIANTS_DATA_DIR, else the user cache)"
    )
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("--data-dir", default=None, help=data_dir_help)
    # Also after the command (`list --data-dir DIR`); SUPPRESS keeps one given before it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "list", parents=[after], help="every dataset: name, target, metric, availability"
    )
    describe = commands.add_parser(
        "describe", parents=[after], help="load one dataset and print its summary"
    )
    describe.add_argument("name", help=f"a dataset name: {', '.join(sorted(DATASETS))}")
    describe.add_argument(
        "--option",
        "-o",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="a loader option, e.g. T=200 or download=false (repeatable)",
    )
    describe.add_argument(
        "--batch-size", type=int, default=32, help="batch size of the padding report (default 32)"
    )
    fetch = commands.add_parser(
        "fetch",
        parents=[after],
        help="download and check datasets' files (default: every downloadable dataset)",
    )
    fetch.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="dataset names (default: every downloadable dataset)",
    )
    return parser


def fetch_datasets(names: list[str], data_dir: str | None) -> int:
    """Load each dataset (its loader downloads and checks the files); a line per dataset, and one
    error line per dataset that failed, after trying the others. Returns the exit status."""
    names = names or [name for name in sorted(DATASETS) if INFO[name].downloadable]
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        return fail(
            f"unknown dataset(s) {', '.join(unknown)}; valid datasets: {', '.join(sorted(DATASETS))}"
        )
    if any(INFO[name].files for name in names):
        try:  # a data directory that is a file: one line, not the same line for every dataset
            resolve_data_dir(data_dir)
        except DataError as error:
            return fail(str(error))
    failed = 0
    for name in names:
        if not INFO[name].files:
            print(f"{name}: {availability(name, data_dir)}, nothing to fetch")
            continue
        try:
            load_dataset(name, data_dir=data_dir)
        except DataError as error:
            failed += 1
            message = str(error)
            fail(message if message.startswith(f"{name}:") else f"{name}: {message}")
            continue
        print(f"{name}: {availability(name, data_dir)}")
    return USAGE_ERROR if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns (and, from the console script, exits with) its status.

    Ctrl-C (or kill) is one line and status 130 (143), as ``lstm-variants``, not a traceback; a
    reader that leaves early (``| head``) ends it quietly with status 141.
    """
    with (
        ending_interrupts(
            # Said of a generated dataset's drawing too, which has no download to resume.
            f"{PROG}: interrupted; run the same command again (a download resumes from its "
            ".part file)"
        ),
        quiet_when_reader_leaves(),
    ):
        return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """The command ``args`` asks for; its exit status."""
    if args.command == "list":
        try:
            rows = list_rows(args.data_dir)
        except DataError as error:  # the data directory is a file
            return fail(str(error))
        print(format_table(["name", "target", "metric", "availability"], rows))
        return 0
    if args.command == "fetch":
        return fetch_datasets(args.names, args.data_dir)
    if args.name not in DATASETS:
        return fail(
            f"unknown dataset {args.name!r}{nearest_hint(args.name, DATASETS)}; "
            f"valid datasets: {', '.join(sorted(DATASETS))}"
        )
    keys = [key for key, _ in args.option]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:  # dict() would keep the last silently
        return fail(f"option {repeated[0]} is given more than once: give each option once")
    options = dict(args.option)
    unknown = sorted(set(options) - set(dataset_options(args.name)))
    if unknown:
        valid = ", ".join(dataset_options(args.name))
        return fail(
            f"dataset {args.name!r} got unknown option(s) {', '.join(unknown)}; valid options: {valid}"
        )
    if args.batch_size < 1:
        return fail(f"--batch-size must be at least 1, got {args.batch_size}")
    options = {key: option_value(args.name, key, text) for key, text in options.items()}
    try:
        print(describe_text(args.name, options, args.data_dir, args.batch_size))
    except DataError as error:
        return fail(str(error))
    return 0


def fail(message: str) -> int:
    """Print one error line to stderr and return the usage error status."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
