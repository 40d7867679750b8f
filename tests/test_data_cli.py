"""The `lstm-variants-data` command: list, describe, errors; and the padding report it prints."""

import dataclasses
import hashlib

import numpy as np
import pytest

from lstm_variants.data import (
    DATASETS,
    Split,
    availability,
    length_buckets,
    loadable_here,
    music,
    padding_fraction,
    padding_report,
)
from lstm_variants.data.cli import main


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_VARIANTS_DATA_DIR", str(tmp_path))
    return tmp_path


def test_list_shows_every_dataset_with_target_metric_availability(
    empty_data_dir, capsys, monkeypatch
):
    payload = b"present"
    (empty_data_dir / "jsb_chorales.pickle").write_bytes(payload)
    pinned = dataclasses.replace(
        music.SOURCES["jsb_chorales"], sha256=hashlib.sha256(payload).hexdigest()
    )
    monkeypatch.setitem(music.SOURCES, "jsb_chorales", pinned)
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "target", "metric", "availability"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == set(DATASETS)
    assert rows["adding"].split()[1:] == ["regression", "mse", "generated"]
    assert rows["copy_memory"].split()[1:] == ["categorical", "cross_entropy", "generated"]
    assert rows["jsb_chorales"].split()[1:] == [
        "multilabel",
        "nll_per_step",
        "local",
        str(empty_data_dir / "jsb_chorales.pickle"),
    ]
    assert rows["nottingham"].split()[-1] == "downloadable"
    assert "missing: TIMIT (LDC93S1" in rows["timit"]


def test_list_says_a_file_that_fails_its_checksum_is_corrupt_not_local(empty_data_dir, capsys):
    """A truncated JSB pickle (published sha256) and a PTB character file changed since its
    first use (recorded sha256) are there but would be refused: not 'local'."""
    good = b"a b _ c\n"
    for split in ("train", "valid", "test"):
        path = empty_data_dir / f"ptb.char.{split}.txt"
        path.write_bytes(good)
        (empty_data_dir / f"ptb.char.{split}.txt.sha256").write_text(
            hashlib.sha256(good).hexdigest() + "\n"
        )
    assert availability("ptb_char", empty_data_dir) == f"local {empty_data_dir}"
    (empty_data_dir / "ptb.char.valid.txt").write_bytes(good[:3])
    (empty_data_dir / "jsb_chorales.pickle").write_bytes(b"\x80\x02}q\x00(X\x05")
    assert main(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    jsb = empty_data_dir / "jsb_chorales.pickle"
    assert (
        f"corrupt: {jsb} is there but does not match its published sha256" in rows["jsb_chorales"]
    )
    assert "run `lstm-variants-data fetch jsb_chorales`" in rows["jsb_chorales"]
    record = empty_data_dir / "ptb.char.valid.txt.sha256"
    assert f"does not match the sha256 recorded in {record}" in rows["ptb_char"]
    assert "local" not in rows["jsb_chorales"] + rows["ptb_char"]
    # Loading it needs no download: a check before jobs still loads it and reports the file.
    assert loadable_here("jsb_chorales", empty_data_dir)


def test_list_says_a_directory_in_a_data_file_s_place_is_corrupt_not_downloadable(
    empty_data_dir, capsys
):
    """No loader downloads over it; each says it cannot read it."""
    (empty_data_dir / "jsb_chorales.pickle").mkdir()
    (empty_data_dir / "timit" / "train.npz").mkdir(parents=True)
    for split in ("valid", "test"):
        (empty_data_dir / "timit" / f"{split}.npz").write_bytes(b"")
    assert main(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    jsb = empty_data_dir / "jsb_chorales.pickle"
    assert f"corrupt: {jsb} is a directory, not the data file; delete it" in rows["jsb_chorales"]
    timit = empty_data_dir / "timit" / "train.npz"
    assert f"corrupt: {timit} is a directory, not the data file; replace it" in rows["timit"]


def test_describe_prints_sizes_and_padding(capsys):
    status = main(
        [
            "describe",
            "adding",
            "-o",
            "T=20",
            "-o",
            "n_train=64",
            "--option",
            "n_valid=8",
            "-o",
            "n_test=8",
            "--batch-size",
            "8",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert out.startswith("adding  (generated)")
    assert "metric: mse" in out and "success: abs_error" in out and "tolerance: 0.04" in out
    assert "options: T=20, n_train=64, n_valid=8, n_test=8" in out
    table = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.split()[:1] in (["train"], ["valid"], ["test"])
    }
    assert table["train"][:4] == ["train", "64", table["train"][2], "22"]
    whole, random, bucketed = map(float, table["train"][5:8])
    assert 0 <= bucketed <= random <= whole < 0.1
    assert "pad_bucketed_8" in out


@pytest.mark.parametrize("filename", ["2024", "yes", "notes: draft.txt"])
def test_describe_takes_a_text_option_as_written(tmp_path, monkeypatch, capsys, filename):
    """YAML read these as 2024, true and a mapping, refused as not a string; the advice for
    'yes' even named another file ('true'), in the training command's syntax."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / filename).write_text("to be or not to be " * 500)
    assert main(["describe", "text_file", "-o", f"path={filename}", "-o", "streams=2"]) == 0
    out = capsys.readouterr().out
    assert f"options: path={filename}, streams=2" in out


def test_describe_yaml_option_values(capsys):
    assert (
        main(
            [
                "describe",
                "temporal_order",
                "-o",
                "variant=6b",
                "-o",
                "n_train=4",
                "-o",
                "n_valid=4",
                "-o",
                "n_test=4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "output_size: 8" in out and "options: variant=6b" in out
    assert (
        main(
            [
                "describe",
                "copy_memory",
                "-o",
                "blank_targets=true",
                "-o",
                "delay=5",
                "-o",
                "n_train=2",
                "-o",
                "n_valid=2",
                "-o",
                "n_test=2",
            ]
        )
        == 0
    )
    assert "input_kind: tokens" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (
            ["describe", "foo"],
            2,
            "lstm-variants-data: error: unknown dataset 'foo'; valid datasets: adding, ",
        ),
        (
            ["describe", "jsb_chorale"],
            2,
            "unknown dataset 'jsb_chorale' (did you mean jsb_chorales?); valid datasets: adding, ",
        ),
        (["describe", "adding", "-o", "X=1"], 2, "unknown option(s) X; valid options: T, n_train"),
        (["describe", "adding", "--batch-size", "0"], 2, "--batch-size must be at least 1, got 0"),
        (["describe", "timit"], 2, "timit is licensed: obtain TIMIT"),
        (["describe", "adding", "-o", "T=3"], 2, "T must be at least 11 (the first mark is "),
        (["describe", "adding", "-o", "seed=-1"], 2, "adding: seed must be at least 0, got -1"),
        (["describe", "arithmetic", "-o", "max_digits=19"], 2, "max_digits must lie in [1, 18]"),
        (
            ["describe", "text_file", "-o", "path=123"],
            2,
            "text_file: 123 is not a file (option `path`)",
        ),
        (
            ["describe", "iam_online", "-o", "num_classes=abc"],
            2,
            "num_classes of 'iam_online' must be an integer (or null: the default), got 'abc'",
        ),
        (["describe", "adding", "-o", "T=abc"], 2, "T of 'adding' must be an integer, got 'abc'"),
    ],
)
def test_errors_are_one_line(empty_data_dir, capsys, argv, status, message):
    assert main(argv) == status
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_data_directory_goes_before_or_after_the_command(tmp_path, capsys):
    (tmp_path / "jsb_chorales.pickle").write_bytes(b"not the real file")
    for argv in (["--data-dir", str(tmp_path), "list"], ["list", "--data-dir", str(tmp_path)]):
        assert main(argv) == 0
        assert f"corrupt: {tmp_path / 'jsb_chorales.pickle'}" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["list", "fetch"])  # fetch said it once per dataset
def test_a_file_as_data_directory_is_one_error_line(command, tmp_path, capsys):
    not_a_directory = tmp_path / "data.txt"
    not_a_directory.write_text("")
    assert main([command, "--data-dir", str(not_a_directory)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"lstm-variants-data: error: data_dir {not_a_directory} is not a directory: point it "
        "at the folder that holds (or will hold) the dataset's files\n"
    )


def test_help_and_bad_usage_exit_through_argparse(capsys):
    with pytest.raises(SystemExit) as exit_help:
        main(["--help"])
    assert exit_help.value.code == 0 and "describe" in capsys.readouterr().out
    for argv, error in [
        (["describe", "adding", "-o", "novalue"], "argument --option/-o: expected key=value"),
        (["describe"], "the following arguments are required: name"),
        (["descibe", "adding"], "argument COMMAND: invalid choice: 'descibe'"),
        # The sub-command's own help lists what it takes.
        (
            ["list", "--bogus"],
            "list: error: unrecognized arguments: --bogus (see lstm-variants-data list",
        ),
    ]:
        with pytest.raises(SystemExit) as exit_bad:
            main(argv)
        (line,) = capsys.readouterr().err.splitlines()  # one line, not argparse's usage block
        assert exit_bad.value.code == 2 and error in line and line.endswith("--help)"), line


def split_of(lengths):
    lengths = np.asarray(lengths, np.int32)
    steps = int(lengths.max())
    return Split(
        inputs=np.zeros((len(lengths), steps, 1), np.float32),
        targets=np.zeros((len(lengths), steps, 1), np.float32),
        lengths=lengths,
    )


def test_padding_report_by_hand():
    lengths = np.array([1, 8, 2, 7])
    # Bucketed by 2: [1, 2] padded to 2, [7, 8] padded to 8: 1 - 18 / (4 + 16) = 0.1.
    assert [b.tolist() for b in length_buckets(lengths, 2)] == [[0, 2], [3, 1]]
    report = padding_report(split_of(lengths), batch_size=2)
    assert report["whole_split"] == pytest.approx(1 - 18 / 32)
    assert report["bucketed"] == pytest.approx(0.1)
    assert report["bucketed"] <= report["random_batches"] <= report["whole_split"]
    assert padding_fraction(lengths, [np.array([1, 3])]) == pytest.approx(1 - 15 / 16)
    assert padding_report(split_of([5, 5, 5]), batch_size=2) == {
        "whole_split": 0.0,
        "random_batches": 0.0,
        "bucketed": 0.0,
    }


def test_describe_refuses_an_option_given_twice(capsys):
    assert main(["describe", "adding", "-o", "T=12", "-o", "T=13"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("option T is given more than once: give each option once")
    )
