"""Paired comparison: a small planted cell effect under a huge per-draw spread is found."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lstm_variants.analysis.paired import paired_compare, paired_differences, paired_markdown


def paired_study(effects: dict[str, float], draws: int = 24, seed: int = 0) -> pd.DataFrame:
    """Every cell trained on the same draws; the draw decides most of the metric."""
    rng = np.random.default_rng(seed)
    learning_rates = 10 ** rng.uniform(-6, -2, draws)
    draw_level = 8.5 + 0.8 * (np.log10(learning_rates) + 2) ** 2  # spread of several nats
    rows = []
    for cell, effect in effects.items():
        noise = rng.normal(0.0, 0.05, draws)
        for k in range(draws):
            rows.append(
                {
                    "dataset": "jsb_chorales",
                    "cell": cell,
                    "seed": 0,
                    "sampled.optimizer.learning_rate": learning_rates[k],
                    "test_at_best": draw_level[k] + effect + noise[k],
                    "best_valid": draw_level[k] + effect + noise[k] + 0.01,
                }
            )
    return pd.DataFrame(rows)


def test_paired_test_finds_an_effect_that_an_unpaired_test_misses():
    trials = paired_study({"vanilla": 0.0, "nfg": 0.15, "cifg": 0.0})
    table = paired_compare(trials, resamples=500).set_index("cell")
    assert table.loc["nfg", "marker"] == "worse"
    assert table.loc["nfg", "median_difference"] == pytest.approx(0.15, abs=0.05)
    assert table.loc["nfg", "ci_low"] > 0 and table.loc["nfg", "better_share"] < 0.2
    assert table.loc["cifg", "marker"] == "" and table.loc["cifg", "p_adjusted"] > 0.05
    assert table.loc["nfg", "pairs"] == 24 and table.loc["nfg", "unpaired"] == 0
    nfg = trials[trials.cell == "nfg"]["test_at_best"]
    vanilla = trials[trials.cell == "vanilla"]["test_at_best"]
    assert stats.ttest_ind(nfg, vanilla, equal_var=False).pvalue > 0.3  # lost in the spread


def test_only_matching_draws_with_results_pair():
    trials = paired_study({"vanilla": 0.0, "np": -0.2})
    trials.loc[trials.index[0], "test_at_best"] = np.nan  # vanilla's draw 0 diverged
    other_search = trials[trials.cell == "np"].assign(
        **{"sampled.optimizer.learning_rate": lambda f: f["sampled.optimizer.learning_rate"] * 2}
    )
    differences, unpaired = paired_differences(
        pd.concat([trials, other_search.assign(cell="nog")]), "np", "vanilla"
    )
    assert len(differences) == 23 and unpaired == 1
    _, unmatched = paired_differences(
        pd.concat([trials, other_search.assign(cell="nog")]), "nog", "vanilla"
    )
    assert unmatched == 24  # drawn by another search: nothing pairs
    table = paired_compare(trials, resamples=0)
    assert table.iloc[0]["marker"] == "better" and np.isnan(table.iloc[0]["ci_low"])
    assert "**np**" in paired_markdown(table)


def test_best_draws_are_chosen_by_both_trials_of_the_pair():
    trials = paired_study({"vanilla": 0.0, "nfg": 0.0}, draws=20)
    good = trials["best_valid"] < trials.groupby("cell")["best_valid"].transform("median")
    trials.loc[(trials.cell == "nfg") & good, ["test_at_best", "best_valid"]] += 0.3
    all_draws, _ = paired_differences(trials, "nfg", "vanilla")
    best_half, unpaired = paired_differences(trials, "nfg", "vanilla", fraction=0.5)
    assert len(all_draws) == 20 and len(best_half) == 10 and unpaired == 0
    assert (best_half > 0.2).all()  # exactly the draws where the effect was planted
    table = paired_compare(trials, resamples=0, fraction=0.5)
    assert table.iloc[0]["marker"] == "worse" and table.iloc[0]["fraction"] == 0.5
    assert "jsb_chorales, the best 50 % of draws" in paired_markdown(table)


def test_two_studies_with_the_same_draws_do_not_pair_across():
    one = paired_study({"vanilla": 0.0, "cifg": 0.1}).assign(study="greff_jsb")
    other = paired_study({"vanilla": 0.5}).assign(study="greff_jsb_summed")
    differences, unpaired = paired_differences(pd.concat([one, other]), "cifg", "vanilla")
    assert len(differences) == 24 and unpaired == 0
    assert differences.median() == pytest.approx(0.1, abs=0.05)


def test_runs_not_drawn_by_a_search_do_not_pair_on_their_seed():
    """A grid sweep without 'sampled': every run has seed 0, which alone identifies no draw."""
    trials = paired_study({"vanilla": 0.0, "gru": 0.0}, draws=3).drop(
        columns="sampled.optimizer.learning_rate"
    )
    differences, unpaired = paired_differences(trials, "gru", "vanilla")
    assert differences.empty and unpaired == 3
    assert paired_compare(trials, resamples=0).empty


def test_a_draw_found_twice_in_a_cell_is_not_crossed_with_the_reference():
    trials = paired_study({"vanilla": 0.0, "nfg": 0.1}, draws=6)
    twice = pd.concat([trials, trials[trials.cell == "vanilla"].iloc[:2]], ignore_index=True)
    differences, unpaired = paired_differences(twice, "nfg", "vanilla")
    assert len(differences) == 4 and unpaired == 2


def pairs(cell_test, reference_test, cell_valid=None, reference_valid=None) -> pd.DataFrame:
    """Draw k gives 'nfg' and 'vanilla' the same learning rate; validation defaults to test."""
    columns = {
        "nfg": (cell_test, cell_test if cell_valid is None else cell_valid),
        "vanilla": (reference_test, reference_test if reference_valid is None else reference_valid),
    }
    rows = [
        {
            "dataset": "jsb_chorales",
            "cell": cell,
            "seed": 0,
            "sampled.optimizer.learning_rate": 10.0 ** -(k + 2),
            "test_at_best": float(test[k]),
            "best_valid": float(valid[k]),
        }
        for cell, (test, valid) in columns.items()
        for k in range(len(test))
    ]
    return pd.DataFrame(rows)


def test_a_draw_where_only_one_trial_validates_well_is_not_among_the_best():
    """The best draws are ranked by both trials' validation. In ``paired_study`` the draw decides
    both trials' validation, so ranking by the reference alone (or the cell alone) keeps the same
    draws and test_best_draws_are_chosen_by_both_trials_of_the_pair cannot tell them apart. Here
    draw 1 validates best for the reference only and draw 4 for the cell only: neither is among
    the best half, which is draws 0, 2, 3 by the pair's sum (0 + 2 + 4: d marks the draw)."""
    cell_valid = np.array([1.0, 9.0, 2.0, 3.0, 0.5, 4.0])
    reference_valid = np.array([1.0, 0.5, 2.0, 3.0, 9.0, 4.0])
    d = np.arange(6) / 10.0  # draw k has d = k / 10
    trials = pairs(8.0 + d, np.full(6, 8.0), cell_valid, reference_valid)
    best_half, unpaired = paired_differences(trials, "nfg", "vanilla", fraction=0.5)
    kept_by_sum = np.argsort(cell_valid + reference_valid)[:3]
    assert sorted(kept_by_sum) == [0, 2, 3]
    np.testing.assert_allclose(np.sort(best_half), d[[0, 2, 3]])
    assert unpaired == 0


def test_the_number_of_best_draws_rounds_up():
    # ceil(fraction * pairs): 3 pairs at fraction 0.5 keep 2 (rounding down would keep 1),
    # the two draws with the lowest validation sum.
    valid = np.array([3.0, 1.0, 2.0])
    trials = pairs(8.0 + np.array([0.1, 0.2, 0.3]), np.full(3, 8.0), valid, valid)
    best, _ = paired_differences(trials, "nfg", "vanilla", fraction=0.5)
    assert len(best) == 2
    np.testing.assert_allclose(np.sort(best), [0.2, 0.3])


def test_a_tie_with_the_reference_does_not_count_as_better():
    # better_share: the share of draws where the cell is strictly better (d < 0); a draw with
    # d = 0 is a tie. d = [0, 1] -> 0; d = [-1, 0, 1, 2] -> 1/4.
    table = paired_compare(pairs(np.array([8.0, 9.0]), np.array([8.0, 8.0])), resamples=0)
    assert table.iloc[0]["pairs"] == 2 and table.iloc[0]["better_share"] == 0.0
    d = np.array([-1.0, 0.0, 1.0, 2.0])
    table = paired_compare(pairs(8.0 + d, np.full(4, 8.0)), resamples=0)
    assert table.iloc[0]["better_share"] == 0.25


def test_median_interval_is_the_95_percent_percentile_bootstrap():
    """The exact bootstrap distribution of the median of n = 17 distinct values (odd n: the
    resampled median is an order statistic, and P(median <= x_(j)) = P(at least 9 of 17 draws
    among the j smallest) = binom.sf(8, 17, j / 17)) puts the 2.5 % and 97.5 % quantiles on
    x_(5) and x_(13), and the 5 % / 95 % ones (a 90 % interval) on x_(6) and x_(12). The
    cumulative probabilities sit more than 0.01 from 0.025 and 0.975, ten Monte-Carlo standard
    errors at 20,000 resamples, so the reported interval must be exactly [x_(5), x_(13)]."""
    rng = np.random.default_rng(3)
    d = rng.normal(0.1, 0.3, 17)
    table = paired_compare(pairs(8.0 + d, np.full(17, 8.0)), resamples=20_000, seed=1)
    x = np.sort((8.0 + d) - 8.0)  # the differences as the table computes them
    cdf = stats.binom.sf(8, 17, np.arange(1, 18) / 17)
    low, high = np.searchsorted(cdf, 0.025), np.searchsorted(cdf, 0.975)  # first cdf >= level
    assert (low, high) == (4, 12)  # x_(5), x_(13) (0-based)
    assert np.searchsorted(cdf, 0.05) == 5 and np.searchsorted(cdf, 0.95) == 11  # 90 %: others
    row = table.iloc[0]
    assert row["ci_low"] == pytest.approx(x[low]) and row["ci_high"] == pytest.approx(x[high])
    assert row["ci_low"] < row["median_difference"] < row["ci_high"]


def test_the_direction_comes_from_the_ranks_where_most_draws_tie():
    """10 draws where the cells tie exactly and 8 where the cell is better by 0.1: the median d
    is 0, but every draw that tells the cells apart favours the cell, so it is 'better'."""
    d = np.array([0.0] * 10 + [-0.1] * 8)
    reference = 8.5 + np.arange(18) / 10.0
    table = paired_compare(pairs(reference + d, reference), resamples=0).iloc[0]
    assert table["median_difference"] == 0.0 and table["p_adjusted"] < 0.05
    assert table["marker"] == "better"
    worse = paired_compare(pairs(reference - d, reference), resamples=0).iloc[0]
    assert worse["marker"] == "worse"


def test_a_cell_without_a_matched_draw_is_a_row_of_zero_draws_not_left_out():
    # A rerun study: each cell reruns its own best draw, and noaf's is not vanilla's.
    trials = paired_study({"vanilla": 0.0, "nfg": 0.3}, draws=6)
    other = paired_study({"noaf": 0.0}, draws=6, seed=9)  # other learning rates
    table = paired_compare(pd.concat([trials, other], ignore_index=True), resamples=0)
    rows = table.set_index("cell")
    assert list(rows.index) == ["nfg", "noaf"]
    assert rows.loc["nfg", "pairs"] == 6
    assert rows.loc["noaf", "pairs"] == 0 and rows.loc["noaf", "unpaired"] == 6
    assert np.isnan(rows.loc["noaf", "median_difference"]) and rows.loc["noaf", "marker"] == ""
    line = next(line for line in paired_markdown(table).splitlines() if "noaf" in line)
    assert [cell.strip() for cell in line.split("|")[1:-1]][:2] == ["noaf", "0"]
    assert "nan" not in line
    # A study where nothing pairs stays an empty table (the command says why in one line).
    assert paired_compare(pd.concat([trials[trials.cell == "vanilla"], other]), resamples=0).empty


def test_the_paired_command_on_the_reference_cell_alone_says_so(tmp_path, capsys):
    from lstm_variants.analysis.cli import main
    from lstm_variants.analysis.synthetic import synthetic_study, write_records

    write_records(synthetic_study({"vanilla": 0.0}, trials=4, seed=0), tmp_path)
    assert main(["paired", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "hold only the reference cell 'vanilla'" in error and "search.paired" not in error
    write_records(synthetic_study({"gru": 0.0}, trials=4, seed=5), tmp_path)  # its own draws
    assert main(["paired", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "run the cells with search.paired=true" in capsys.readouterr().err


def test_p_values_are_wilcoxons_holm_adjusted_over_the_cells_and_marked_below_alpha():
    """Three cells against vanilla on 15 draws, p checked against scipy's Wilcoxon and a Holm
    step-down written out here. nfg loses once by 30 and wins 14 times by 1: its mean d is
    positive but its signed ranks say better (raw p 0.005, Holm x3 = 0.014: 'better'). noaf's
    raw p is 0.035 < alpha, but Holm's x2 makes it 0.071: no marker (nor under 2 * alpha)."""
    reference = 8.5 + np.arange(15) / 10.0
    d = {
        "nfg": np.r_[[-1.0] * 14, 30.0],
        "noaf": np.array([1.45, 2.18, -2.15, 0.26, 1.41, 1.75, 1.05, 1.9, 0.69, 0.95, 0.58,
                          -0.67, -0.45, 0.78, -0.18]),
        "cifg": np.r_[np.arange(1, 8), -np.arange(1, 9)] / 10.0,
    }  # fmt: skip
    frames = [pairs(reference + d[cell], reference).replace({"cell": {"nfg": cell}}) for cell in d]
    trials = pd.concat(frames, ignore_index=True).drop_duplicates()
    table = paired_compare(trials, resamples=0).set_index("cell")
    raw = {cell: stats.wilcoxon((reference + d[cell]) - reference).pvalue for cell in d}
    order = sorted(d, key=raw.get)
    holm, running = {}, 0.0
    for j, cell in enumerate(order):  # p_(j) * (m - j), made monotone, capped at 1
        running = max(running, min(1.0, (len(d) - j) * raw[cell]))
        holm[cell] = running
    for cell in d:
        assert table.loc[cell, "p_wilcoxon"] == pytest.approx(raw[cell], rel=1e-12)
        assert table.loc[cell, "p_adjusted"] == pytest.approx(holm[cell], rel=1e-12)
    assert table.loc["nfg", "mean_difference"] > 0 and table.loc["nfg", "marker"] == "better"
    assert raw["noaf"] < 0.05 < table.loc["noaf", "p_adjusted"] < 0.1
    assert table.loc["noaf", "marker"] == "" and table.loc["cifg", "marker"] == ""
