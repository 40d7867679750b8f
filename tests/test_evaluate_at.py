"""optimizer.evaluate_at=theta: records read Nesterov SGD's theta_t (Sutskever's, Greff's point),
recovered from the optimizer state, while training goes on from optax's lookahead point."""

import dataclasses

import jax
import numpy as np
import pytest
from test_population import ADDING, assert_same_run, model_for
from test_population_checkpoint import Killed, kill_after_saves

from lstm_variants import population
from lstm_variants.data import load_dataset
from lstm_variants.optimizers import make_member_optimizer
from lstm_variants.population import Member, train_population
from lstm_variants.population_checkpoint import CheckpointSettings
from lstm_variants.train import TrainSettings, make_eval_fn, split_arrays

SETTINGS = TrainSettings(max_epochs=4, patience=10, batch_size=8, eval_batch_size=16)
SGD = {"name": "sgd", "nesterov": True, "learning_rate_scale": "one_minus_momentum"}
THETA = make_member_optimizer(SGD | {"evaluate_at": "theta"})
LOOKAHEAD = make_member_optimizer(SGD)


@pytest.fixture(scope="module")
def adding():
    return load_dataset("adding", **ADDING)


def train(data, optimizer, members, settings=SETTINGS, **kwargs):
    return train_population(
        model_for(data), optimizer, data, settings, members, progress=False, log=None, **kwargs
    )


def test_theta_validates_tests_and_keeps_the_parameters_sutskever_holds(adding, monkeypatch):
    """Each epoch's recorded validation loss is the model's at theta_t = p_t + mu eta (1 - mu) m_t,
    computed here in float64 from the parameters p_t and the trace m_t the run held after the
    epoch; the parameters kept, and the test at best, are theta_t of the best epoch."""
    member = Member(hidden_size=8, seed=0, learning_rate=0.5, momentum=0.9)
    stepped, train_epochs = [], population.train_epochs

    def recording(state, epoch_fn, *args):
        def epoch(*arrays):
            params, opt_state, loss = epoch_fn(*arrays)
            trace = opt_state.inner_state[2][0].trace
            stepped.append(jax.device_get((params, trace)))
            return params, opt_state, loss

        return train_epochs(state, epoch, *args)

    monkeypatch.setattr(population, "train_epochs", recording)
    (run,) = train(adding, THETA, [member])
    assert len(stepped) == len(run.curve) == SETTINGS.max_epochs

    step = member.learning_rate * (1.0 - member.momentum)
    evaluate = jax.jit(make_eval_fn(model_for(adding), adding, SETTINGS.eval_batch_size))

    def loss_at(params, split):
        return float(evaluate(params, *split_arrays(getattr(adding, split)))[0])

    thetas = []
    for params, trace in stepped:
        theta = jax.tree.map(
            lambda p, m: (np.float64(p[0]) + member.momentum * step * np.float64(m[0])).astype(
                np.float32
            ),
            params,
            trace,
        )
        thetas.append(theta)
    at_theta = [loss_at(theta, "valid") for theta in thetas]
    at_lookahead = [loss_at(jax.tree.map(lambda p: p[0], params), "valid") for params, _ in stepped]
    recorded = [entry["valid_loss"] for entry in run.curve]
    np.testing.assert_allclose(recorded, at_theta, rtol=1e-5)
    # The two points are far apart here: reading the lookahead point would fail the line above.
    assert np.max(np.abs(np.asarray(at_lookahead) - at_theta)) > 1e-3

    best = run.metrics["best_epoch"]
    assert best == 1 + int(np.argmin(at_theta))
    for kept, theta in zip(
        jax.tree.leaves(run.params), jax.tree.leaves(thetas[best - 1]), strict=True
    ):
        np.testing.assert_allclose(kept, theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(run.metrics["test_loss"], loss_at(thetas[best - 1], "test"), 1e-5)

    # Training is the same either way: the lookahead run's training losses, bit for bit.
    monkeypatch.setattr(population, "train_epochs", train_epochs)
    (lookahead,) = train(adding, LOOKAHEAD, [member])
    assert [e["train_loss"] for e in lookahead.curve] == [e["train_loss"] for e in run.curve]
    np.testing.assert_allclose([e["valid_loss"] for e in lookahead.curve], at_lookahead, 1e-5)


MIXED = [
    Member(hidden_size=8, seed=0, learning_rate=0.5, momentum=0.9),
    Member(hidden_size=5, seed=1, learning_rate=0.2, momentum=0.0),
    Member(hidden_size=3, seed=2, learning_rate=0.3, momentum=0.5, clip_norm=0.5),
]


@pytest.mark.slow
def test_a_member_read_at_theta_equals_the_same_trial_alone(adding):
    # max_padding_waste=1 pads every member to 8: theta's padded entries must stay 0.
    settings = dataclasses.replace(SETTINGS, max_padding_waste=1.0)
    together = train(adding, THETA, MIXED, settings)
    assert {r.population["padded_hidden_size"] for r in together} == {8}
    lookahead = train(adding, LOOKAHEAD, MIXED, settings)
    for member, result, other in zip(MIXED, together, lookahead, strict=True):
        (alone,) = train(adding, THETA, [member], settings)
        assert_same_run(result, alone)
        valid = [e["valid_loss"] for e in result.curve]
        if member.momentum == 0:  # theta_t = p_t: plain SGD has one point
            assert valid == [e["valid_loss"] for e in other.curve]
        else:
            assert valid != [e["valid_loss"] for e in other.curve]


@pytest.mark.slow
def test_a_killed_population_read_at_theta_resumes_with_the_same_record(
    adding, tmp_path, monkeypatch
):
    settings = dataclasses.replace(SETTINGS, max_epochs=5, max_padding_waste=1.0)
    uninterrupted = train(adding, THETA, MIXED[:2], settings)
    checkpoint = CheckpointSettings(tmp_path, every_seconds=0)
    with monkeypatch.context() as patch:
        saves = kill_after_saves(patch, 2)
        with pytest.raises(Killed):
            train(adding, THETA, MIXED[:2], settings, checkpoint=checkpoint)
    assert saves == [1, 2]
    resumed = train(adding, THETA, MIXED[:2], settings, checkpoint=checkpoint)
    assert [r.population["resumed_after_epoch"] for r in resumed] == [2, 2]
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert_same_run(a, b, rtol=0)
    lookahead = train(adding, LOOKAHEAD, MIXED[:1], settings)[0]
    assert lookahead.curve != uninterrupted[0].curve  # the option took effect
