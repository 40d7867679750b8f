"""importance: our functional ANOVA is exact on trees, recovers known variance shares through the
forest, and agrees with optuna's fANOVA on main effects."""

import re

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.importance import FanovaImportanceEvaluator
from sklearn.tree import DecisionTreeRegressor

from lstm_variants.analysis.collect import AnalysisError, collect
from lstm_variants.analysis.importance import (
    fit_surrogate,
    hyperparameter_columns,
    importance,
    infer_scale,
    leaf_boxes,
    tree_anova,
    variance_fractions,
)
from lstm_variants.analysis.synthetic import synthetic_study, write_records

CUBE = np.array([[-1.0, 1.0]] * 3)


def _fractions(x, y, bounds, **forest):
    surrogate = fit_surrogate(x, y, ["a", "b", "c"], ["linear"] * 3, bounds, **forest)
    main, pairs = variance_fractions(surrogate)
    shares = dict(zip(main["parameter"], main["fraction"], strict=True))
    shares |= {
        a + b: f
        for a, b, f in zip(
            pairs["parameter_a"], pairs["parameter_b"], pairs["fraction"], strict=True
        )
    }
    return shares


def test_decomposition_is_exact_for_a_tree():
    """A tree fitted to a function on a 6 x 5 x 4 grid of cell centres reproduces it exactly, so
    its fANOVA must equal the discrete ANOVA of the grid (up to float32 thresholds)."""
    rng = np.random.default_rng(0)
    shape = (6, 5, 4)
    values = rng.normal(size=shape) + 2.0 * np.arange(6)[:, None, None]
    centres = np.meshgrid(*[(np.arange(k) + 0.5) / k for k in shape], indexing="ij")
    x = np.column_stack([c.ravel() for c in centres])
    tree = DecisionTreeRegressor(random_state=0).fit(x, values.ravel())
    anova = tree_anova(leaf_boxes(tree.tree_, np.array([[0.0, 1.0]] * 3)), [(0, 1)])
    mean = values.mean()
    mains = [values.mean(axis=tuple(j for j in range(3) if j != i)) - mean for i in range(3)]
    pair = values.mean(axis=2) - mean - mains[0][:, None] - mains[1][None, :]
    np.testing.assert_allclose(anova.mean, mean, atol=1e-6)
    np.testing.assert_allclose(anova.variance, values.var(), atol=1e-6)
    np.testing.assert_allclose(anova.main, [m.var() for m in mains], atol=1e-6)
    np.testing.assert_allclose(anova.pairs[(0, 1)], pair.var(), atol=1e-6)


def test_recovers_the_shares_of_a_known_function():
    """f = 3a + b^2 + ac with a, b, c ~ U[-1, 1] (Var a = 1/3, Var b^2 = 1/5 - 1/9 = 4/45):
    f_a = 3a (V = 3), f_b = b^2 - 1/3 (V = 4/45), f_c = 0 (E[a] = 0), f_ac = ac (V = 1/9),
    total 3 + 4/45 + 1/9 = 3.2, so shares a 0.9375, b 0.0278, ac 0.0347, everything else 0.

    Tolerance 0.02 absolute: a forest smooths small effects towards zero (with 1000 noiseless
    trials b^2 comes out near 0.015; it approaches 0.0278 as trials grow, 0.022 at 4000), and
    spreads a little variance into pairs that do not exist (< 0.01)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1000, 3))
    a, b, c = x.T
    shares = _fractions(x, 3 * a + b**2 + a * c, CUBE, trees=32, seed=0)
    exact = {"a": 0.9375, "b": 4 / 45 / 3.2, "c": 0.0, "ab": 0.0, "ac": 1 / 9 / 3.2, "bc": 0.0}
    for term, share in exact.items():
        assert shares[term] == pytest.approx(share, abs=0.02), term
    assert shares["ac"] > 3 * max(shares["ab"], shares["bc"])  # the planted pair stands out


def test_recovers_a_strong_planted_interaction():
    """f = 2a + 3b^2 + 4ac on U[-1, 1]: V_a = 4/3, V_b = 9 * 4/45 = 0.8, V_ac = 16/9, total 3.911;
    shares a 0.341, b 0.205, ac 0.455. Tolerance 0.08 on 600 trials (the same smoothing bias)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (600, 3))
    a, b, c = x.T
    shares = _fractions(x, 2 * a + 3 * b**2 + 4 * a * c, CUBE, trees=32, seed=0)
    total = 4 / 3 + 0.8 + 16 / 9
    assert shares["ac"] == pytest.approx(16 / 9 / total, abs=0.08)
    assert shares["a"] == pytest.approx(4 / 3 / total, abs=0.08)
    assert shares["b"] == pytest.approx(0.8 / total, abs=0.08)
    assert max(shares["c"], shares["ab"], shares["bc"]) < 0.05


def test_main_effects_match_optuna_fanova():
    """optuna's FanovaImportanceEvaluator fits sklearn's forest with the same settings and seed, so
    on the same trials (same column order, same raw scale and bounds) both must give the same main
    effects to rounding (1e-9); with a different forest seed ours stays within 0.02 (tree-to-tree
    Monte Carlo spread, about 0.005 here); the ranking strong > middle > weak is the same."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (120, 3))
    y = 5 * x[:, 0] + 4 * (x[:, 1] - 0.5) ** 2 + 0.3 * x[:, 2] + rng.normal(0, 0.1, 120)
    study = optuna.create_study()
    distributions = {name: FloatDistribution(0.0, 1.0) for name in "abc"}
    study.add_trials(
        [
            optuna.trial.create_trial(
                value=float(v),
                params=dict(zip("abc", map(float, row), strict=True)),
                distributions=distributions,
            )
            for row, v in zip(x, y, strict=True)
        ]
    )
    theirs = FanovaImportanceEvaluator(n_trees=16, max_depth=64, seed=0).evaluate(study)
    bounds = np.array([[0.0, 1.0]] * 3)
    ours = _fractions(x, y, bounds, trees=16, max_depth=64, seed=0)
    other_seed = _fractions(x, y, bounds, trees=16, max_depth=64, seed=5)
    for name in "abc":
        assert ours[name] == pytest.approx(theirs[name], abs=1e-9)
        assert other_seed[name] == pytest.approx(theirs[name], abs=0.02)
    assert (
        sorted("abc", key=lambda n: -theirs[n])
        == sorted("abc", key=lambda n: -ours[n])
        == ["a", "b", "c"]
    )


def test_study_importance_uses_sampled_values_and_log_scales(tmp_path):
    """On Greff-like synthetic records, the learning rate explains most variance, then hidden
    size; momentum and input noise almost nothing (the planted response); the marginal of the
    learning rate is lowest near 10^-2.5 (the planted optimum)."""
    records = synthetic_study({"vanilla": 0.0, "cifg": 0.0}, trials=150, seed=0)
    write_records(records, tmp_path)
    trials = collect([tmp_path]).trials
    result = importance(trials, trees=16)
    main = result.main.set_index("parameter")["fraction"]
    assert main.idxmax() == "sampled.optimizer.learning_rate" and main.iloc[0] > 0.5
    assert main["sampled.model.hidden_size"] > 5 * main["sampled.optimizer.momentum"]
    # scales and ranges come from the records' search space (config['search']['space'])
    assert result.surrogate.scales == ["log", "log", "one_minus_log", "linear"]
    np.testing.assert_allclose(
        result.surrogate.bounds, [[-6, -2], [np.log10(20), np.log10(200)], [-2, 0], [0, 1]]
    )
    curve = result.marginals["sampled.optimizer.learning_rate"]
    best = curve["value"].iloc[curve["mean"].idxmin()]
    assert 10**-3.3 < best < 10**-1.9
    assert (curve["std"] >= 0).all()
    # without `sampled`, the numeric hyperparameters are used
    plain = trials.drop(columns=[c for c in trials if c.startswith("sampled.")])
    assert set(hyperparameter_columns(plain)) == {
        "learning_rate",
        "hidden_size",
        "momentum",
        "input_noise",
    }


def test_scale_inference():
    assert infer_scale("optimizer.learning_rate", pd.Series([1e-5, 1e-3])) == "log"
    assert infer_scale("optimizer.momentum", pd.Series([0.5, 0.99])) == "one_minus_log"
    assert infer_scale("train.input_noise", pd.Series([0.0, 0.9])) == "linear"
    assert infer_scale("x", pd.Series([1.0, 500.0])) == "log"
    assert infer_scale("optimizer.name", pd.Series(["sgd", "adam"])) == "categorical"


def test_the_importance_command_warns_where_the_forest_predicts_nothing(tmp_path, capsys):
    from lstm_variants.analysis.cli import main

    records = synthetic_study({"vanilla": 0.0}, trials=40, seed=4)
    noise = np.random.default_rng(0).normal(9.0, 0.1, len(records))
    for record, value in zip(records, noise, strict=True):  # a metric no hyperparameter explains
        record["metrics"].update(best_valid=float(value), test_at_best=float(value))
    write_records(records, tmp_path)
    assert main(["importance", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "the forest does not predict the metric" in warning[0]


def test_pairs_that_never_interact_are_exact_zeros_in_their_own_order():
    """f is a step in a alone: every tree makes one split, on a, so the other main effects and
    every pair's variance are zero. Computed as differences of sums they come out as +-1e-17
    noise, whose order varies with the platform, unless snapped to 0."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(64, 3))
    y = np.where(x[:, 0] > 0.2, 1.0, 0.0)
    main, pairs = variance_fractions(fit_surrogate(x, y, ["a", "b", "c"], ["linear"] * 3, CUBE))
    assert main["parameter"].tolist() == ["a", "b", "c"]
    assert main["fraction"].tolist()[1:] == [0.0, 0.0]
    assert pairs["fraction"].tolist() == [0.0, 0.0, 0.0]
    assert list(zip(pairs["parameter_a"], pairs["parameter_b"], strict=True)) == [
        ("a", "b"), ("a", "c"), ("b", "c")
    ]  # fmt: skip


@pytest.mark.parametrize("scale", ["linear", "log", "one_minus_log"])
def test_marginal_values_are_the_raw_values_of_their_sampled_scale(scale):
    # A marginal curve is computed on the sampled scale and labelled with raw values: momentum
    # 0.99 is log10(1 - 0.99) = -2 on Greff's scale, and must come back as 0.99.
    from lstm_variants.analysis.importance import from_unit, to_unit

    raw = np.array([0.01, 0.5, 0.9, 0.99])
    expected = {"linear": raw, "log": np.log10(raw), "one_minus_log": np.log10(1 - raw)}[scale]
    np.testing.assert_allclose(to_unit(raw, scale), expected)
    np.testing.assert_allclose(from_unit(expected, scale), raw)


def test_given_bounds_win_over_the_search_space_and_never_cut_off_a_trial(tmp_path):
    records = synthetic_study({"vanilla": 0.0}, trials=40, seed=0)
    write_records(records, tmp_path)
    trials = collect([tmp_path]).trials
    noise = trials["sampled.train.input_noise"]
    assert noise.min() < 0.2 and noise.max() > 0.5
    result = importance(
        trials,
        trees=2,
        bounds={
            "sampled.optimizer.learning_rate": (1e-7, 1e-2),  # wider than the space's 1e-6
            "sampled.train.input_noise": (0.2, 0.5),  # narrower than the trials: widened
        },
    )
    bounds = dict(zip(result.surrogate.names, result.surrogate.bounds.tolist(), strict=True))
    np.testing.assert_allclose(bounds["sampled.optimizer.learning_rate"], [-7, -2])
    np.testing.assert_allclose(bounds["sampled.train.input_noise"], [noise.min(), noise.max()])


def test_trials_without_a_finite_target_are_counted_as_excluded(tmp_path):
    write_records(synthetic_study({"vanilla": 0.0}, trials=30, seed=0), tmp_path)
    trials = collect([tmp_path]).trials
    trials.loc[trials.index[:3], "test_at_best"] = np.nan
    trials.loc[trials.index[3], "test_at_best"] = np.inf
    unusable = int((~np.isfinite(trials["test_at_best"].to_numpy(float))).sum())
    assert unusable >= 4  # the four made here, and any trial that diverged
    result = importance(trials, trees=2)
    assert (result.trials, result.excluded) == (30 - unusable, unusable)


def test_every_category_covers_the_same_share_of_the_space():
    # Three categories coded 0, 1, 2 on [-0.5, 2.5]: each is a third of the range, so E[f] over
    # the search space weighs them equally (on [0, 2] the middle one would weigh twice the ends).
    frame = pd.DataFrame(
        {"optimizer": list("abc") * 8, "y": [0.0, 0.0, 3.0] * 8, "b": np.linspace(0, 1, 24)}
    )
    result = importance(
        frame, target="y", parameters=["optimizer"], scales={"optimizer": "categorical"}, trees=4
    )
    assert result.surrogate.categories == {0: ["a", "b", "c"]}
    np.testing.assert_allclose(result.surrogate.bounds, [[-0.5, 2.5]])
    for boxes in result.surrogate.trees:
        assert tree_anova(boxes, []).mean == pytest.approx(1.0)  # (0 + 0 + 3) / 3


def test_a_point_on_a_leaf_edge_belongs_to_the_cell_above():
    # Leaves are boxes [lower, upper): the edge x = 1 is in the cell [1, 2), not in [0, 1).
    from lstm_variants.analysis.importance import Grid

    grid = Grid(edges=np.array([0.0, 1.0, 2.0]), weights=np.array([0.5, 0.5]), start=0, stop=0)
    assert grid.cell_of(np.array([-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])).tolist() == [
        0, 0, 0, 1, 1, 1, 1
    ]  # fmt: skip


def test_the_spread_over_trees_is_the_standard_deviation_of_each_trees_fractions():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (200, 3))
    y = 2 * x[:, 0] + x[:, 1] ** 2 + x[:, 0] * x[:, 2]
    surrogate = fit_surrogate(x, y, ["a", "b", "c"], ["linear"] * 3, CUBE, trees=6, seed=0)
    main, pairs = variance_fractions(surrogate)
    per_tree = [tree_anova(boxes, [(0, 1), (0, 2), (1, 2)]) for boxes in surrogate.trees]
    fractions = np.array([t.main / t.variance for t in per_tree])
    by_name = main.set_index("parameter")
    np.testing.assert_allclose(by_name.loc[["a", "b", "c"], "fraction"], fractions.mean(axis=0))
    np.testing.assert_allclose(by_name.loc[["a", "b", "c"], "fraction_std"], fractions.std(axis=0))
    ac = np.array([t.pairs[(0, 2)] / t.variance for t in per_tree])
    row = pairs[(pairs["parameter_a"] == "a") & (pairs["parameter_b"] == "c")].iloc[0]
    assert row["fraction"] == pytest.approx(ac.mean()) and row["fraction_std"] == pytest.approx(
        ac.std()
    )


def test_higher_order_is_what_main_effects_and_pairs_leave_and_never_negative():
    from types import SimpleNamespace

    from lstm_variants.analysis.importance import Importance, importance_table

    def result(mains, pair):
        main = pd.DataFrame({"parameter": ["x.a", "x.b"], "fraction": mains, "fraction_std": 0.0})
        pairs = pd.DataFrame(
            {
                "parameter_a": ["x.a"],
                "parameter_b": ["x.b"],
                "fraction": [pair],
                "fraction_std": 0.0,
            }
        )
        return Importance(
            {"dataset": "d"},
            "test_at_best",
            10,
            0,
            main,
            pairs,
            {},
            SimpleNamespace(r2_out_of_bag=0.9),
        )

    table = importance_table([result([0.5, 0.2], 0.1), result([0.7, 0.3], 0.05)])
    rest = table[table["kind"] == "rest"]["fraction"].tolist()
    assert rest == [pytest.approx(0.2), 0.0]
    assert table["term"].tolist()[:3] == ["a", "b", "a x b"]


def test_scale_inference_at_its_edges():
    # Two decades make a log scale, one does not; a momentum of exactly 1 has no log10(1 - m).
    assert infer_scale("x", pd.Series([1.0, 100.0])) == "log"
    assert infer_scale("x", pd.Series([1.0, 50.0])) == "linear"
    assert infer_scale("optimizer.momentum", pd.Series([0.5, 1.0])) == "linear"
    assert infer_scale("optimizer.learning_rate", pd.Series([0.0, 1e-3])) == "linear"


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("nope", "'nope' is not a column"),
        ("fixed", "'fixed' has one value (0.9) in all 24 trials (dataset=jsb): it explains"),
        ("gaps", "'gaps' has no value in 3 of the 24 trials (dataset=jsb); leave it out"),
    ],
)
def test_a_given_parameter_that_cannot_explain_anything_is_one_error_line(column, message):
    """Given by name, a parameter that is missing, constant or has gaps is refused in one line
    (it was an IndexError, a TypeError or a KeyError deep in the forest or the marginals)."""
    frame = pd.DataFrame(
        {
            "a": np.linspace(0, 1, 24),
            "fixed": 0.9,
            "gaps": [np.nan] * 3 + list(np.linspace(0, 1, 21)),
            "y": np.linspace(0, 1, 24) ** 2,
        }
    )
    with pytest.raises(AnalysisError, match=re.escape(message)):
        importance(frame, target="y", parameters=["a", column], group={"dataset": "jsb"}, trees=2)


def test_a_target_of_names_is_refused_as_such_not_as_too_few_trials(tmp_path, capsys):
    from lstm_variants.analysis.cli import main

    write_records(synthetic_study({"vanilla": 0.0}, trials=20, seed=0), tmp_path)
    out = str(tmp_path / "out")
    assert main(["importance", str(tmp_path), "--out", out, "--target", "cell"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        "lstm-variants-analyze: error: --target 'cell' is not a numeric column of these "
        "records; use one of: test_at_best, best_valid"
    )


def test_importance_of_a_rerun_study_warns_that_its_draws_are_not_random(tmp_path, capsys):
    from lstm_variants.analysis.cli import main

    records = synthetic_study({"vanilla": 0.0}, trials=12, seed=1)
    write_records(records, tmp_path / "search")
    assert main(["importance", str(tmp_path / "search"), "--out", str(tmp_path / "a")]) == 0
    assert "rerun" not in capsys.readouterr().err
    for record in records:  # the same records, as a rerun would write them
        record["config"].setdefault("search", {})["rerun_of"] = record["trial_id"]
    write_records(records, tmp_path / "rerun")
    assert main(["importance", str(tmp_path / "rerun"), "--out", str(tmp_path / "b")]) == 0
    assert "warning: these records are a rerun" in capsys.readouterr().err
