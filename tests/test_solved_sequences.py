"""The solved fraction counts real sequences, each judged at its scored steps only: not the
question steps of an arithmetic sequence (IGNORE), nor the filler that completes a batch."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lstm_variants.data import load_dataset
from lstm_variants.data.base import IGNORE, Split
from lstm_variants.losses import frame_weights
from lstm_variants.model import SequenceModel
from lstm_variants.train import make_eval_fn, solved_sequences, split_arrays


def test_perfect_answers_solve_arithmetic_whatever_the_ignored_steps_hold():
    data = load_dataset("arithmetic", max_digits=2, n_train=4, n_valid=4, n_test=4, seed=0)
    targets, lengths = jnp.asarray(data.valid.targets), jnp.asarray(data.valid.lengths)
    ignored = np.asarray(targets) == IGNORE
    assert ignored.any(axis=1).all()  # every sequence has question steps (and padding) unscored
    # Logits that pick the target at every scored step, and class 0 where there is no target.
    perfect = jax.nn.one_hot(jnp.maximum(targets, 0), data.output_size)
    weights = frame_weights(lengths, targets.shape[1], data.target_at, targets)
    solved = solved_sequences(perfect, targets, weights, data)
    np.testing.assert_array_equal(solved, [1.0, 1.0, 1.0, 1.0])

    # One wrong answer digit unsolves its sequence alone.
    first_scored = int(np.flatnonzero(~ignored[2])[0])
    wrong_class = (int(targets[2, first_scored]) + 1) % data.output_size
    wrong = perfect.at[2, first_scored].set(jax.nn.one_hot(wrong_class, data.output_size))
    np.testing.assert_array_equal(
        solved_sequences(wrong, targets, weights, data), [1.0, 1.0, 0.0, 1.0]
    )


def test_the_solved_fraction_counts_real_sequences_not_the_filler_of_the_last_batch():
    # 5 validation sequences in evaluation batches of 4: the second batch holds 3 filler
    # sequences with target 0. A model whose parameters are all zero predicts exactly 0, so it
    # solves (|error| < 0.04) just the 2 real sequences whose target is planted at 0, and would
    # "solve" every filler sequence too, were they counted: 2/5, not 5/5.
    data = load_dataset("adding", T=11, n_train=8, n_valid=5, n_test=4, seed=0)
    targets = data.valid.targets.copy()
    targets[[1, 3]] = 0.0
    valid = Split(data.valid.inputs, targets, data.valid.lengths)
    data = dataclasses.replace(data, valid=valid)
    by_hand = np.abs(targets[:, 0]) < data.tolerance
    assert by_hand.tolist() == [False, True, False, True, False]

    model = SequenceModel("vanilla", 4, data.output_size, readout_at=data.target_at)
    params = model.init(jax.random.key(0), *split_arrays(valid)[::2])
    zero = jax.tree.map(jnp.zeros_like, params)
    loss, solved = make_eval_fn(model, data, batch_size=4)(zero, *split_arrays(valid))
    assert float(solved) == np.float32(by_hand.sum()) / np.float32(5)  # 2/5 in float32
    # The loss is over the real sequences too: the mean squared target.
    np.testing.assert_allclose(float(loss), np.mean(targets**2), rtol=1e-6)
