"""plots, report and the command line: files are written, non-empty, of the expected size."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from lstm_variants.analysis.cli import main
from lstm_variants.analysis.collect import collect
from lstm_variants.analysis.compare import compare
from lstm_variants.analysis.importance import importance_by_group
from lstm_variants.analysis.plots import DPI, all_figures
from lstm_variants.analysis.report import resolve_reference, write_report
from lstm_variants.analysis.synthetic import synthetic_study, write_records


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    write_records(
        synthetic_study({"vanilla": 0.0, "nfg": 0.4, "cifg": 0.0}, trials=40, seed=0), root
    )
    write_records(
        synthetic_study({"vanilla": 0.0, "nfg": 0.4}, trials=20, seed=1, dataset="nottingham"), root
    )
    (root / "jsb_chorales" / "nfg" / "records" / "broken.json").write_text("{")
    return root


def test_every_figure_is_a_non_empty_image_of_the_expected_size(sweep, tmp_path):
    collection = collect([sweep])
    table = compare(collection.trials, resamples=0, permutations=100)
    results = importance_by_group(collection.trials, trees=8)
    written = all_figures(collection.trials, collection.curves, table, results, tmp_path)
    expected = {"best_results"} | {
        f"{kind}_{d}"
        for d in ("jsb_chorales", "nottingham")
        for kind in ("box", "curves", "importance", "marginals", "interaction")
    }
    assert set(written) == expected
    for name, paths in written.items():
        png, pdf = sorted(paths, key=lambda p: p.suffix != ".png")
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
        image = imread(png)
        height, width = image.shape[:2]
        assert 2 * DPI < width < 20 * DPI and 1.5 * DPI < height < 12 * DPI, name
        assert np.ptp(image[..., :3]) > 0.5, name  # not blank: black ink on white


def test_report_is_self_contained_markdown(sweep, tmp_path):
    lines = []
    report = write_report(
        [sweep], tmp_path / "report", trees=8, resamples=100, permutations=200, status=lines.append
    )
    text = report.read_text()
    for heading in (
        "# Study report",
        "## Comparison of cells",
        "## Hyperparameters",
        "## Cost",
        "### Best trial per cell and task",
        "## Configuration",
        "## Environment",
        "## Skipped records",
    ):
        assert heading in text
    assert "broken.json" in text and "**worse**" in text
    for link in [part.split(")")[0] for part in text.split("](")[1:]]:
        assert (report.parent / link).is_file(), link  # every link resolves inside the folder
    assert (tmp_path / "report" / "data" / "trials.parquet").is_file()
    assert (tmp_path / "report" / "tables" / "comparison.tex").is_file()
    cost = (tmp_path / "report" / "tables" / "cost.csv").read_text()
    assert cost.startswith("dataset,cell,trials,trial_epochs,wall_seconds") and "nottingham" in cost
    assert "200 trials of each of the 3 cells on jsb_chorales would take" in text
    jsb = pd.read_csv(tmp_path / "report" / "tables" / "cost.csv").query(
        "dataset == 'jsb_chorales'"
    )
    mean_epochs = jsb["trial_epochs"].sum() / jsb["trials"].sum()
    assert f"as many epochs as these did ({mean_epochs:.1f} per trial on average)" in text
    best = pd.read_csv(tmp_path / "report" / "tables" / "best.csv")
    trials = pd.read_parquet(tmp_path / "report" / "data" / "trials.parquet")
    lowest = (
        trials[trials["usable"]].groupby(["dataset", "cell"], observed=True)["best_valid"].min()
    )
    assert len(best) == len(lowest)
    for row in best.itertuples():
        assert row.best_valid == lowest[(row.dataset, row.cell)]
    assert lines[0] == "collecting records"


def test_report_of_a_paired_search_has_the_paired_table(tmp_path):
    study = synthetic_study(
        {"vanilla": 0.0, "nfg": 0.3, "cifg": 0.0}, trials=16, seed=2, paired=True
    )
    write_records(study, tmp_path / "s")
    report = write_report([tmp_path / "s"], tmp_path / "r", trees=4, resamples=100, permutations=50)
    text = report.read_text()
    assert "### Paired comparison (same hyperparameter draws)" in text
    both = pd.read_csv(tmp_path / "r" / "tables" / "paired.csv")
    assert sorted(both["fraction"].unique()) == [0.5, 1.0]
    paired = both[both["fraction"] == 1.0].set_index("cell")
    assert paired.loc["nfg", "marker"] == "worse" and paired.loc["nfg", "pairs"] > 8
    assert not isinstance(paired.loc["cifg", "marker"], str)  # empty: not significant


def test_report_falls_back_to_a_present_reference(tmp_path):
    write_records(synthetic_study({"lstm": 0.0, "gru": 0.0}, trials=10, seed=0), tmp_path / "s")
    report = write_report([tmp_path / "s"], tmp_path / "r", trees=4, resamples=0, permutations=50)
    assert (
        "reference cell 'vanilla' is not in these sweeps; compared against 'lstm'"
        in report.read_text()
    )


def test_command_line(sweep, tmp_path, capsys):
    assert (
        main(
            [
                "compare",
                str(sweep),
                "--out",
                str(tmp_path),
                "--resamples",
                "0",
                "--permutations",
                "100",
            ]
        )
        == 0
    )
    assert "| nfg |" in capsys.readouterr().out and (tmp_path / "comparison.csv").is_file()
    assert main(["paired", str(sweep), "--out", str(tmp_path)]) == 2  # unpaired draws: one line
    assert "no trial pairs with 'vanilla'" in capsys.readouterr().err
    assert main(["collect", str(sweep), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "trials.parquet").is_file()
    assert main(["importance", str(sweep), "--out", str(tmp_path), "--trees", "4"]) == 0
    assert "learning rate" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "nothing")]) == 2
    assert "lstm-variants-analyze: error: not a directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert f"no run records (**/records/*.json) under {empty}" in capsys.readouterr().err
    assert main(["compare", str(sweep), "--reference", "gru"]) == 2
    assert main(["paired", str(sweep), "--reference", "bogus"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "lstm-variants-analyze: error: reference cell 'bogus' is in none of these records; "
        "cells found: cifg, nfg, vanilla"
    )
    for bad in ("2", "0", "abc"):
        with pytest.raises(SystemExit) as exit_info:
            main(["compare", str(sweep), "--fraction", bad])
        assert exit_info.value.code == 2
        assert "must be a share in (0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0


def test_summary_and_report_choose_the_same_reference_and_say_why_it_changed():
    trials = pd.DataFrame(
        {"cell": ["vanilla", "vanilla", "gru", "cifg"], "usable": [False, False, True, True]}
    )
    chosen, note = resolve_reference(trials, "vanilla")
    assert chosen == "cifg"  # the first usable cell in the canonical order (Greff's before GRU)
    assert note == "reference cell 'vanilla' has no usable trial here; compared against 'cifg'"
    assert resolve_reference(trials, "nfg")[1].startswith("reference cell 'nfg' is not in")
    assert resolve_reference(trials, "gru") == ("gru", None)


def test_the_best_fraction_panel_shows_every_value_the_table_tests():
    from lstm_variants.analysis.plots import _full_limits, _robust_limits

    # A quickstart-like best 10 %: one trial per cell, four close together and NOAF's far above.
    best = np.array([2.590, 2.595, 2.598, 2.600, 2.865])
    assert _robust_limits(best)[1] < 2.865  # the old lower panel: NOAF's only value off the axis
    low, high = _full_limits(best)
    assert low < best.min() and high > best.max()
    # The all-trials panel still cuts off a diverged-like outlier (and counts it in its title).
    trials = np.concatenate([np.linspace(2.4, 2.6, 40), [50.0]])
    assert _robust_limits(trials)[1] < 50.0 < _full_limits(trials)[1]


def test_importance_shares_of_a_surrogate_that_predicts_nothing_are_flagged():
    from lstm_variants.analysis.report import _surrogate_warning

    assert _surrogate_warning(0.35) == []
    assert "out-of-bag R² is -0.80" in _surrogate_warning(-0.80)[0]
    assert "Not informative" in _surrogate_warning(0.0)[0]
    assert "too few trials" in _surrogate_warning(float("nan"))[0]
