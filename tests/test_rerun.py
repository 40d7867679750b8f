"""search=rerun_best: an earlier study's best draws trained again with fresh seeds."""

import importlib
import json
import shutil

import pytest
from test_train import TINY, cli, config

from lstm_variants.analysis.collect import collect
from lstm_variants.analysis.compare import compare, comparison_selection, to_markdown
from lstm_variants.errors import ConfigError
from lstm_variants.experiment import run_trials, trial_identity
from lstm_variants.search import trial_configs

# The learning rate alone: one hidden size keeps each cell's population to one compiled program.
SPACE = {"optimizer.learning_rate": {"distribution": "log_uniform", "low": 1e-3, "high": 3e-2}}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 3-trial random search of vanilla and GRU: the study a rerun takes its draws from."""
    directory = tmp_path_factory.mktemp("source")
    for cell in ("vanilla", "gru"):
        cfg = config(f"cell={cell}", "search=quick", "search.trials=3")
        cfg["search"]["space"] = SPACE
        run_trials(trial_configs(cfg), directory, progress=False)
    return directory, collect([directory]).trials


def rerun(source_dir, *overrides):
    return trial_configs(config("search=rerun_best", f"search.rerun.from={source_dir}", *overrides))


def test_each_seed_reruns_the_best_draw_of_the_jobs_own_cell(source):
    directory, trials = source
    for cell in ("vanilla", "gru"):
        own = trials[trials["cell"] == cell].sort_values("best_valid")
        configs = rerun(directory, f"cell={cell}", "search.trials=3")
        best = own.iloc[0]
        assert [c["seed"] for c in configs] == [1000, 1001, 1002]
        for cfg in configs:
            assert cfg["search"]["rerun_of"] == best["trial_id"]
            assert cfg["search"]["sampled"] == {"optimizer.learning_rate": best["learning_rate"]}
            assert cfg["optimizer"]["learning_rate"] == best["learning_rate"]
        ids = {trial_identity(c) for c in configs}
        assert len(ids) == 3 and not ids & set(own["trial_id"])


def test_more_seeds_or_draws_leave_the_existing_trials_ids_alone(source):
    directory, trials = source
    vanilla = trials[trials["cell"] == "vanilla"].sort_values("best_valid")
    small = rerun(directory, "search.trials=2", "search.rerun.top=2")
    large = rerun(directory, "search.trials=3", "search.rerun.top=3")
    assert [c["search"]["rerun_of"] for c in small] == list(vanilla["trial_id"].iloc[[0, 0, 1, 1]])
    assert {trial_identity(c) for c in small} < {trial_identity(c) for c in large}
    assert len(large) == 9


def test_a_rerun_study_is_compared_on_all_its_trials(source, tmp_path):
    directory, _ = source
    for cell in ("vanilla", "gru"):
        run_trials(rerun(directory, f"cell={cell}", "search.trials=2"), tmp_path, progress=False)
    trials = collect([tmp_path]).trials
    assert trials["rerun_of"].notna().all() and len(trials) == 4
    assert comparison_selection(collect([directory]).trials) == (0.1, "top")
    fraction, sample = comparison_selection(trials)
    assert (fraction, sample) == (1.0, "all")
    table = compare(trials, fraction=fraction, sample=sample, resamples=0, permutations=50)
    assert (table["top_n"] == 2).all()  # both seeds, not the best 10 % of them
    assert "all trials: median" in to_markdown(table) and "on all its usable trials" in to_markdown(
        table
    )
    # A rerun of the rerun takes the same draws again (one per draw, not one per seed).
    again = rerun(tmp_path, "search.rerun.top=2", "search.trials=1")
    assert len({c["search"]["rerun_of"] for c in again}) == len(again)


@pytest.mark.parametrize(
    ("key", "other", "trained"),
    [
        # A study trained with steps of the learning rate (docs/studies/greff_jsb) rerun with
        # Greff's (1 - momentum): its best learning rates would take steps up to 100x smaller
        # than the ones that made them best.
        ("learning_rate_scale", "one_minus_momentum", "none"),
        # A study read at optax's lookahead point rerun at Sutskever's theta_t: the point
        # validated picks the best epoch and is the one tested.
        ("evaluate_at", "theta", "lookahead"),
    ],
)
def test_a_rerun_trains_as_the_trials_it_reruns(source, key, other, trained):
    directory, _ = source
    with pytest.raises(ConfigError) as error:
        rerun(directory, "optimizer=sgd", f"optimizer.{key}={other}")
    assert str(error.value) == (
        f"search.rerun.from: the trials under {directory} were trained with "
        f"optimizer.{key}={trained}, this rerun has {other}: add "
        f"optimizer.{key}={trained} to rerun them as they were trained"
    )
    assert rerun(directory, "optimizer=sgd", f"optimizer.{key}={trained}")


def test_a_record_without_a_setting_counts_as_trained_with_its_identity_neutral_default():
    # search.py needs no JAX, so it cannot import experiment's table: the two must agree, or
    # old records would be read as trained otherwise than their ids say.
    from lstm_variants.experiment import IDENTITY_NEUTRAL
    from lstm_variants.search import RERUN_AS_TRAINED

    assert RERUN_AS_TRAINED == {
        key: IDENTITY_NEUTRAL[("optimizer", key)] for key in RERUN_AS_TRAINED
    }


def test_a_source_trained_two_ways_is_refused_without_sending_the_user_round(source, tmp_path):
    # A study resumed after its command's settings changed holds both: one cell's best draw was
    # trained unscaled, another's scaled, and each job refused the setting the other asked for,
    # so no rerun command ran them all.
    directory, _ = source
    mixed = tmp_path / "mixed"
    shutil.copytree(directory, mixed)
    scaled = ("optimizer=sgd", "optimizer.learning_rate_scale=one_minus_momentum")
    cfg = config("cell=gru", "search=quick", "search.trials=1", *scaled)
    cfg["search"]["space"] = SPACE
    run_trials(trial_configs(cfg), mixed, progress=False)
    for setting in ("none", "one_minus_momentum"):
        with pytest.raises(ConfigError) as error:
            rerun(
                mixed, "cell=vanilla", "optimizer=sgd", f"optimizer.learning_rate_scale={setting}"
            )
        assert str(error.value) == (
            f"search.rerun.from: the trials under {mixed} were trained with "
            "optimizer.learning_rate_scale=none and one_minus_momentum (a study resumed after the "
            "setting changed?), and a rerun takes one: move one setting's records "
            "(records/<trial id>.json and .npz) into a directory of their own and rerun from it"
        )


def test_a_cell_built_with_options_reruns_its_own_best_draws(tmp_path):
    # One study, vanilla with and without +cell.options.forget_bias=1.0: two cells (cell_label).
    from lstm_variants.analysis.synthetic import synthetic_study, write_records
    from lstm_variants.search import best_draws

    plain = synthetic_study({"vanilla": 0.0}, trials=6, seed=0)
    biased = synthetic_study({"vanilla": 0.0}, trials=6, seed=1, cell_options={"forget_bias": 1.0})
    write_records(plain + biased, tmp_path)
    dataset = plain[0]["config"]["dataset"]
    (mine,) = best_draws(str(tmp_path), "vanilla (forget_bias=1.0)", dataset, top=1)
    (theirs,) = best_draws(str(tmp_path), "vanilla", dataset, top=1)
    assert mine["trial_id"] in {record["trial_id"] for record in biased}
    assert theirs["trial_id"] in {record["trial_id"] for record in plain}


def test_a_reruns_jobs_in_one_process_read_the_source_once_until_it_changes(tmp_path, monkeypatch):
    # Every job (one per cell) collected the whole source study again: 8 s each at 5,400 records.
    from lstm_variants.analysis.synthetic import synthetic_study, write_records
    from lstm_variants.search import best_draws

    study = synthetic_study({"vanilla": 0.0, "gru": 0.3}, trials=6, seed=0)
    write_records(study, tmp_path)
    collect_module = importlib.import_module("lstm_variants.analysis.collect")  # not the function
    read, collect = [], collect_module.collect
    monkeypatch.setattr(collect_module, "collect", lambda d: read.append(d) or collect(d))
    dataset = study[0]["config"]["dataset"]
    first = best_draws(str(tmp_path), "vanilla", dataset, top=2)
    assert best_draws(str(tmp_path), "gru", dataset, top=2) and len(read) == 1
    assert best_draws(str(tmp_path), "vanilla", dataset, top=2) == first
    # A record added (or rewritten) since: the study is read again, and the new trial counts.
    better = synthetic_study({"vanilla": -5.0}, trials=1, seed=7)
    write_records(better, tmp_path)
    (best, _) = best_draws(str(tmp_path), "vanilla", dataset, top=2)
    assert len(read) == 2 and best["trial_id"] == better[0]["trial_id"]
    # A file that cannot be read (a link to nothing) is collect's to skip, not a traceback.
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "dangling.json").symlink_to(tmp_path / "gone.json")
    assert best_draws(str(tmp_path), "vanilla", dataset, top=2)[0] == best
    assert len(read) == 3


def test_a_bad_source_is_one_error_line(source, tmp_path):
    directory, _ = source
    with pytest.raises(ConfigError, match="search.rerun.from is not set: name the study"):
        trial_configs(config("search=rerun_best"))
    with pytest.raises(ConfigError, match="search.rerun.from: not a directory"):
        rerun(tmp_path / "nowhere")
    with pytest.raises(
        ConfigError, match="no trial of cell 'cifg' on adding.*cells there: gru, vanilla"
    ):
        rerun(directory, "cell=cifg")
    with pytest.raises(ConfigError, match="no trial of cell 'vanilla' on adding with these"):
        rerun(directory, "dataset.options.T=12")  # the source ran at TINY's T=11
    out = cli(
        *TINY, "search=rerun_best", f"search.rerun.from={tmp_path}", f"hydra.run.dir={tmp_path}",
        "study=single",
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"lstm-variants: error: search.rerun.from is this study's own directory ({tmp_path}); "
        "give the rerun its own study name, e.g. study=single_rerun"
    ]


def test_a_value_given_for_a_key_the_source_drew_is_one_error_line(source, tmp_path, app):
    from lstm_variants.command_line import check_rerun_keeps_given_values

    directory, _ = source
    given = ("search=rerun_best", f"search.rerun.from={directory}", "study=again")
    error = (
        f"lstm-variants: error: optimizer.learning_rate is set on the command line, but the rerun "
        f"trains each draw of {directory} with the optimizer.learning_rate it drew, which would "
        "replace the value: drop optimizer.learning_rate=..., or run a new search"
    )
    out = app(*TINY, *given, "optimizer.learning_rate=0.5", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [error]
    assert not list(tmp_path.glob("records/*.json"))
    # A sweep: the same line, before any job starts (each job used to fail on it).
    sweep = tmp_path / "sweep"
    out = app("-m", *TINY, *given, "cell=vanilla,gru", "optimizer.learning_rate=0.5",
              f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert (out.returncode, out.stderr.strip().splitlines()) == (2, [error])
    assert not sweep.exists()
    # A key the source did not draw is the rerun's to set.
    cfg = config(*given, "train.max_epochs=2")
    drawn = {key for trial in trial_configs(cfg) for key in trial["search"]["sampled"]}
    assert drawn == {"optimizer.learning_rate"}
    check_rerun_keeps_given_values(["train.max_epochs=2"], cfg, drawn)
    check_rerun_keeps_given_values(["train.max_epochs=2"], cfg)  # drawn: read from the source
    # Taking a drawn key out is giving it too: the draw would put it back.
    with pytest.raises(ConfigError, match="optimizer.learning_rate is set on the command line"):
        check_rerun_keeps_given_values(["~optimizer.learning_rate"], cfg, drawn)
    with pytest.raises(ConfigError, match="drop '~optimizer.learning_rate', or run a new"):
        check_rerun_keeps_given_values(["~optimizer.learning_rate"], cfg)
    # The source named by its records/ folder, which a rerun accepts too: the same check.
    by_folder = config("search=rerun_best", f"search.rerun.from={directory / 'records'}")
    with pytest.raises(ConfigError, match="optimizer.learning_rate is set on the command line"):
        check_rerun_keeps_given_values(["optimizer.learning_rate=0.5"], by_folder)


def test_before_any_job_only_what_every_job_would_refuse_is_refused(source, tmp_path):
    from lstm_variants.command_line import check_rerun_keeps_given_values
    from lstm_variants.records import keys_drawn_everywhere

    directory, _ = source
    shutil.copytree(directory / "records", tmp_path / "a" / "records")
    first = json.loads(next((tmp_path / "a" / "records").glob("*.json")).read_text())
    # A record without a result drew nothing (a rerun never takes it): it does not count.
    diverged = first | {"trial_id": "0" * 16, "sampled": {}}
    diverged["metrics"] = first["metrics"] | {"best_valid": None, "test_at_best": None}
    (tmp_path / "a" / "records" / f"{'0' * 16}.json").write_text(json.dumps(diverged))
    assert keys_drawn_everywhere(tmp_path / "a") == {"optimizer.learning_rate"}
    # Beside a study that drew only the input noise, each job's draws may or may not hold the
    # learning rate: the jobs check it, on their own draws.
    other = first | {"trial_id": "1" * 16, "sampled": {"train.input_noise": 0.1}}
    (tmp_path / "b" / "records").mkdir(parents=True)
    (tmp_path / "b" / "records" / f"{'1' * 16}.json").write_text(json.dumps(other))
    assert keys_drawn_everywhere(tmp_path) == set()
    mixed = config("search=rerun_best", f"search.rerun.from={tmp_path}")
    check_rerun_keeps_given_values(["optimizer.learning_rate=0.5"], mixed)


def test_a_sweep_rerunning_into_its_own_study_is_refused_before_hydra_touches_it(tmp_path, app):
    study = tmp_path / "multirun" / "smoke"
    study.mkdir(parents=True)
    (study / "summary.md").write_text("the original summary\n")
    out = app("-m", "cell=vanilla,gru", "search=rerun_best", "search.rerun.from=multirun/smoke",
              "study=smoke", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "lstm-variants: error: search.rerun.from is this study's own directory (multirun/smoke); "
        "give the rerun its own study name, e.g. study=smoke_rerun"
    ]
    assert (study / "summary.md").read_text() == "the original summary\n"
    assert sorted(p.name for p in study.iterdir()) == ["summary.md"]  # no multirun.yaml, no job


def test_a_rerun_without_its_own_study_or_source_is_refused_before_any_job(tmp_path):
    from lstm_variants.command_line import problem, rerun_problem

    source = tmp_path / "multirun" / "greff_jsb_smoke"
    source.mkdir(parents=True)
    sweep = ["-m", "+sweep=greff_jsb", "search=rerun_best"]
    # A folder without records: each of the sweep's 9 jobs would start and say so.
    assert problem([*sweep, f"search.rerun.from={source}", "study=x"]) == (
        f"search.rerun.from: no record under {source} (records/*.json at any depth): give the "
        "earlier study's directory, e.g. search.rerun.from=multirun/greff_jsb"
    )
    (source / "vanilla" / "records").mkdir(parents=True)
    (source / "vanilla" / "records" / "0123456789abcdef.json").write_text("{}")
    # Without study=, the rerun's records would join multirun/greff_jsb, the full study's.
    assert rerun_problem([*sweep, f"search.rerun.from={source}"]) == (
        "search.rerun.from needs a study name of its own for the rerun, e.g. "
        "study=greff_jsb_smoke_rerun: without one its records join the default study's directory"
    )
    assert rerun_problem([*sweep, f"search.rerun.from={source}", "study=smoke_rerun"]) is None
    missing = tmp_path / "nothere"
    assert rerun_problem([*sweep, f"search.rerun.from={missing}", "study=x"]) == (
        f"search.rerun.from: not a directory: {missing} (the earlier study's directory, "
        "e.g. search.rerun.from=multirun/greff_jsb)"
    )
    assert rerun_problem(["cell=vanilla"]) is None


def test_a_rerun_into_its_own_study_is_refused_however_the_path_is_written(tmp_path):
    from lstm_variants.command_line import check_rerun_source

    study = tmp_path / "multirun" / "greff_jsb"
    study.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "multirun")
    for written in (study, tmp_path / "multirun" / "x" / ".." / "greff_jsb",
                    tmp_path / "link" / "greff_jsb"):  # fmt: skip
        cfg = {"search": {"rerun": {"from": str(written)}}, "study": "greff_jsb"}
        with pytest.raises(ConfigError, match="search.rerun.from is this study's own directory"):
            check_rerun_source(cfg, study)
    (study / "vanilla" / "records").mkdir(parents=True)  # a source holds records
    (study / "vanilla" / "records" / f"{'1' * 16}.json").write_text("{}")
    elsewhere = {"search": {"rerun": {"from": str(study)}}, "study": "greff_jsb_rerun"}
    check_rerun_source(elsewhere, tmp_path / "multirun" / "greff_jsb_rerun")


def test_a_source_record_that_cannot_be_read_is_named_not_passed_over(tmp_path, capsys):
    # The best draw's record cut short: the rerun took the second best without a word.
    from lstm_variants.analysis.synthetic import synthetic_study, write_records
    from lstm_variants.search import best_draws

    study = synthetic_study({"vanilla": 0.0}, trials=4, seed=0)
    write_records(study, tmp_path)
    best = min(study, key=lambda record: record["metrics"]["best_valid"])
    (broken,) = tmp_path.rglob(f"{best['trial_id']}.json")
    broken.write_text(broken.read_text()[:40])
    capsys.readouterr()
    (draw, _) = best_draws(str(tmp_path), "vanilla", study[0]["config"]["dataset"], top=2)
    assert draw["trial_id"] != best["trial_id"]
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"lstm-variants: warning: search.rerun.from: 1 record file(s) left out, unreadable: "
        f"{broken} (invalid JSON"
    )
