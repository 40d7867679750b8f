"""Dropout on the non-recurrent connections (Zaremba et al. 2014), per population member."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference_cells import reference_layer
from test_population import ADDING, SETTINGS, assert_same_run, train

from lstm_variants.data import load_dataset
from lstm_variants.errors import ConfigError
from lstm_variants.model import SequenceModel, dropout
from lstm_variants.population import Member
from lstm_variants.train import TrainSettings

B, T, H, VOCAB, OUT = 3, 6, 5, 11, 4


def test_dropout_drops_at_the_rate_and_keeps_the_mean():
    x = jnp.ones((400_000,))
    dropped = dropout(x, 0.3, jax.random.key(0))
    assert abs(float(jnp.mean(dropped == 0.0)) - 0.3) < 0.005
    assert abs(float(jnp.mean(dropped)) - 1.0) < 0.01
    np.testing.assert_allclose(np.unique(dropped), [0.0, 1 / 0.7], rtol=1e-6)


def test_dropout_rate_is_traced_per_member_and_zero_is_exact():
    x = jax.random.normal(jax.random.key(1), (8, 1000))
    rates = jnp.array([0.0, 0.5])
    out = jax.vmap(dropout, in_axes=(None, 0, None))(x, rates, jax.random.key(2))
    np.testing.assert_array_equal(out[0], x)
    assert abs(float(jnp.mean(out[1] == 0.0)) - 0.5) < 0.02


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_a_narrow_float_model_takes_a_per_member_dropout_rate(dtype):
    """A float32 rate array (one value per member, as the trainer passes it) promoted the dropped
    bfloat16 inputs to float32, and the scan refused the carry's changed dtype (a TypeError
    traceback); a Python-float rate ran. Both now keep the parameters' dtype, equal values."""
    model = SequenceModel("vanilla", H, OUT, num_layers=2, param_dtype=dtype)
    x, lengths = jnp.ones((B, T, 2)), jnp.array([T, 4, 2])
    variables = model.init(jax.random.key(0), x, lengths)
    key = jax.random.key(1)
    as_array = model.apply(variables, x, lengths, dropout_rate=jnp.float32(0.5), dropout_key=key)
    as_float = model.apply(variables, x, lengths, dropout_rate=0.5, dropout_key=key)
    assert as_array.dtype == dtype
    np.testing.assert_array_equal(as_array, as_float)


def _drop_reference(x, rate, key):
    """Dropout of a (B, T, D) array whose masks the model draws time-major, feature j's (T, B)
    mask from ``fold_in(key, j)``."""
    columns = []
    for j in range(x.shape[2]):
        keep = jax.random.uniform(jax.random.fold_in(key, j), (x.shape[1], x.shape[0])) >= rate
        columns.append(jnp.where(keep.T, x[:, :, j] / (1 - rate), 0.0))
    return jnp.stack(columns, axis=-1)


def test_a_features_mask_does_not_depend_on_the_features_after_it():
    key = jax.random.key(5)
    wide = dropout(jnp.ones((7, 3, 8)), 0.5, key)
    narrow = dropout(jnp.ones((7, 3, 3)), 0.5, key)
    np.testing.assert_array_equal(wide[..., :3], narrow)


def test_dropout_acts_on_every_layer_input_and_the_readout_never_the_recurrence():
    model = SequenceModel("vanilla", H, OUT, num_layers=2, vocab_size=VOCAB)
    tokens = jax.random.randint(jax.random.key(3), (B, T), 0, VOCAB)
    lengths = jnp.array([T, 4, 2])
    params = model.init(jax.random.key(0), tokens, lengths)
    rate, key = 0.4, jax.random.key(7)
    got = model.apply(params, tokens, lengths, dropout_rate=rate, dropout_key=key)

    p = params["params"]
    hidden = p["embed"]["embedding"][tokens]
    for layer in range(2):
        hidden = _drop_reference(hidden, rate, jax.random.fold_in(key, layer))
        hidden = reference_layer("lstm", {}, p[f"layer_{layer}"], hidden, lengths, H)
    hidden = _drop_reference(hidden, rate, jax.random.fold_in(key, 2))
    want = hidden @ p["readout"]["kernel"] + p["readout"]["bias"][None, None]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    plain = model.apply(params, tokens, lengths)
    assert not np.allclose(got, plain)
    at_zero = model.apply(params, tokens, lengths, dropout_rate=0.0, dropout_key=key)
    np.testing.assert_array_equal(at_zero, plain)


@pytest.fixture(scope="module")
def adding():
    return load_dataset("adding", **ADDING)


@pytest.mark.slow
def test_dropout_is_per_member_and_a_member_without_it_trains_as_alone(adding):
    settings = TrainSettings(**{**SETTINGS.__dict__, "max_epochs": 2})
    plain = Member(hidden_size=6, seed=4, learning_rate=0.1)
    dropped = Member(hidden_size=6, seed=4, learning_rate=0.1, dropout=0.5)
    a, b = train(adding, [plain, dropped], settings=settings)
    assert a.curve[0]["train_loss"] != b.curve[0]["train_loss"]
    # The plain member in a population with dropout compiled in equals a run without any.
    assert_same_run(a, train(adding, [plain], settings=settings)[0])
    # The same seed draws the same masks: a dropout run is reproducible.
    again = train(adding, [dropped], settings=settings)[0]
    assert [e["train_loss"] for e in again.curve] == [e["train_loss"] for e in b.curve]


def test_a_padded_member_with_dropout_trains_as_it_does_alone(adding):
    # Its masks over the padded width agree with a stand-alone run's on its own units.
    settings = TrainSettings(**{**SETTINGS.__dict__, "max_padding_waste": 1.0, "max_epochs": 2})
    small = Member(hidden_size=3, seed=2, learning_rate=0.2, dropout=0.3)
    big = Member(hidden_size=8, seed=0, learning_rate=0.1)
    together = train(adding, [big, small], settings=settings)
    assert together[1].population["padded_hidden_size"] == 8
    assert_same_run(together[1], train(adding, [small], settings=settings)[0])


def test_dropout_outside_zero_to_one_is_a_config_error():
    with pytest.raises(ConfigError, match=r"train.dropout must be in \[0, 1\), got 1.0"):
        Member(hidden_size=4, seed=0, learning_rate=0.1, dropout=1.0)
