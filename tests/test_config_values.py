"""Config values: every shipped config (and dataset config) passes the rules, and a value of the
wrong kind or out of range is one error naming the key, whichever command reads it."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lstm_variants.cells import make_cell
from lstm_variants.cli import CONFIG_DIR
from lstm_variants.config_values import (
    CHOICES,
    MAX_SEED,
    RULES,
    Rule,
    check_cell_options,
    check_values,
    rule_of_type,
    with_absolute_paths,
)
from lstm_variants.data import DataError, check_dataset_options
from lstm_variants.data.cache import resolve_data_dir
from lstm_variants.errors import ConfigError

SWEEPS = sorted(path.stem for path in (Path(CONFIG_DIR) / "sweep").glob("*.yaml"))
SEARCHES = sorted(path.stem for path in (Path(CONFIG_DIR) / "search").glob("*.yaml"))
# What each search needs besides its name: Greff's space draws a momentum, which only SGD has
# (with Adam: one error line, test_train); a rerun needs the study it reruns.
SEARCH_NEEDS = {"greff": ["optimizer=sgd"], "rerun_best": ["search.rerun.from=multirun/study"]}


def composed(config_name="config", *overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose(config_name, overrides=list(overrides)), resolve=True)


@pytest.mark.parametrize(
    "overrides",
    [[], ["optimizer=sgd", "train=greff"], ["dataset=jsb_chorales"]]
    + [[f"search={name}"] + SEARCH_NEEDS.get(name, []) for name in SEARCHES]
    + [[f"+sweep={name}"] for name in SWEEPS],
)
def test_every_shipped_config_passes(overrides):
    check_values(composed("config", *overrides))


def test_the_diagnose_config_passes_and_is_checked_too():
    cfg = composed("diagnose")
    check_values(cfg)
    cfg["diagnose"]["num_sequences"] = "many"
    with pytest.raises(ConfigError, match=r"^diagnose.num_sequences must be an integer >= 1, got"):
        check_values(cfg)


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("train.max_epochs", "abc", "train.max_epochs must be an integer >= 1, got 'abc'"),
        ("train.max_epochs", 2.0, "an integer >= 1, got 2.0"),
        ("train.batch_size", True, "an integer >= 1, got True"),
        ("model.hidden_size", 0, "model.hidden_size must be an integer in [1, 16777216], got 0"),
        ("model.hidden_size", 2**42, "an integer in [1, 16777216], got 4398046511104"),
        ("optimizer.learning_rate", float("nan"), "a number >= 0, got nan"),
        ("optimizer.learning_rate", "3e-3x", "a number >= 0, got '3e-3x'"),
        ("optimizer.clip_norm", 0.0, "a number > 0 (or null: off), got 0.0"),
        ("train.dropout", 1.0, "a number in [0, 1), got 1.0"),
        ("progress", "yes", "progress must be true or false, got 'yes'"),
        ("search.paired", "maybe", "search.paired must be true or false, got 'maybe'"),
    ],
)
def test_a_bad_value_names_its_key_and_what_it_must_be(key, value, expected):
    cfg = composed("config")
    *parents, last = key.split(".")
    node = cfg
    for parent in parents:
        node = node[parent]
    node[last] = value
    with pytest.raises(ConfigError, match="^" + key) as error:
        check_values(cfg)
    assert expected in str(error.value)


def test_null_is_off_only_where_the_rule_says_so():
    cfg = composed("config", "optimizer.clip_norm=null")
    check_values(cfg)
    cfg["train"]["max_epochs"] = None
    with pytest.raises(ConfigError, match="train.max_epochs"):
        check_values(cfg)


def test_rules_read_values_without_converting_them():
    cfg = composed("config")
    before = repr(cfg)
    check_values(cfg)
    assert repr(cfg) == before
    assert Rule("number", low=0).allows(0) and Rule("number").allows(-1.5)
    assert not Rule("integer").allows(1.0) and not Rule("number").allows(False)
    assert all(isinstance(rule, Rule) for rule in RULES.values())


def test_cell_options_follow_the_cells_own_attribute_types():
    # Annotations are names under `from __future__ import annotations`, types without it.
    assert rule_of_type("bool") is rule_of_type(bool) and rule_of_type("dict") is None
    assert rule_of_type("str | os.PathLike | None").describe() == "a string (or null: the default)"
    assert rule_of_type("int | None").allows(None) and not rule_of_type("int").allows(None)
    vanilla = make_cell("vanilla", 4)
    check_cell_options(vanilla, {"peepholes": False, "forget_bias": 1, "input_activation": "relu"})
    with pytest.raises(
        ConfigError, match="cell.options.peepholes must be true or false, got 'abc'"
    ):
        check_cell_options(vanilla, {"peepholes": "abc"})
    with pytest.raises(ConfigError, match="cell.options.forget_bias must be a number, got 'x'"):
        check_cell_options(vanilla, {"forget_bias": "x"})
    with pytest.raises(ConfigError, match="cell.options.input_activation must be a string, got 1"):
        check_cell_options(vanilla, {"input_activation": 1})
    with pytest.raises(ConfigError, match="cell.options.variant must be an integer"):
        check_cell_options(make_cell("mut1", 4), {"variant": 1.5})


DATASETS = sorted(path.stem for path in (Path(CONFIG_DIR) / "dataset").glob("*.yaml"))


@pytest.mark.parametrize("name", DATASETS)
def test_every_shipped_dataset_config_has_options_of_the_loaders_kinds(name):
    dataset = composed("config", f"dataset={name}")["dataset"]
    check_dataset_options(dataset["name"], dataset.get("options") or {})


def test_a_dataset_option_of_the_wrong_kind_is_one_data_error():
    with pytest.raises(
        DataError, match=r"dataset.options.T of 'adding' must be an integer, got 'a'"
    ):
        check_dataset_options("adding", {"T": "a"})
    with pytest.raises(DataError, match="must be true or false, got 'maybe'"):
        check_dataset_options("jsb_chorales", {"download": "maybe"})
    with pytest.raises(DataError, match="unknown option"):
        check_dataset_options("adding", {"length": 3})


def test_the_choices_of_registries_are_the_implemented_ones():
    from lstm_variants.optimizers import EVALUATION_POINTS, LEARNING_RATE_SCALES, OPTIMIZERS
    from lstm_variants.recurrence import RECURRENCES
    from lstm_variants.train import LOSS_NORMALIZATIONS

    assert set(CHOICES["model.recurrence"]) == set(RECURRENCES)
    assert CHOICES["optimizer.name"] == OPTIMIZERS
    assert CHOICES["optimizer.learning_rate_scale"] == LEARNING_RATE_SCALES
    assert CHOICES["optimizer.evaluate_at"] == EVALUATION_POINTS
    assert CHOICES["train.loss_normalization"] == LOSS_NORMALIZATIONS


def test_model_keys_are_the_keys_of_the_model_config():
    from pathlib import Path

    import yaml

    from lstm_variants.cli import CONFIG_DIR
    from lstm_variants.config_values import INIT_KEYS, MODEL_KEYS

    default = yaml.safe_load((Path(CONFIG_DIR) / "model" / "default.yaml").read_text())
    assert set(default) == set(MODEL_KEYS) and set(default["init"]) == set(INIT_KEYS)


def test_group_keys_are_the_keys_of_the_groups_configs():
    import yaml

    from lstm_variants.config_values import GROUP_KEYS

    diagnose = yaml.safe_load((Path(CONFIG_DIR) / "diagnose.yaml").read_text())["diagnose"]
    for section, node in [("diagnose", diagnose)] + [
        (f"diagnose.{key}", value) for key, value in diagnose.items() if isinstance(value, dict)
    ]:
        assert set(node) == set(GROUP_KEYS[section]), section
    for group, known in GROUP_KEYS.items():
        if group.startswith("diagnose"):
            continue
        keys = set()
        for path in (Path(CONFIG_DIR) / group).glob("*.yaml"):
            node = yaml.safe_load(path.read_text()) or {}
            node = node.get(group, {}) if "# @package _global_" in path.read_text() else node
            keys |= set(node)
        written_by_the_search = {"sampled", "rerun_of", "trial"} if group == "search" else set()
        assert keys == set(known) - written_by_the_search, group


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+optimizer.learning_rat=0.1"], "unknown optimizer option 'learning_rat' (did you mean "
         "learning_rate?)"),
        (["+cell.option.forget_bias=1"], "unknown cell option 'option' (did you mean options?)"),
        (["+dataset.option.T=20"], "unknown dataset option 'option' (did you mean options?)"),
        (["+search.trails=3"], "unknown search option 'trails' (did you mean trials?)"),
        (["optimizer=adam", "+optimizer.nesterov=true"], "optimizer.nesterov (True) is used only "
         "by optimizer=sgd"),
        (["optimizer=adam", "+optimizer.learning_rate_scale=one_minus_momentum"],
         "optimizer.learning_rate_scale (one_minus_momentum) is used only by optimizer=sgd"),
        (["optimizer=sgd", "optimizer.learning_rate_scale=momentum"], "optimizer.learning_rate_"
         "scale must be one of none, one_minus_momentum, got 'momentum'"),
        (["optimizer=adam", "+optimizer.evaluate_at=theta"],
         "optimizer.evaluate_at (theta) is used only by optimizer=sgd"),
        (["optimizer=sgd", "optimizer.nesterov=false", "optimizer.evaluate_at=theta"],
         "optimizer.evaluate_at=theta needs optimizer.nesterov=true (plain momentum SGD holds "
         "theta_t itself)"),
        (["optimizer=sgd", "optimizer.evaluate_at=sutskever"], "optimizer.evaluate_at must be "
         "one of lookahead, theta, got 'sutskever'"),
        (["+search.space.optimizer.learnig_rate={distribution:uniform,low:0.1,high:0.2}"],
         "search.space.optimizer.learnig_rate names no setting (did you mean learning_rate?)"),
        (["+search.space.foo={distribution:uniform,low:0,high:1}"], "search.space.foo names no "
         "setting:"),
        (["+diagnose.foo=1"], "unknown diagnose option 'foo'"),
        (["+diagnose.init_study.gain=[1.0]"], "unknown diagnose.init_study option 'gain' (did "
         "you mean gains?)"),
    ],
)  # fmt: skip
def test_a_key_that_nothing_reads_is_one_line_not_a_default_trained(overrides, message):
    """Recorded and hashed into the trial id, it would train with the default value."""
    config_name = "diagnose" if overrides[0].startswith("+diagnose") else "config"
    with pytest.raises(ConfigError) as error:
        check_values(composed(config_name, *overrides))
    assert message in str(error.value)


def test_a_drawn_key_that_nothing_reads_points_at_the_search_space():
    trial = {
        "optimizer": {"name": "sgd", "learning_rate": 0.1, "learnig_rate": 0.2},
        "search": {"sampled": {"optimizer.learnig_rate": 0.2}},
    }
    with pytest.raises(ConfigError, match="search.space.optimizer.learnig_rate draws it"):
        check_values(trial)
    space = {"cell.options.forget_bias": {"distribution": "uniform", "low": 0, "high": 1}}
    check_values(composed("config") | {"search": {"space": space}})  # the cell checks it


def test_a_study_is_a_folder_name_and_adam_takes_no_momentum():
    check_values({"study": 2024})  # Hydra reads it as a number; multirun/2024 is fine
    check_values({"study": "greff jsb+small"})
    with pytest.raises(ConfigError, match="study=null: give the study a folder name"):
        check_values({"study": None})
    for path in ("../../etc", "a/b", "..", ""):
        with pytest.raises(ConfigError, match="study must be a folder name, not a path"):
            check_values({"study": path})
    drawn = {"space": {"optimizer.momentum": {"distribution": "uniform", "low": 0, "high": 1}}}
    with pytest.raises(ConfigError, match="momentum .drawn by the search. is used only by"):
        check_values({"optimizer": {"name": "adam"}, "search": drawn})
    check_values({"optimizer": {"name": "sgd", "momentum": 0.9}, "search": drawn})
    with pytest.raises(ConfigError, match=r"unknown model option\(s\) \['hiden_size'\]"):
        check_values({"model": {"hidden_size": 3, "hiden_size": 3}})


def test_a_trials_space_from_an_older_record_is_not_checked_again():
    # A rerun's trials carry the space of the study they rerun, drawn under that day's rules
    # (before fields were checked, integer: 1 passed); the drawn values are checked instead.
    space = {
        "model.hidden_size": {"distribution": "log_uniform", "low": 4, "high": 8, "integer": 1}
    }
    with pytest.raises(ConfigError, match="integer must be true or false, got 1"):
        check_values({"search": {"space": space}})
    trial = {
        "model": {"hidden_size": 6},
        "search": {"space": space, "sampled": {"model.hidden_size": 6}},
    }
    check_values(trial)


def test_a_drawn_value_out_of_range_points_at_the_search_space():
    from lstm_variants.search import trial_configs

    cfg = composed("config", "search=quick")
    cfg["search"]["space"]["model"]["hidden_size"] |= {"low": 0.1, "high": 0.4}  # rounds to 0
    (trial,) = trial_configs(cfg | {"search": cfg["search"] | {"trials": 1}})
    assert trial["model"]["hidden_size"] == 0
    with pytest.raises(
        ConfigError, match=r"^model.hidden_size must be an integer in \[1, 16777216\]"
    ) as error:
        check_values(trial)
    assert str(error.value).endswith(
        "the search draws it from search.space.model.hidden_size: change that distribution's fields"
    )
    cfg = composed("config", "search=quick", "model.hidden_size=0")  # typed, not drawn
    with pytest.raises(ConfigError, match="set it with model.hidden_size=VALUE"):
        check_values(cfg)


@pytest.mark.parametrize("data_dir", ["", "  "])
def test_a_blank_data_dir_is_unset_rather_than_the_current_directory(data_dir, monkeypatch):
    # `data_dir=` on the command line, or LSTM_VARIANTS_DATA_DIR exported empty.
    monkeypatch.setenv("LSTM_VARIANTS_DATA_DIR", "/data/here")
    assert with_absolute_paths({"data_dir": data_dir})["data_dir"] is None
    assert resolve_data_dir(data_dir) == Path("/data/here")


def test_trial_seeds_may_reach_the_largest_seed_but_not_pass_it():
    # trial i trains with seed + i: 8 trials from MAX_SEED - 7 end exactly at MAX_SEED.
    check_values({"seed": MAX_SEED - 7, "search": {"trials": 8}})
    with pytest.raises(ConfigError, match=f"gives trial seeds up to {MAX_SEED + 1}, past"):
        check_values({"seed": MAX_SEED - 6, "search": {"trials": 8}})
    rerun = {"trials": 3, "rerun": {"from": "multirun/study", "first_seed": MAX_SEED - 2}}
    check_values({"seed": 0, "search": rerun})
    with pytest.raises(
        ConfigError, match="search.rerun.first_seed=4294967294 with search.trials=3"
    ):
        check_values(
            {"seed": 0, "search": rerun | {"rerun": rerun["rerun"] | {"first_seed": MAX_SEED - 1}}}
        )


def test_features_is_not_a_cell_option():
    # A cell's width is model.hidden_size; +cell.options.features would set it behind its back.
    with pytest.raises(ConfigError, match="cell 'vanilla' has no option 'features'") as error:
        check_cell_options(make_cell("vanilla", 4), {"features": 8}, name="vanilla")
    valid = str(error.value).split("valid options: ")[1].split(", ")
    assert "features" not in valid and "parent" not in valid and "peepholes" in valid
    # bfloat16 failed in the scan (carry and output of other dtypes), float64 trained float32.
    assert "param_dtype" not in valid
    with pytest.raises(ConfigError, match="param_dtype is not a training setting"):
        check_cell_options(make_cell("vanilla", 4), {"param_dtype": "bfloat16"}, name="vanilla")
