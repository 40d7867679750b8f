"""Length-bucketed batches: every sequence once per epoch, short batches run short, same numbers."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_variants.batching import bucketed_order, group_steps, length_groups, padding_fraction
from lstm_variants.data import load_dataset
from lstm_variants.model import SequenceModel
from lstm_variants.optimizers import make_member_optimizer
from lstm_variants.population import Member, train_population
from lstm_variants.train import TrainSettings, batch_order, batch_size_notice


def test_an_epoch_visits_every_sequence_once_within_its_groups_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 60, size=37)
    groups = length_groups(lengths, 4)
    steps = group_steps(lengths, groups)
    assert steps == sorted(steps) and steps[-1] == lengths.max()
    order, weights, bucket = bucketed_order(jax.random.key(1), jnp.int32(3), groups, 4)
    visited = np.asarray(order)[np.asarray(weights) > 0]
    assert sorted(visited.tolist()) == list(range(37))
    for row, group, w in zip(
        np.asarray(order), np.asarray(bucket), np.asarray(weights), strict=True
    ):
        assert lengths[row[w > 0]].max() <= steps[group]
    # The schedule (which group each batch comes from) is the epoch's, not the member's ...
    _, _, other_bucket = bucketed_order(jax.random.key(2), jnp.int32(3), groups, 4)
    np.testing.assert_array_equal(bucket, other_bucket)
    # ... while which sequences form the batches is the member's.
    other_order, _, _ = bucketed_order(jax.random.key(2), jnp.int32(3), groups, 4)
    assert not np.array_equal(order, other_order)
    assert padding_fraction(lengths, groups, 4) < padding_fraction(lengths, [np.arange(37)], 4)


def test_a_plain_epoch_weights_every_sequence_once_and_its_filler_zero():
    # 10 sequences in batches of 4: 3 batches, the last completed by 2 filler slots that repeat
    # sequence 0. Weighted, sequence 0 must count once like every other, not 3 times.
    order, weights = (np.asarray(a) for a in batch_order(jax.random.key(3), 10, 4))
    assert order.shape == weights.shape == (3, 4)
    assert weights.sum() == 10
    per_sequence = np.bincount(order.ravel(), weights=weights.ravel(), minlength=10)
    np.testing.assert_array_equal(per_sequence, np.ones(10))
    np.testing.assert_array_equal(weights[-1], [1, 1, 0, 0])  # the filler is the last batch's end


def test_padding_fraction_counts_padded_steps_and_filler_sequences():
    # Lengths 1..5 in two groups, batches of 2:
    #   {1, 2, 3} runs T=3 in ceil(3/2) = 2 batches: 2 * 2 * 3 = 12 steps for 6 real ones
    #   {4, 5}    runs T=5 in 1 batch:               1 * 2 * 5 = 10 steps for 9 real ones
    # 22 computed steps (the filler slot's 3 included) for 15 real ones: 7/22 is padding.
    lengths = np.array([2, 5, 1, 4, 3])
    groups = length_groups(lengths, 2)
    assert [sorted(lengths[g].tolist()) for g in groups] == [[1, 2, 3], [4, 5]]
    assert padding_fraction(lengths, groups, 2) == pytest.approx(7 / 22)
    # One group: ceil(5/2) = 3 batches of 2 at T=5, 30 steps for 15.
    assert padding_fraction(lengths, [np.arange(5)], 2) == pytest.approx(0.5)


@pytest.mark.slow
def test_bucketed_epoch_computes_the_same_loss_and_trains_members_as_alone():
    data = load_dataset("adding", T=20, n_train=40, n_valid=8, n_test=8, seed=0)
    model = SequenceModel(cell="vanilla", hidden_size=6, output_size=1, readout_at="last_step")
    optimizer = make_member_optimizer({"name": "sgd", "nesterov": True})
    base = TrainSettings(max_epochs=1, batch_size=4, eval_batch_size=8)
    frozen = Member(hidden_size=6, seed=0, learning_rate=0.0)

    def run(settings, members):
        return train_population(model, optimizer, data, settings, members, progress=False, log=None)

    plain = run(base, [frozen])[0].curve[0]["train_loss"]
    bucketed_settings = dataclasses.replace(base, length_buckets=3, max_epochs=2)
    members = [frozen, Member(hidden_size=4, seed=1, learning_rate=0.05, momentum=0.9)]
    together = run(bucketed_settings, members)
    # The frozen member's loss, over buckets of padded lengths, is the plain epoch's.
    bucketed = together[0].curve[0]["train_loss"]
    np.testing.assert_allclose(bucketed, plain, rtol=1e-6)  # padded steps never counted

    alone = run(bucketed_settings, members[1:])[0]
    np.testing.assert_allclose(
        [e["train_loss"] for e in together[1].curve],
        [e["train_loss"] for e in alone.curve],
        rtol=1e-5,
    )


def test_the_batch_schedule_is_shuffled_and_drawn_anew_each_epoch():
    # Which group each batch of an epoch comes from is a permutation of the groups' batch
    # counts, drawn from the epoch number: not the groups in order, and not one schedule for
    # every epoch (the training would then meet the lengths in the same order each epoch).
    lengths = np.arange(1, 41)
    groups = length_groups(lengths, 4)  # 4 groups of 10 sequences, 5 batches of 2 each
    epoch_order = jax.jit(lambda epoch: bucketed_order(jax.random.key(0), epoch, groups, 2))
    schedules = [np.asarray(epoch_order(jnp.int32(epoch))[2]) for epoch in range(3)]
    for schedule in schedules:
        np.testing.assert_array_equal(np.bincount(schedule), [5, 5, 5, 5])
        assert not np.array_equal(schedule, np.sort(schedule))
    assert not np.array_equal(schedules[0], schedules[1])
    assert not np.array_equal(schedules[1], schedules[2])


def test_each_group_is_shuffled_with_its_own_draw():
    # Groups of equal size shuffled with one key would all get the same permutation: sequence k
    # of every group at the same place of its batches, epoch after epoch.
    lengths = np.arange(1, 41)
    groups = length_groups(lengths, 4)  # sequences 10b .. 10b + 9 in group b
    order, weights, bucket = bucketed_order(jax.random.key(0), jnp.int32(0), groups, 10)
    assert np.asarray(weights).all()  # one full batch per group, no filler
    patterns = {
        int(b): tuple(np.asarray(row) - 10 * int(b))
        for row, b in zip(np.asarray(order), np.asarray(bucket), strict=True)
    }
    assert sorted(patterns) == [0, 1, 2, 3]
    assert all(sorted(p) == list(range(10)) for p in patterns.values())
    assert len(set(patterns.values())) == 4


def test_a_batch_wider_than_the_training_set_runs_no_empty_filler():
    # 10 sequences at batch_size=1000: one batch of the 10, not of 10 and 990 filler sequences
    # (the same update at 100 times the work and memory). Bucketed, each of 3 groups of at most
    # 4 sequences is one batch of 4.
    order, weights = (np.asarray(a) for a in batch_order(jax.random.key(3), 10, 1000))
    assert order.shape == weights.shape == (1, 10)
    assert weights.sum() == 10 and sorted(order[0].tolist()) == list(range(10))
    lengths = np.arange(1, 11)
    groups = length_groups(lengths, 3)
    order, weights, bucket = bucketed_order(jax.random.key(1), jnp.int32(0), groups, 1000)
    assert order.shape == (3, 4) and np.asarray(weights).sum() == 10
    assert padding_fraction(lengths, groups, 1000) == padding_fraction(lengths, groups, 4)


@pytest.mark.parametrize("length_buckets", [1, 3])
def test_a_batch_wider_than_the_training_set_trains_as_the_whole_set_and_says_so(
    length_buckets, capsys
):
    data = load_dataset("adding", T=12, n_train=12, n_valid=4, n_test=4, seed=0)
    model = SequenceModel(cell="vanilla", hidden_size=4, output_size=1, readout_at="last_step")
    optimizer = make_member_optimizer({"name": "adam"})
    member = Member(hidden_size=4, seed=0, learning_rate=0.01, input_noise=0.1)
    widest = 12 if length_buckets == 1 else 4

    def curve(batch_size):
        settings = TrainSettings(
            max_epochs=2, batch_size=batch_size, length_buckets=length_buckets, eval_batch_size=4
        )
        run = train_population(model, optimizer, data, settings, [member], progress=False, log=None)
        return [entry["train_loss"] for entry in run[0].curve]

    exact = curve(widest)
    assert "batch_size" not in capsys.readouterr().err
    np.testing.assert_allclose(curve(1000), exact, rtol=1e-6)  # the noise draws too
    (notice,) = capsys.readouterr().err.splitlines()
    assert notice.startswith("lstm-variants: note: train.batch_size=1000 is more than the ")
    assert f"one batch of {'all' if length_buckets == 1 else 'up to'} {widest}" in notice


def test_a_stream_datasets_batch_is_its_streams_and_a_batch_size_it_ignores_is_said(tmp_path):
    text = tmp_path / "book.txt"
    text.write_text("to be or not to be, that is the question. " * 40)
    data = load_dataset("text_file", path=str(text), streams=4, window=10)
    assert batch_size_notice(TrainSettings(batch_size=4), data) is None
    notice = batch_size_notice(TrainSettings(batch_size=64), data)
    assert notice == (
        "lstm-variants: note: train.batch_size=64 is not used by this stream dataset: a batch "
        "is one window of each of its 4 streams (dataset.options.streams)"
    )
