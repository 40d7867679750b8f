"""plots, report and the command line: files are written, non-empty, of the expected size."""

import json

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
    # round_trip: pandas' default parser may land a written float an ulp or two off (seen on one
    # machine's pandas); the table is exact, the comparison must be too.
    best = pd.read_csv(tmp_path / "report" / "tables" / "best.csv", float_precision="round_trip")
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
        "lstm-variants-analyze: error: reference cell 'bogus' is in no dataset; cells found: "
        "vanilla, nfg, cifg (choose one as the reference: --reference on the command line)"
    )
    for bad in ("2", "0", "abc"):
        with pytest.raises(SystemExit) as exit_info:
            main(["compare", str(sweep), "--fraction", bad])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.splitlines() == [  # one line, not argparse's usage block
            "lstm-variants-analyze compare: error: argument --fraction: must be a share in "
            f"(0, 1], e.g. 0.1, got '{bad}' (see lstm-variants-analyze compare --help)"
        ]
    with pytest.raises(SystemExit) as exit_info:
        main(["importance", str(sweep), "--trees", "0"])
    assert exit_info.value.code == 2 and "must be a whole number >= 1" in capsys.readouterr().err
    for option, bad, message in [
        ("--permutations", "0", "must be a whole number >= 1"),  # it gave p = 1 for every cell
        ("--alpha", "5", "must be a level in (0, 1)"),
        ("--alpha", "0", "must be a level in (0, 1)"),
        ("--resamples", "-1", "must be a whole number >= 0"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["compare", str(sweep), option, bad])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    for bad in ("nan", "inf", "abc"):  # a line at nan or inf would be drawn as nothing
        with pytest.raises(SystemExit) as exit_info:
            main(["curves", str(sweep), "--target", bad])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.splitlines() == [
            "lstm-variants-analyze curves: error: argument --target: must be a finite number, "
            f"e.g. 8.5, got '{bad}' (see lstm-variants-analyze curves --help)"
        ]
    assert main(["importance", str(sweep), "--target", "bogus"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "lstm-variants-analyze: error: --target 'bogus' is not a column of these records; use one "
        "of: test_at_best, best_valid"
    )
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    assert main(["collect", str(sweep), "--out", str(blocked / "out")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"lstm-variants-analyze: error: cannot write {blocked / 'out'}")
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0


def test_plots_of_a_study_too_small_for_importance_still_draws_the_other_figures(tmp_path, capsys):
    # 2 trials a cell: too few for the forest (8), but the box plots and curves need none.
    study = synthetic_study({"vanilla": 0.0, "nfg": 0.4}, trials=3, seed=0)
    write_records(study, tmp_path / "s")
    assert main(["plots", str(tmp_path / "s"), "--out", str(tmp_path / "f")]) == 0
    written = {path.name for path in (tmp_path / "f").iterdir()}
    assert {"box_jsb_chorales.png", "curves_jsb_chorales.png", "best_results.pdf"} <= written
    assert not any(name.startswith("importance_") for name in written)
    assert "no importance, marginal or interaction figures" in capsys.readouterr().err
    assert main(["importance", str(tmp_path / "s"), "--out", str(tmp_path / "i")]) == 2


def test_a_misspelt_reference_on_the_command_line_is_one_error_line(sweep, tmp_path, capsys):
    capsys.readouterr()
    assert main(["report", str(sweep), "--out", str(tmp_path), "--reference", "vanila"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("lstm-variants-analyze: error: reference cell 'vanila' is in no")
    assert "cells found: vanilla" in error[-1] and not (tmp_path / "report.md").exists()


def test_a_recorded_reference_cell_that_is_not_a_name_is_passed_over(tmp_path, capsys):
    records = synthetic_study({"vanilla": 0.0, "nfg": 0.4}, trials=6, seed=0)
    records[0]["config"]["reference_cell"] = ["nfg"]  # an edited record
    write_records(records, tmp_path / "s")
    assert main(["compare", str(tmp_path / "s"), "--out", str(tmp_path / "c")]) == 0
    assert "| vanilla (ref.) |" in capsys.readouterr().out


def test_a_reference_without_a_usable_trial_gives_way_to_the_first_usable_cell():
    trials = pd.DataFrame(
        {"cell": ["vanilla", "vanilla", "gru", "cifg"], "usable": [False, False, True, True]}
    )
    chosen, note = resolve_reference(trials, "vanilla")
    assert chosen == "cifg"  # the first usable cell in the canonical order (Greff's before GRU)
    assert note == "reference cell 'vanilla' has no usable trial here; compared against 'cifg'"
    assert resolve_reference(trials, "nfg")[1].startswith("reference cell 'nfg' is not in")
    assert resolve_reference(trials, "gru") == ("gru", None)


def test_the_best_fraction_panel_shows_every_value_the_table_tests():
    from lstm_variants.analysis.plots import box_figure

    # A quickstart-like study: 10 trials per cell, so its best 10 % is one trial per cell; four
    # cells close together and NOAF's best far above them (it used to fall off the lower panel).
    rng = np.random.default_rng(0)
    rows = []
    for cell, best in [("vanilla", 2.590), ("nfg", 2.595), ("cifg", 2.598), ("np", 2.600),
                       ("noaf", 2.865)]:  # fmt: skip
        for k, value in enumerate([best, *(best + 0.3 + rng.random(9))]):
            rows.append({"dataset": "xml", "cell": cell, "usable": True, "best_valid": value,
                         "test_at_best": value, "metric": "nats", "trial_id": f"{cell}{k}"})  # fmt: skip
    trials = pd.DataFrame(rows)
    comparison = pd.DataFrame(
        {"dataset": ["xml"] * 5, "cell": trials["cell"].unique(), "marker": ""}
    )
    upper, lower = box_figure(trials, comparison, "xml").axes
    low, high = lower.get_ylim()
    assert low < 2.590 and high > 2.865
    assert "above the axis" not in lower.get_title()


def test_importance_shares_of_a_surrogate_that_predicts_nothing_are_flagged(tmp_path):
    from types import SimpleNamespace

    from lstm_variants.analysis.report import _importance_section

    def section(r2):
        result = SimpleNamespace(
            group={"dataset": "xml"}, title="xml", trials=6, excluded=0,
            surrogate=SimpleNamespace(r2_out_of_bag=r2, names=["optimizer.learning_rate"],
                                      scales=["log"]),
            main=pd.DataFrame({"parameter": ["optimizer.learning_rate"], "fraction": [0.5],
                               "fraction_std": [0.1]}),
            pairs=pd.DataFrame(columns=["parameter_a", "parameter_b", "fraction", "fraction_std"]),
        )  # fmt: skip
        return "\n".join(_importance_section(result, {}, tmp_path))

    assert "Not informative" not in section(0.35)
    assert "Not informative: the forest does not predict" in section(-0.80)
    assert "out-of-bag R² is -0.80, no better than predicting the mean" in section(-0.80)
    assert "too few trials (under 10)" in section(float("nan"))


def test_figures_of_a_rerun_study_show_the_sample_its_table_compares(tmp_path, monkeypatch):
    """A rerun compares every trial (comparison_selection), so its box plot's lower panel must
    not pick one trial a cell by validation; the curves' y-axis fits the best trials drawn."""
    from lstm_variants.analysis import plots

    records = synthetic_study({"vanilla": 0.0, "nfg": 0.3}, trials=20, seed=0, paired=True)
    write_records(records, tmp_path / "sweep")
    collection = collect([tmp_path / "sweep"])
    trials = collection.trials.assign(rerun_of="t0")
    comparison = compare(trials, fraction=1.0, sample="all", resamples=0, permutations=100)
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.all_figures(trials, collection.curves, comparison, [], tmp_path / "figures")
    lower = figures["box_jsb_chorales"].axes[1]
    assert "best" not in lower.get_title()
    assert len(lower.lines) and sum(len(b.get_ydata()) for b in lower.lines) > 0
    shown = trials[trials["usable"]].sort_values("best_valid").groupby("cell", observed=True)
    drawn = collection.curves[collection.curves["trial_id"].isin(shown.head(1)["trial_id"])]
    low, high = figures["curves_jsb_chorales"].axes[0].get_ylim()
    assert high <= drawn["valid_loss"].max() + 0.1 * (drawn["valid_loss"].max() - low)


def test_learning_curves_show_a_cell_whose_best_curve_lies_above_the_others(tmp_path, monkeypatch):
    """A one-epoch smoke study: four cells near 2.3, noaf's best at 2.81. The bulk's limits
    (Q3 + 3 IQR) cut noaf off, leaving a legend entry without a curve."""
    from lstm_variants.analysis import plots

    cells = ["vanilla", "nfg", "noaf", "cifg", "gru"]
    valid = [2.302, 2.371, 2.810, 2.297, 2.305]
    trials = pd.DataFrame(
        {"trial_id": cells, "cell": cells, "dataset": "xml", "usable": True, "best_valid": valid}
    )
    curves = pd.DataFrame({"trial_id": cells, "epoch": 1, "valid_loss": valid})
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.learning_curves(trials, curves, "xml", tmp_path / "curves_xml")
    low, high = figures["curves_xml"].axes[0].get_ylim()
    assert low <= min(valid) and max(valid) <= high
    # One epoch: its ticks are whole epochs, not 0.96 ... 1.04.
    figures["curves_xml"].canvas.draw()
    ticks = figures["curves_xml"].axes[0].get_xticks()
    assert len(ticks) and all(float(tick).is_integer() for tick in ticks)


def test_importance_chart_shows_whole_error_bars_and_labels_beside_them(tmp_path, monkeypatch):
    """Ten trials: shares 0.53 and 0.47, each +- 0.50 over trees (the quickstart smoke study)."""
    from types import SimpleNamespace

    from lstm_variants.analysis import plots

    result = SimpleNamespace(
        title="xml", trials=10, surrogate=SimpleNamespace(r2_out_of_bag=-0.37),
        main=pd.DataFrame({"parameter": ["model.hidden_size", "optimizer.learning_rate"],
                           "fraction": [0.53, 0.47], "fraction_std": [0.50, 0.50]}),
        pairs=pd.DataFrame({"parameter_a": ["model.hidden_size"],
                            "parameter_b": ["optimizer.learning_rate"], "fraction": [0.0],
                            "fraction_std": [0.0]}),
    )  # fmt: skip
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.importance_chart(result, tmp_path / "importance_xml")
    axis = figures["importance_xml"].axes[0]
    assert axis.get_xlim()[1] > 0.53 + 0.50
    labels = {text.get_text(): text.get_position()[0] for text in axis.texts}
    assert labels["53.0 %"] > 0.53 + 0.50 and labels["47.0 %"] > 0.47 + 0.50


def test_the_interaction_legend_lies_outside_the_surface(tmp_path, monkeypatch):
    """The legend ('best learning rate per hidden size') sat inside the axes' upper right corner,
    hiding part of the surface and its contour labels."""
    from lstm_variants.analysis import plots
    from lstm_variants.analysis.importance import importance
    from lstm_variants.analysis.synthetic import synthetic_study, write_records

    write_records(synthetic_study({"vanilla": 0.0}, trials=30, seed=0), tmp_path / "records")
    result = importance(collect([tmp_path / "records"]).trials, trees=2)
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.interaction_heatmap(result, *plots.pick_interaction(result), tmp_path / "interaction")
    figure = figures["interaction"]
    figure.canvas.draw()
    axis = figure.axes[0]
    legend = axis.get_legend().get_window_extent()
    assert legend.y1 <= axis.get_window_extent().y0  # wholly below the surface
    assert not legend.overlaps(axis.xaxis.get_tightbbox())  # and below the axis's labels


def test_a_summary_without_a_report_does_not_import_matplotlib():
    """What a sweep's summary imports (sweep.summarize) leaves matplotlib out; write_report is
    still importable from the package, and an unknown name is an AttributeError."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from lstm_variants.analysis import AnalysisError, collect, compare\n"
        "from lstm_variants.analysis.compare import comparison_selection, to_markdown\n"
        "from lstm_variants.analysis.report import resolve_reference\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "from lstm_variants.analysis import write_report\n"
        "assert write_report.__module__ == 'lstm_variants.analysis.report'\n"
        "import lstm_variants.analysis as analysis\n"
        "try:\n"
        "    analysis.no_such_name\n"
        "except AttributeError:\n"
        "    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_the_report_says_which_duplicates_hold_other_results(tmp_path):
    write_records(synthetic_study({"vanilla": 0.0, "nfg": 0.4}, trials=8, seed=0), tmp_path / "s")
    first, second = sorted((tmp_path / "s").rglob("records/*.json"))[:2]
    copies = tmp_path / "again" / "records"
    copies.mkdir(parents=True)
    (copies / first.name).write_text(first.read_text())  # a copy
    retrained = json.loads(second.read_text())
    retrained["metrics"]["best_valid"] += 1.0  # the same config trained again
    (copies / second.name).write_text(json.dumps(retrained))
    report = write_report(
        [tmp_path / "s", tmp_path / "again"], tmp_path / "r", trees=4, resamples=50,
        permutations=50, status=lambda line: None,
    )  # fmt: skip
    assert (
        "- 2 duplicate trial(s) kept once, 1 of them with other results than the record kept "
        "(data/skipped.csv names each)"
    ) in report.read_text()


def test_compare_without_the_reference_cell_takes_the_first_cell_as_the_report_does(
    tmp_path, capsys
):
    """A GRU study: compare refused ("reference cell 'vanilla' is in no dataset") where report
    and the sweep summary compared against 'gru'; a --reference given is still taken as given."""
    write_records(synthetic_study({"gru": 0.0, "mut1": 0.5}, trials=10, seed=0), tmp_path)
    assert main(["compare", str(tmp_path), "--out", str(tmp_path / "out")]) in (0, None)
    captured = capsys.readouterr()
    assert "note: reference cell 'vanilla' is not in these sweeps; compared against 'gru'" in (
        captured.err
    )
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert (table["reference"] == "gru").all()
    assert main(["compare", str(tmp_path), "--reference", "vanilla"]) == 2
    assert "reference cell 'vanilla' is in no dataset" in capsys.readouterr().err


def test_report_takes_the_comparison_options_compare_takes(sweep, tmp_path, monkeypatch):
    """report had no --fraction, --alpha or --family: its table could not be made as compare's."""
    from lstm_variants.analysis import report as report_module

    seen = []
    original = report_module.compare
    monkeypatch.setattr(
        report_module, "compare", lambda *a, **kw: seen.append(kw) or original(*a, **kw)
    )
    out = tmp_path / "report"
    options = ["--fraction", "0.5", "--alpha", "0.01", "--family", "table", "--resamples", "0"]
    assert main(["report", str(sweep), "--out", str(out), *options, "--permutations", "9"]) == 0
    (called,) = seen
    assert called["fraction"] == 0.5 and called["alpha"] == 0.01 and called["family"] == "table"
    assert called["resamples"] == 0 and called["permutations"] == 9
    table = pd.read_csv(out / "tables" / "comparison.csv")
    assert (table["fraction"] == 0.5).all() and table["top_median_ci_low"].isna().all()
    # The report states them, and its "Regenerate with" line gives every one that is not the
    # default, so the command it prints makes the same tables.
    text = (out / "report.md").read_text()
    assert "(adjusted p < 0.01; tests corrected together: the whole table's)" in text
    assert (
        "--reference vanilla --fraction 0.5 --family table --alpha 0.01 --resamples 0 "
        "--permutations 9`." in text
    )


def test_without_a_reference_the_first_usable_cell_is_taken_without_a_note():
    trials = pd.DataFrame({"cell": ["gru", "cifg"], "usable": [True, True]})
    assert resolve_reference(trials, None) == ("cifg", None)


def test_the_recorded_reference_is_the_studies_own_only_where_they_agree():
    from lstm_variants.analysis.report import recorded_reference

    def trials(*references):
        return pd.DataFrame(
            {"config_json": [json.dumps({"reference_cell": r}) for r in references]}
        )

    assert recorded_reference(trials("lstm", "lstm", None)) == "lstm"
    assert recorded_reference(trials("lstm", "vanilla")) == "vanilla"  # disagree: the default
    assert recorded_reference(trials("lstm", "gru"), default="cifg") == "cifg"


def test_the_config_summary_splits_shared_from_varying_settings():
    from lstm_variants.analysis.report import config_summary

    configs = [
        {"model": {"hidden_size": h, "num_layers": 1}, "cell": cell}
        for h, cell in zip([8, 16, 8, 16, 8, 16, 8], "abcdefg", strict=True)
    ]
    trials = pd.DataFrame({"config_json": [json.dumps(c) for c in configs]})
    shared, varying = config_summary(trials)
    assert shared == {"model.num_layers": 1}
    rows = varying.set_index("key")
    assert rows.loc["model.hidden_size", "distinct"] == 2
    assert rows.loc["model.hidden_size", "values"] == "8 .. 16"
    assert rows.loc["cell", "distinct"] == 7
    assert rows.loc["cell", "values"] == "a, b, c, d, e, f ..."  # the first 6 of 7


def test_the_environment_table_ignores_where_a_trial_ran():
    from lstm_variants.analysis.report import environment_summary

    environments = [
        {"jax": "0.7.0", "device": "cpu", "host": host, "cpu_cores": cores}
        for host, cores in (("a", [0, 1]), ("b", [2, 3]), ("a", [0, 1]))
    ]
    trials = pd.DataFrame({"environment_json": [json.dumps(e) for e in environments]})
    table = environment_summary(trials)
    assert table.to_dict("records") == [{"jax": "0.7.0", "device": "cpu", "trials": 3}]


def test_a_surrogate_with_zero_r2_explains_nothing():
    from lstm_variants.analysis.report import uninformative_reason

    assert uninformative_reason(0.0) == (
        "its out-of-bag R² is 0.00, no better than predicting the mean"
    )
    assert uninformative_reason(0.01) is None


def test_a_comparison_of_all_trials_says_so():
    from lstm_variants.analysis.report import selection_sentence

    assert selection_sentence(pd.DataFrame({"fraction": [1.0]})) == (
        "Every usable trial of each cell."
    )
    assert selection_sentence(pd.DataFrame({"fraction": [0.1]})).startswith("Best 10 %: ")


def test_learning_curves_are_drawn_in_the_metric_the_tables_report(tmp_path, monkeypatch):
    """Curves record nats; a Tiny Shakespeare study reports bits per character. The curves were
    drawn in nats (1.38 at best) beside tables of bpc (1.99), under 'validation loss'."""
    import math

    from lstm_variants.analysis import plots

    nats = [1.60, 1.45, 1.38]
    trials = pd.DataFrame(
        {"trial_id": ["t0"], "cell": ["vanilla"], "dataset": ["tiny_shakespeare"],
         "usable": [True], "metric": ["bits_per_char"], "best_valid": [1.38 / math.log(2)]}
    )  # fmt: skip
    curves = pd.DataFrame({"trial_id": "t0", "epoch": [1, 2, 3], "valid_loss": nats})
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.learning_curves(trials, curves, "tiny_shakespeare", tmp_path / "curves")
    axis = figures["curves"].axes[0]
    (line,) = axis.lines
    assert np.allclose(line.get_ydata(), np.array(nats) / math.log(2))
    assert min(line.get_ydata()) == pytest.approx(trials["best_valid"].iloc[0])
    assert axis.get_ylabel() == "validation bits per character"
    low, high = axis.get_ylim()
    assert low <= 1.38 / math.log(2) <= high


def test_figure_axes_name_the_metric_with_its_unit(sweep, tmp_path, monkeypatch):
    """The axes said 'test nll_per_step' (a column name, no unit); docs quote nats and bpc."""
    from lstm_variants.analysis import plots

    collection = collect([sweep])
    table = compare(collection.trials, resamples=0, permutations=100)
    results = importance_by_group(collection.trials, trees=2)
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.all_figures(collection.trials, collection.curves, table, results, tmp_path)
    label = "test NLL per time step (nats)"
    assert [axis.get_ylabel() for axis in figures["box_jsb_chorales"].axes] == [label, label]
    assert figures["marginals_jsb_chorales"].axes[0].get_ylabel() == label
    colorbar = figures["interaction_jsb_chorales"].axes[1]
    assert colorbar.get_ylabel() == f"predicted {label}"
    assert "best test NLL per time step (nats)" in figures["best_results"].axes[0].get_xlabel()
    assert figures["curves_jsb_chorales"].axes[0].get_ylabel() == (
        "validation NLL per time step (nats)"
    )


def test_a_box_panel_of_one_value_has_a_readable_axis():
    """One trial (a one-trial cell, or the best 10 % of a small study): the axis spanned 1e-10,
    with ticks '1.6 ... 2.4' under an offset '1e-10+1.959062115'."""
    from lstm_variants.analysis.plots import box_figure

    value = 1.959062115
    trials = pd.DataFrame(
        {"dataset": "tiny_shakespeare", "cell": "vanilla", "usable": True, "best_valid": [value],
         "test_at_best": [value], "metric": "bits_per_char", "trial_id": ["t0"]}
    )  # fmt: skip
    comparison = pd.DataFrame({"dataset": ["tiny_shakespeare"], "cell": ["vanilla"], "marker": ""})
    figure = box_figure(trials, comparison, "tiny_shakespeare")
    figure.canvas.draw()
    for axis in figure.axes:
        low, high = axis.get_ylim()
        assert low < value < high and high - low > 0.01 * value
        assert axis.yaxis.get_offset_text().get_text() == ""


def test_the_all_trials_panel_shows_every_cells_median():
    """greff_jsb_rerun: noaf's ten trials 9.09 ... 46, the other cells' near 8.75; the bulk's
    limits (Q3 + 3 IQR of all trials) stopped at 9.35, below noaf's median 9.49."""
    from lstm_variants.analysis.plots import box_figure

    rng = np.random.default_rng(0)
    values = {c: 8.75 + 0.05 * rng.standard_normal(10) for c in ("vanilla", "nig", "nog", "np")}
    values["noaf"] = np.array([9.09, 9.14, 9.20, 9.30, 9.45, 9.53, 10.9, 11.3, 11.5, 46.5])
    rows = [
        {"dataset": "jsb_chorales", "cell": cell, "usable": True, "best_valid": v,
         "test_at_best": v, "metric": "nll_per_step", "trial_id": f"{cell}{k}"}
        for cell, vs in values.items() for k, v in enumerate(vs)
    ]  # fmt: skip
    trials = pd.DataFrame(rows)
    comparison = pd.DataFrame({"dataset": "jsb_chorales", "cell": list(values), "marker": ""})
    upper = box_figure(trials, comparison, "jsb_chorales", fraction=1.0).axes[0]
    low, high = upper.get_ylim()
    assert low < 8.7 and np.median(values["noaf"]) < high < 11.0


@pytest.mark.parametrize("r2", [-0.02, float("nan"), 0.5])
def test_figures_of_a_surrogate_that_predicts_nothing_say_so(tmp_path, monkeypatch, r2):
    """greff_jsb_rerun (two distinct draws, OOB R² -0.02): the report's text said 'Not
    informative', its marginals and heat map drew learning-rate curves over four decades with
    no word of it."""
    from lstm_variants.analysis import plots
    from lstm_variants.analysis.importance import importance

    write_records(synthetic_study({"vanilla": 0.0}, trials=30, seed=0), tmp_path / "records")
    result = importance(collect([tmp_path / "records"]).trials, trees=2)
    result.surrogate.r2_out_of_bag = r2
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.marginal_plots(result, tmp_path / "marginals")
    plots.interaction_heatmap(result, *plots.pick_interaction(result), tmp_path / "interaction")
    plots.importance_chart(result, tmp_path / "importance")
    titles = {
        "marginals": figures["marginals"].get_suptitle(),
        "interaction": figures["interaction"].axes[0].get_title(),
        "importance": figures["importance"].axes[0].get_title(),
    }
    for name, title in titles.items():
        assert ("NOT INFORMATIVE" in title) == (r2 != 0.5), name
    if r2 != r2:  # NaN: too few trials to measure
        assert "under 10 trials" in titles["marginals"]


def test_a_cell_without_a_usable_trial_is_named_not_left_blank(tmp_path, monkeypatch):
    """A cell whose every trial diverged had an empty slot in the box plots and no bar and no
    number in the best-result bars: it read as missing data or a drawing fault."""
    from lstm_variants.analysis import plots

    records = synthetic_study({"vanilla": 0.0, "nfg": 0.3}, trials=10, seed=0)
    records += synthetic_study(
        {"cifg": 0.0}, trials=3, seed=1, diverge_above_learning_rate=0.0, diverge_probability=1.0
    )
    write_records(records, tmp_path / "sweep")
    collection = collect([tmp_path / "sweep"])
    table = compare(collection.trials, resamples=0, permutations=100)
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.all_figures(collection.trials, collection.curves, table, [], tmp_path / "figures")
    for axis in figures["box_jsb_chorales"].axes:
        (note,) = [t for t in axis.texts if t.get_text() == plots.NO_RESULT]
        assert note.get_position()[0] == 3  # cifg's slot
    bars = figures["best_results"].axes[0]
    assert any(t.get_text().strip() == plots.NO_RESULT for t in bars.texts)
    low, high = bars.get_ylim()
    assert low < -0.4 and high > len(bars.get_yticks()) - 0.6  # mut2's row is a whole row


def test_a_marginal_with_a_diverging_corner_shows_the_bulk_and_says_what_leaves_the_axis(
    tmp_path, monkeypatch
):
    """greff_jsb's learning-rate marginal: ~44 +- 9 below 2.2e-6, 10-12 from there to 1e-2.
    Its axis ran to 54 and flattened the useful range into a line. Other panels keep all of
    their curve and band, and say nothing."""
    from lstm_variants.analysis import plots
    from lstm_variants.analysis.importance import importance

    write_records(synthetic_study({"vanilla": 0.0}, trials=30, seed=0), tmp_path / "records")
    result = importance(collect([tmp_path / "records"]).trials, trees=2)
    names = list(result.marginals)
    rate = next(name for name in names if name.endswith("learning_rate"))
    curve = result.marginals[rate].copy()
    corner = np.arange(len(curve)) < 6
    curve["mean"] = np.where(corner, 44.0, np.linspace(12.0, 10.0, len(curve)))
    curve["std"] = np.where(corner, 9.0, 0.5)
    result.marginals[rate] = curve
    # jozefowicz_cpu_report's xml: a flat curve whose band is a little wider at one end (a tiny
    # IQR puts it past Q3 + 3 IQR); hiding it would gain the curve nothing.
    flat = next(name for name in names if name.endswith("hidden_size"))
    curve = result.marginals[flat].copy()
    start = np.arange(len(curve)) < 8
    curve["mean"] = np.where(start, 2.137, 2.12)
    curve["std"] = np.where(start, 0.02, 0.004)
    result.marginals[flat] = curve
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.marginal_plots(result, tmp_path / "marginals")
    for axis, name in zip(figures["marginals"].axes, names, strict=False):
        mean, std = result.marginals[name]["mean"], result.marginals[name]["std"]
        bulk = ~corner if name == rate else np.ones(len(mean), bool)
        low, high = axis.get_ylim()
        assert low <= (mean - std)[bulk].min() and (mean + std)[bulk].max() <= high, name
        if name == rate:
            assert high < 44.0 - 9.0  # the corner, band and all, is off the axis
            assert axis.get_title().startswith("mean above the axis at 1e-06–")
            assert "(up to 44)" in axis.get_title()
        else:
            assert axis.get_title() == "", name


def test_the_interaction_heat_map_of_greff_jsb_has_readable_labels_and_markers(monkeypatch):
    """greff_jsb's heat map: matplotlib labelled every piece of every contour ('12.9' over
    '12.9', a pile of labels where the contours bunch at 2e-3), and a marker on each of the 40
    rows merged into a solid column."""
    from pathlib import Path

    from lstm_variants.analysis import plots
    from lstm_variants.analysis.importance import importance

    data = Path(__file__).parents[1] / "docs/studies/greff_jsb/report/data/trials.parquet"
    result = importance(pd.read_parquet(data), trees=32)
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.interaction_heatmap(result, *plots.pick_interaction(result), Path("interaction"))
    figure = figures["interaction"]
    figure.canvas.draw()
    axis = figure.axes[0]
    labels = [text.get_window_extent() for text in axis.texts]
    assert len(labels) >= 3
    for i, box in enumerate(labels):
        assert not any(box.overlaps(other) for other in labels[i + 1 :])
        assert axis.bbox.contains(box.x0, box.y0) and axis.bbox.contains(box.x1, box.y1)
    (best,) = [line for line in axis.lines if line.get_marker() == "o"]
    every = best.get_markevery() or 1
    shown = axis.transData.transform(best.get_xydata())[::every]
    diameter = best.get_markersize() * figure.dpi / 72
    assert 4 <= len(shown) and np.hypot(*np.diff(shown, axis=0).T).min() > 2 * diameter


FOURTEEN = ["vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr", "gru", "mut1",
            "mut2", "mut3", "mgu"]  # fmt: skip


def test_fourteen_cells_keep_bars_curves_and_legend_apart(tmp_path, monkeypatch):
    """Eleven hatches repeated from the 12th bar (mut3 drawn as nig); the curves' legend, inside
    the axes, covered curves of a short study; ten cells had solid lines told apart by marker
    alone (a circle against a hexagon)."""
    from lstm_variants.analysis import plots

    offsets = {cell: 0.03 * i for i, cell in enumerate(FOURTEEN)}
    records = synthetic_study(offsets, trials=6, seed=1, max_epochs=3)
    write_records(records, tmp_path / "sweep")
    collection = collect([tmp_path / "sweep"])
    table = compare(collection.trials, resamples=0, permutations=50)
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.learning_curves(collection.trials, collection.curves, "jsb_chorales", tmp_path / "c")
    plots.best_result_bars(table, tmp_path / "bars")
    bars = figures["bars"].axes[0].patches
    looks = {(tuple(bar.get_facecolor()), bar.get_hatch()) for bar in bars}
    assert len(bars) == len(looks) == 14
    curves = figures["c"]
    curves.canvas.draw()
    axis = curves.axes[0]
    drawn = [line for line in axis.lines if line.get_label() in FOURTEEN]
    assert len({(line.get_linestyle(), line.get_marker()) for line in drawn}) == 14
    assert len({line.get_marker() for line in drawn if line.get_linestyle() == "-"}) < 10
    legend = axis.get_legend().get_window_extent()
    for line in drawn:
        points = axis.transData.transform(line.get_xydata())
        assert not any(legend.contains(*point) for point in points), line.get_label()
