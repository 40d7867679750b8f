"""compare: Greff's table, and tests that flag planted effects and keep their false-positive level."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lstm_variants.analysis.collect import AnalysisError, collect
from lstm_variants.analysis.compare import (
    benjamini_hochberg,
    bootstrap_interval,
    compare,
    comparison_selection,
    decimals_for,
    hedges_g,
    holm,
    to_latex,
    to_markdown,
    top_mean,
    top_permutation_test,
    welch_t_test,
    write_tables,
)
from lstm_variants.analysis.synthetic import (
    GREFF_SPACE,
    greff_like_response,
    sample_space,
    synthetic_study,
    write_records,
)

ALPHA = 0.05


def test_planted_worse_cell_is_flagged_and_equal_cell_is_not(tmp_path):
    records = synthetic_study({"vanilla": 0.0, "nfg": 0.5, "cifg": 0.0}, trials=100, seed=3)
    write_records(records, tmp_path)
    table = compare(collect([tmp_path]).trials, resamples=200, permutations=500)
    rows = table.set_index("cell")
    assert rows.loc["vanilla", "marker"] == "reference"
    assert rows.loc["nfg", "marker"] == "worse"
    assert rows.loc["cifg", "marker"] == ""
    # the difference of best-10 % means is near the planted 0.5, and its CI covers it
    assert rows.loc["nfg", "difference_ci_low"] < 0.5 < rows.loc["nfg", "difference_ci_high"]
    assert rows.loc["nfg", "hedges_g"] > 1
    assert rows.loc["vanilla", "top_n"] == 10  # ceil(10 % of 100 trials)
    assert 0 < rows.loc["vanilla", "diverged_share"] < 0.5
    # the same with Greff's Welch test on all trials: still flagged
    welch = compare(collect([tmp_path]).trials, sample="all", test="welch", resamples=0)
    assert welch.set_index("cell").loc["nfg", "marker"] == "worse"


def _random_search_draws(draws, trials, rng, offset=0.0):
    """(validation, test) of ``draws`` cells of ``trials`` random-search trials, no cell effect."""
    sampled = sample_space(GREFF_SPACE, draws * trials, rng)
    test = greff_like_response(sampled) + rng.normal(0, 0.05, draws * trials) + offset
    valid = test + rng.normal(0, 0.02, draws * trials)
    return valid.reshape(draws, trials), test.reshape(draws, trials)


def test_false_positive_rate_stays_near_alpha_without_effect():
    """400 tables without any effect: the permutation test on the best 10 % (the default) and
    Welch on all trials reject at about alpha (binomial s.e. 0.011, bound alpha + 3 s.e.); Welch
    on the selected best 10 % (Greff's procedure) rejects far more often, which is why it is
    reported but not the default."""
    rng = np.random.default_rng(0)
    draws, trials = 400, 50
    valid_x, test_x = _random_search_draws(draws, trials, rng)
    valid_r, test_r = _random_search_draws(draws, trials, rng)
    bound = ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / draws)
    _, p_permutation = top_permutation_test(valid_x, test_x, valid_r, test_r, 0.1, 200, seed=1)
    assert 0.01 < np.mean(p_permutation < ALPHA) < bound
    _, _, p_all = welch_t_test(test_x, test_r)
    assert 0.01 < np.mean(p_all < ALPHA) < bound
    top = lambda v, t: np.take_along_axis(t, np.argsort(v, axis=1)[:, :5], axis=1)  # noqa: E731
    _, _, p_top = welch_t_test(top(valid_x, test_x), top(valid_r, test_r))
    assert np.mean(p_top < ALPHA) > 2 * ALPHA


def test_holm_keeps_the_family_wise_error_rate():
    """2000 tables of 8 cells against a reference, no effect: the chance of any false positive
    after Holm stays below alpha (+3 s.e.), while uncorrected it is about 1 - 0.95^8 ~ 0.3."""
    rng = np.random.default_rng(1)
    draws, cells, n = 2000, 8, 20
    reference = rng.normal(size=(draws, 1, n))
    others = rng.normal(size=(draws, cells, n))
    _, _, p = welch_t_test(others, reference)
    assert np.mean((p < ALPHA).any(axis=1)) > 0.2
    family_wise = np.mean((holm(p) < ALPHA).any(axis=1))
    assert family_wise < ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / draws)


def test_corrections_match_their_definitions():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # Holm on the 4 tests, sorted 0.005, 0.01, 0.03, 0.04: 4x, 3x, 2x, 1x, running maximum
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02, np.nan])
    np.testing.assert_allclose(
        benjamini_hochberg(p)[:4], stats.false_discovery_control(p[:4], method="bh")
    )
    assert np.isnan(benjamini_hochberg(p)[4])
    batch = np.random.default_rng(0).random((5, 6))
    np.testing.assert_allclose(holm(batch)[2], holm(batch[2]))


def test_welch_and_hedges_match_scipy_and_the_formula():
    rng = np.random.default_rng(0)
    x, r = rng.normal(1.0, 2.0, 15), rng.normal(0.0, 1.0, 25)
    t, dof, p = welch_t_test(x, r)
    reference = stats.ttest_ind(x, r, equal_var=False)
    np.testing.assert_allclose([t, p], [reference.statistic, reference.pvalue])
    np.testing.assert_allclose(dof, reference.df)
    pooled = np.sqrt((14 * x.var(ddof=1) + 24 * r.var(ddof=1)) / 38)
    np.testing.assert_allclose(
        hedges_g(x, r), (1 - 3 / (4 * 40 - 9)) * (x.mean() - r.mean()) / pooled
    )


def test_tables_render_as_markdown_latex_and_csv(tmp_path):
    write_records(synthetic_study({"vanilla": 0.0, "noaf": 1.0}, trials=40, seed=0), tmp_path / "s")
    table = compare(collect([tmp_path / "s"]).trials, resamples=100, permutations=200)
    markdown = to_markdown(table)
    assert "| vanilla (ref.) |" in markdown and "**worse**" in markdown
    # Both summaries are of the compared share, and both headers say so.
    assert "| best 10 %: median [95 % CI] | best 10 %: mean ± std |" in markdown
    everything = compare(collect([tmp_path / "s"]).trials, fraction=1.0, resamples=10)
    assert "| all trials: median [95 % CI] | all trials: mean ± std |" in to_markdown(everything)
    latex = to_latex(table)
    assert r"\begin{tabular}" in latex and r"\toprule" in latex and "vanilla (ref.)" in latex
    paths = write_tables(table, tmp_path / "tables")
    assert all(path.stat().st_size > 0 for path in paths.values())


def test_small_errors_are_shown_to_four_significant_digits_not_as_zeros(tmp_path):
    """An MSE of 3e-4 (the adding problem) must not print as 0.000; NLLs keep 3 decimals."""
    records = synthetic_study({"vanilla": 0.0, "noaf": 1.0}, trials=20, seed=0)
    for record in records:
        for key in ("best_valid", "test_at_best", "best_valid_loss"):
            if record["metrics"].get(key) is not None:
                record["metrics"][key] *= 1e-4
    write_records(records, tmp_path)
    table = compare(collect([tmp_path]).trials, resamples=50, permutations=100)
    reference = table.set_index("cell").loc["vanilla"]
    (row,) = [line for line in to_markdown(table).splitlines() if "vanilla (ref.)" in line]
    median = float(row.split("|")[4].split("[")[0])
    assert median == pytest.approx(reference["top_median"], rel=1e-3)
    assert decimals_for([8.526, 9.1]) == 3 and decimals_for([3.4e-4, 0.1]) == 7
    assert decimals_for([float("nan"), 0.0]) == 3


def test_unknown_reference_or_option_is_a_one_line_error(tmp_path):
    write_records(synthetic_study({"vanilla": 0.0}, trials=5, seed=0), tmp_path)
    trials = collect([tmp_path]).trials
    with pytest.raises(AnalysisError, match="reference cell 'gru' is in no dataset"):
        compare(trials, reference="gru")
    with pytest.raises(AnalysisError, match="unknown correction"):
        compare(trials, correction="bonferroni")
    with pytest.raises(AnalysisError, match=r"unknown metric 'nope': not a column of the trials"):
        compare(trials, metric="nope")
    with pytest.raises(AnalysisError, match=r"unknown metric 'nope': not a column of the trials"):
        compare(trials, select_by="nope")


def test_one_folder_as_a_string_and_the_collection_itself_are_taken_from_python(tmp_path):
    """collect('/path') read the string as a list of one-letter folders, searching from '/'
    first; compare(collect(...)) failed on a missing attribute."""
    from lstm_variants.analysis.paired import paired_compare

    write_records(synthetic_study({"vanilla": 0.0, "gru": 0.5}, trials=6, seed=0), tmp_path)
    collection = collect(str(tmp_path))
    pd.testing.assert_frame_equal(collection.trials, collect([tmp_path]).trials)
    options = {"resamples": 10}
    pd.testing.assert_frame_equal(
        compare(collection, permutations=20, **options),
        compare(collection.trials, permutations=20, **options),
    )
    pd.testing.assert_frame_equal(
        paired_compare(collection, **options), paired_compare(collection.trials, **options)
    )
    with pytest.raises(TypeError, match=r"expected the trials table, collect\(...\).trials; got"):
        compare([collection.trials])
    from lstm_variants.analysis.importance import importance, importance_by_group

    write_records(synthetic_study({"vanilla": 0.0}, trials=12, seed=1), tmp_path / "more")
    more = collect(tmp_path / "more")
    pd.testing.assert_frame_equal(
        importance(more, trees=4).main, importance(more.trials, trees=4).main
    )
    assert len(importance_by_group(more, trees=4)) == 1


def test_top_mean_skips_missing_results_and_is_nan_without_a_warning_when_all_are_missing():
    # The validation order (0.1, 0.3 best) is not the metric's (1.0, 2.0 best): selecting by the
    # metric itself, on the test set, would give 1.5.
    valid = np.array([[0.5, np.inf, 0.1, 0.3], [np.inf, np.inf, np.inf, np.inf]])
    metric = np.array([[2.0, np.nan, 4.0, 1.0], [np.nan, np.nan, np.nan, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        means = top_mean(valid, metric, count=2)
    assert means[0] == 2.5 and np.isnan(means[1])


def test_permutation_p_is_nan_where_nothing_was_compared():
    """A reference without a single result: no difference, so no p-value (not 1 / (B + 1))."""
    valid, metric = np.array([1.0, 2.0, 3.0]), np.array([9.0, 9.1, 9.2])
    missing_valid, missing_metric = np.full(3, np.inf), np.full(3, np.nan)
    difference, p = top_permutation_test(valid, metric, missing_valid, missing_metric, 0.1, 500)
    assert np.isnan(difference) and np.isnan(p)


def test_relabellings_without_a_result_are_left_out_not_counted_as_less_extreme():
    """One reference trial against a cell with one result among 60: the two results are the same
    to 1e-3, so nothing is significant; counting the undefined relabellings gave p = 0.035."""
    valid_x, metric_x = np.r_[1.0, [np.inf] * 59], np.r_[9.0, [np.nan] * 59]
    _, p = top_permutation_test(valid_x, metric_x, np.array([1.0]), np.array([9.001]), 0.1, 2000)
    assert p > 0.5


def test_a_reference_without_results_gets_no_p_value_in_the_table(tmp_path):
    records = synthetic_study({"vanilla": 0.0, "nfg": 0.0}, trials=20, seed=1)
    for record in records:
        if record["cell"] == "vanilla":
            record["metrics"].update(stopped="diverged", best_valid=None, test_at_best=None)
    write_records(records, tmp_path / "sweep")
    table = compare(collect([tmp_path / "sweep"]).trials, resamples=0, permutations=200)
    assert table["p_adjusted"].isna().all() and (table["marker"] != "worse").all()


def test_the_cli_compares_against_the_studys_own_reference_cell(tmp_path, capsys):
    # A Jozefowicz-style study, run with reference_cell=lstm and without vanilla: compare and
    # plots used to refuse it unless told --reference lstm.
    from lstm_variants.analysis.cli import main

    records = synthetic_study({"lstm": 0.0, "gru": 0.3}, trials=20, seed=1)
    for record in records:
        record["config"]["reference_cell"] = "lstm"
    write_records(records, tmp_path)
    out = tmp_path / "analysis"
    assert main(["compare", str(tmp_path), "--out", str(out), "--resamples", "0"]) == 0
    assert "| lstm (ref.) |" in capsys.readouterr().out
    assert main(["compare", str(tmp_path), "--out", str(out), "--reference", "gru"]) == 0
    assert "| gru (ref.) |" in capsys.readouterr().out


def test_a_study_without_any_result_is_one_error_line_for_every_comparison(tmp_path, capsys):
    # compare printed a row of dashes and exited 0, curves wrote an empty figure, report refused.
    from lstm_variants.analysis.cli import main

    records = synthetic_study({"vanilla": 0.0, "nfg": 0.0}, trials=3, seed=1)
    for record in records:
        record["metrics"].update(stopped="diverged", best_valid=None, test_at_best=None)
        record["curve"] = [{"epoch": 1, "train_loss": None, "valid_loss": None}]
    write_records(records, tmp_path / "sweep")
    sweep, out = str(tmp_path / "sweep"), str(tmp_path / "out")
    for command in ("compare", "paired", "importance", "plots", "report"):
        capsys.readouterr()
        assert main([command, sweep, "--out", out]) == 2, command
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"lstm-variants-analyze: error: none of the 6 trial(s) under {sweep} has a result "
            "(all diverged before their first validation, or none finished)"
        ), command
    assert main(["curves", sweep, "--out", out]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith(
            "lstm-variants-analyze: error: no run here has a finite training or validation result"
        )
    )
    assert main(["collect", sweep, "--out", out]) == 0  # the table lists them all the same


def _trials_frame(cells):
    """A ``collect``-shaped trials table from {cell: (validation, test)}; NaN marks a trial that
    diverged before its first validation (no result, not usable)."""
    rows = []
    for cell, (valid, test) in cells.items():
        for v, t in zip(valid, test, strict=True):
            usable = bool(np.isfinite(v) and np.isfinite(t))
            rows.append(
                {
                    "dataset": "jsb_chorales",
                    "cell": cell,
                    "best_valid": v,
                    "test_at_best": t,
                    "usable": usable,
                    "diverged": not usable,
                }
            )
    return pd.DataFrame(rows)


def test_best_test_is_the_test_result_of_the_best_validation_trial_not_the_best_test():
    # "Test at best validation" (Jozefowicz et al.): picking the trial by its test result would
    # select on the test set and report an optimistic number.
    valid = np.array([2.0, 1.0, 3.0, 1.5])
    test = np.array([8.0, 9.0, 8.5, 8.2])  # the best-validation trial has the worst test value
    table = compare(_trials_frame({"vanilla": (valid, test)}), resamples=0, permutations=10)
    row = table.set_index("cell").loc["vanilla"]
    assert row["best_valid"] == valid.min()
    assert row["best_test"] == test[np.argmin(valid)] == 9.0
    assert row["best_test"] != test.min()


def test_top_fraction_counts_all_trials_including_diverged_ones():
    # The documented rule: the best 10 % are ceil(0.1 * trials) usable trials, trials counting
    # every record, so a cell whose trials diverge keeps as many (good) trials, not fewer.
    # 20 trials, 10 diverged: ceil(0.1 * 20) = 2 (counting only usable ones would give 1).
    rng = np.random.default_rng(0)
    valid = np.r_[rng.uniform(8.0, 10.0, 10), [np.nan] * 10]
    test = np.r_[rng.uniform(8.0, 10.0, 10), [np.nan] * 10]
    table = compare(_trials_frame({"vanilla": (valid, test)}), resamples=0, permutations=10)
    row = table.set_index("cell").loc["vanilla"]
    assert row["trials"] == 20 and row["usable"] == 10 and row["diverged_share"] == 0.5
    assert row["top_n"] == 2
    best_two = np.argsort(valid[:10])[:2]
    assert row["top_mean"] == pytest.approx(test[best_two].mean())
    assert row["top_median"] == pytest.approx(np.median(test[best_two]))


def test_permutation_p_value_counts_the_observed_labelling_and_is_never_zero():
    # p = (1 + #extreme) / (1 + #relabellings): the observed labelling is one of the possible
    # ones, so p >= 1 / (1 + B); without the +1 a huge effect would get p = 0 (anti-conservative).
    # The cell is 100 nats worse on every trial, and validation orders the trials like the test
    # metric: a relabelling reaches |D| only if it restores (or swaps) the two groups exactly,
    # chance 2 / C(100, 50), so no relabelling is extreme and p is exactly 1 / (1 + B).
    rng = np.random.default_rng(0)
    metric_r = rng.normal(8.5, 0.1, 50)
    metric_x = rng.normal(8.5, 0.1, 50) + 100.0
    permutations = 999
    difference, p = top_permutation_test(
        metric_x, metric_x, metric_r, metric_r, 0.1, permutations, seed=0
    )
    top = lambda v: np.sort(v)[:5].mean()  # noqa: E731
    assert difference == pytest.approx(top(metric_x) - top(metric_r))
    assert p == 1.0 / (1.0 + permutations)
    # the same in the table
    table = compare(
        _trials_frame({"vanilla": (metric_r, metric_r), "nfg": (metric_x, metric_x)}),
        resamples=0,
        permutations=permutations,
    )
    assert table.set_index("cell").loc["nfg", "p_permutation"] == 1.0 / (1.0 + permutations)


def test_best_fraction_rounds_up_and_its_spread_is_the_sample_std():
    # 15 trials at 10 %: ceil(1.5) = 2 best trials (truncating would keep 1, and no spread);
    # the std is the sample std (ddof=1) that Welch's test and Hedges' g use.
    valid = np.arange(15, dtype=float)
    test = np.r_[8.0, 9.0, np.linspace(10.0, 11.0, 13)]
    row = compare(_trials_frame({"vanilla": (valid, test)}), resamples=0, permutations=10)
    row = row.set_index("cell").loc["vanilla"]
    assert row["top_n"] == 2
    assert row["top_mean"] == 8.5
    assert row["top_std"] == pytest.approx(np.std([8.0, 9.0], ddof=1))


def test_best_test_ignores_a_trial_with_a_validation_but_no_test_result():
    # A trial whose test metric is missing is not usable, even with the lowest validation: the
    # "test at best validation" is the best usable trial's.
    valid = np.array([0.5, 1.0, 2.0])
    test = np.array([np.nan, 9.0, 8.0])
    table = compare(_trials_frame({"vanilla": (valid, test)}), resamples=0, permutations=10)
    row = table.set_index("cell").loc["vanilla"]
    assert row["best_valid"] == 1.0 and row["best_test"] == 9.0


def test_the_correction_family_is_each_dataset_or_the_whole_table():
    rng = np.random.default_rng(0)
    frames = []
    for dataset, shift in (("jsb_chorales", 0.3), ("nottingham", 0.5)):
        cells = {
            cell: (values + offset, values + offset)
            for cell, offset in (("vanilla", 0.0), ("nfg", shift), ("cifg", shift / 3))
            for values in [rng.normal(8.0, 0.5, 20)]
        }
        frames.append(_trials_frame(cells).assign(dataset=dataset))
    trials = pd.concat(frames, ignore_index=True)
    options = dict(sample="all", test="welch", resamples=0, permutations=10)
    by_dataset = compare(trials, family="dataset", **options)
    whole = compare(trials, family="table", **options)
    tested = by_dataset["p"].notna()
    assert tested.sum() == 4
    np.testing.assert_allclose(whole.loc[tested, "p_adjusted"], holm(whole.loc[tested, "p"]))
    for dataset in ("jsb_chorales", "nottingham"):
        own = tested & (by_dataset["dataset"] == dataset)
        np.testing.assert_allclose(
            by_dataset.loc[own, "p_adjusted"], holm(by_dataset.loc[own, "p"])
        )
    assert (whole.loc[tested, "p_adjusted"] > by_dataset.loc[tested, "p_adjusted"]).any()


def test_all_trials_sample_compares_the_means_of_every_usable_trial():
    # sample='all': the difference (and its permutation test) is over every usable trial, not
    # the best fraction.
    rng = np.random.default_rng(1)
    valid_r, valid_x = rng.normal(8.0, 0.5, 20), rng.normal(8.2, 0.5, 20)
    test_r, test_x = valid_r + rng.normal(0, 0.1, 20), valid_x + rng.normal(0, 0.1, 20)
    test_x[3] = np.nan  # not usable
    table = compare(
        _trials_frame({"vanilla": (valid_r, test_r), "nfg": (valid_x, test_x)}),
        sample="all",
        resamples=0,
        permutations=10,
    )
    row = table.set_index("cell").loc["nfg"]
    assert row["n_compared"] == 19
    assert row["mean_difference"] == pytest.approx(np.nanmean(test_x) - test_r.mean())


def test_the_difference_interval_selects_each_cells_own_best_fraction():
    # 10 cell trials against 100 reference trials: the best 10 % are 1 and 10 trials. The
    # interval resamples each and re-selects its own count by validation, so it covers the
    # difference itself: 60 (the cell's five best-validation trials all test at 60) - 94.5 (the
    # test values 99..90 of the reference's validation ranks 0..9) = -34.5, not 60 - the single
    # best reference trial's. Both cells' test orders run against their validation orders, so
    # re-selecting by the test values (on the test set) would centre it near 50 - 4.5 = 45.5.
    valid_r = np.arange(100, dtype=float)
    valid_x = np.random.default_rng(0).uniform(0, 1, 10)
    test_x = np.where(valid_x < np.median(valid_x), 60.0, 50.0)
    table = compare(
        _trials_frame({"vanilla": (valid_r, 99.0 - valid_r), "nfg": (valid_x, test_x)}),
        resamples=500,
        permutations=10,
    )
    row = table.set_index("cell").loc["nfg"]
    assert row["mean_difference"] == -34.5
    assert row["difference_ci_low"] < -34.5 < row["difference_ci_high"]
    assert row["difference_ci_high"] - row["difference_ci_low"] < 10


def test_a_bootstrap_interval_needs_three_values():
    two = (np.array([1.0, 2.0]),)
    assert all(np.isnan(bootstrap_interval(two, np.mean, resamples=200)))
    three = (np.array([1.0, 2.0, 4.0]),)
    low, high = bootstrap_interval(three, np.mean, resamples=200)
    assert 1.0 <= low < high <= 4.0


def test_only_a_study_of_reruns_compares_all_its_trials_by_default():
    rerun = pd.DataFrame({"rerun_of": ["a", "a", "b"]})
    assert comparison_selection(rerun) == (1.0, "all")
    mixed = pd.DataFrame({"rerun_of": ["a", None, "b"]})
    assert comparison_selection(mixed) == (0.1, "top")
    assert comparison_selection(mixed, fraction=0.5) == (0.5, "top")


def test_a_table_of_all_trials_says_so_in_its_header():
    rng = np.random.default_rng(2)
    valid = rng.normal(8.0, 0.5, 10)
    trials = _trials_frame({"vanilla": (valid, valid), "nfg": (valid + 1, valid + 1)})
    table = compare(trials, fraction=1.0, sample="all", resamples=0, permutations=10)
    header = to_markdown(table).splitlines()[4]
    assert "| all trials: median [95 % CI] |" in header
    top = compare(trials, resamples=0, permutations=10)
    assert "| best 10 %: median [95 % CI] |" in to_markdown(top).splitlines()[4]


def test_the_plots_command_compares_a_rerun_study_on_all_its_trials(tmp_path, monkeypatch):
    """As compare and report do: the figures of a rerun study hatch the cells by the test on all
    trials, not on a best 10 % of one trial a cell."""
    import lstm_variants.analysis.plots as plots
    from lstm_variants.analysis.cli import main

    records = synthetic_study({"vanilla": 0.0, "nfg": 0.3}, trials=10, seed=0)
    for record in records:
        record["config"]["search"]["rerun_of"] = record["trial_id"][:8]
    write_records(records, tmp_path)
    seen = {}
    monkeypatch.setattr(
        plots, "all_figures", lambda trials, curves, table, *_: seen.update(table=table) or {}
    )
    assert main(["plots", str(tmp_path), "--out", str(tmp_path / "analysis")]) == 0
    assert set(seen["table"]["sample"]) == {"all"} and set(seen["table"]["fraction"]) == {1.0}


def test_the_box_plot_shows_every_trial_where_the_table_tested_every_trial(tmp_path, monkeypatch):
    """compare(sample='all') keeps fraction 0.1 for its median column but tests all usable
    trials; the lower box panel, 'the sample the table compared', must show them all."""
    import lstm_variants.analysis.plots as plots

    write_records(synthetic_study({"vanilla": 0.0, "nfg": 0.3}, trials=20, seed=0), tmp_path)
    collection = collect([tmp_path])
    table = compare(collection.trials, sample="all", resamples=0, permutations=20)
    assert set(table["fraction"]) == {0.1}
    figures = {}
    monkeypatch.setattr(plots, "save", lambda figure, stem: figures.setdefault(stem.name, figure))
    plots.all_figures(collection.trials, collection.curves, table, [], tmp_path / "figures")
    lower = figures["box_jsb_chorales"].axes[1]
    assert "best" not in lower.get_title()


def test_the_table_does_not_depend_on_the_order_of_the_trials_when_validation_ties():
    # Trials that tie exactly on validation (a search that drew the same numbers twice) differ
    # on test: which one is "best", and which the bootstrap picks, must come from the trials,
    # not from the order their records were read in.
    rng = np.random.default_rng(3)
    rows = []
    for cell in ("vanilla", "nfg"):
        valid = np.repeat(rng.normal(5.0, 0.1, 10).round(1), 2)  # every value twice
        for number, v in enumerate(valid):
            rows.append(
                {
                    "dataset": "jsb_chorales",
                    "cell": cell,
                    "trial_id": f"{cell}-{number:02d}",
                    "best_valid": v,
                    "test_at_best": rng.normal(6.0, 0.5),
                    "usable": True,
                    "diverged": False,
                }
            )
    trials = pd.DataFrame(rows)
    options = {"fraction": 0.3, "permutations": 200, "resamples": 200}
    expected = compare(trials, **options)
    for seed in range(3):
        shuffled = trials.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        pd.testing.assert_frame_equal(compare(shuffled, **options), expected)


def test_permutation_p_is_the_exact_p_of_every_relabelling_selected_by_validation():
    """Against an independent reference: 5 + 7 trials have C(12, 5) = 792 relabellings, so the
    exact p of D (the best 40 % by validation: 2 and 3 trials) is a loop over all of them. The
    test metric falls as validation rises, so selecting by the test metric instead (in the
    observed D or in the relabellings), or the wrong group's count, gives another D or p."""
    import itertools

    rng = np.random.default_rng(3)
    valid_x, valid_r = rng.uniform(0, 1, 5), rng.uniform(0, 1, 7)
    metric_x = 11.0 - 3.0 * valid_x + rng.normal(0, 0.3, 5)
    metric_r = 10.0 - 3.0 * valid_r + rng.normal(0, 0.3, 7)
    valid, metric = np.r_[valid_x, valid_r], np.r_[metric_x, metric_r]

    def best(group, count):
        return metric[sorted(group, key=lambda i: valid[i])[:count]].mean()

    def statistic(group):
        return best(group, 2) - best([i for i in range(12) if i not in group], 3)

    exact_d = statistic(range(5))
    relabelled = np.array([statistic(g) for g in itertools.combinations(range(12), 5)])
    exact_p = np.mean(np.abs(relabelled) >= abs(exact_d) - 1e-12)
    difference, p = top_permutation_test(valid_x, metric_x, valid_r, metric_r, 0.4, 20000, seed=0)
    assert difference == pytest.approx(exact_d, rel=1e-12)
    assert p == pytest.approx(exact_p, abs=0.015)  # 20,000 relabellings: standard error < 0.004
