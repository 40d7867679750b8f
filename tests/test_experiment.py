"""How run_trials plans its populations and reports its progress, without training: configs that
share all but their member keys form populations of at most population_size, a saved population
trains again whole, and the progress line counts, ranks and projects as it says."""

import json
from pathlib import Path
from types import SimpleNamespace

from lstm_variants import experiment
from lstm_variants.experiment import planned_populations, shared_part


def trial(cell, hidden_size, seed, population_size=2):
    """The parts of a trial config that planning reads."""
    return {
        "cell": {"name": cell},
        "model": {"hidden_size": hidden_size},
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "train": {"max_epochs": 3},
        "seed": seed,
        "population_size": population_size,
        "search": {"trial": seed},
    }


CFGS = [trial("vanilla", 8, 0), trial("vanilla", 16, 1), trial("vanilla", 8, 2)]
CFGS += [trial("gru", 8, 0), trial("gru", 12, 1)]


def record_paths(folder):
    return [Path(folder) / "records" / f"trial{index}.json" for index in range(len(CFGS))]


def test_configs_differing_in_member_keys_and_search_index_share_populations_of_the_size_asked(
    tmp_path,
):
    assert shared_part(CFGS[0]) == shared_part(CFGS[1]) != shared_part(CFGS[3])
    work = planned_populations(CFGS, record_paths(tmp_path), {0, 1, 2, 3, 4}, tmp_path)
    assert sorted(work.values()) == [[[0, 1], [2]], [[3, 4]]]
    # Only what is missing trains; without population_size, one population per shared part.
    unlimited = [{**cfg, "population_size": 0} for cfg in CFGS]
    work = planned_populations(unlimited, record_paths(tmp_path), {0, 2, 4}, tmp_path)
    assert sorted(work.values()) == [[[0, 2]], [[4]]]


def save_listing(folder, name, trials):
    listing = Path(folder) / "checkpoints" / name / "trials.json"
    listing.parent.mkdir(parents=True)
    listing.write_text(json.dumps({"trials": trials, "first_saved": 1.0}))


def test_a_saved_population_trains_again_whole_and_the_rest_around_it(tmp_path):
    paths = record_paths(tmp_path)
    # Saved by an earlier run that grouped trials 0 and 2: they train together again, from it.
    save_listing(tmp_path, "a", [paths[2].stem, paths[0].stem])
    # Saved with a trial this run does not train, or larger than population_size now: not used.
    save_listing(tmp_path, "b", [paths[3].stem, "another-trial"])
    work = planned_populations(CFGS, paths, {0, 1, 2, 3, 4}, tmp_path)
    assert sorted(work.values()) == [[[0, 2], [1]], [[3, 4]]]
    save_listing(tmp_path, "c", [paths[3].stem, paths[4].stem])
    smaller = [{**cfg, "population_size": 1} for cfg in CFGS]
    work = planned_populations(smaller, paths, {0, 1, 2, 3, 4}, tmp_path)
    assert sorted(work.values()) == [[[0], [1], [2]], [[3], [4]]]


def test_the_progress_line_counts_ranks_and_projects(capsys, monkeypatch):
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(experiment, "time", SimpleNamespace(time=lambda: clock.now))

    def record(best_valid, stopped="early"):
        return {"metrics": {"best_valid": best_valid, "stopped": stopped}}

    line = experiment._ProgressLine(total=4, skipped=6)  # 6 configs, 2 of them recorded
    line.recorded_elsewhere(1)  # one more recorded by another process meanwhile
    clock.now += 60
    line.update([record(0.5)])
    assert capsys.readouterr().err == (
        "trials: 1/3 done (3 already recorded, 0 diverged), best valid 0.5, 60 s, ETA 2.0 min\n"
    )
    clock.now += 30
    line.update([record(None, "diverged"), record(0.25)])
    assert capsys.readouterr().err == (
        "trials: 3/3 done (3 already recorded, 1 diverged), best valid 0.25, 90 s, ETA 0 s\n"
    )
    alone = experiment._ProgressLine(total=1, skipped=1)  # a single trial: no line
    alone.update([record(0.5)])
    assert capsys.readouterr().err == ""
