"""A population of trials trains each member exactly as it would train alone."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_variants import population
from lstm_variants.data import load_dataset
from lstm_variants.data.base import SequenceDataset, Split
from lstm_variants.data.music import piano_roll_dataset
from lstm_variants.hidden_padding import bucket_waste, hidden_buckets, wasted_work
from lstm_variants.losses import metric_value
from lstm_variants.model import SequenceModel
from lstm_variants.optimizers import make_member_optimizer
from lstm_variants.population import (
    Member,
    estimate_member_bytes,
    members_per_chunk,
    train_population,
)
from lstm_variants.train import TrainSettings, make_eval_fn, split_arrays

ADDING = dict(T=11, n_train=48, n_valid=16, n_test=16, seed=0)
SETTINGS = TrainSettings(max_epochs=4, patience=10, batch_size=8, eval_batch_size=16)


@pytest.fixture(scope="module")
def adding():
    return load_dataset("adding", **ADDING)


def model_for(data, cell="vanilla", hidden=8, **options):
    return SequenceModel(
        cell=cell,
        hidden_size=hidden,
        output_size=data.output_size,
        readout_at=data.target_at,
        cell_options=tuple(sorted(options.items())),
    )


def train(data, members, cell="vanilla", settings=SETTINGS, model=None, **kwargs):
    cfg = {"name": "sgd", "nesterov": True}
    return train_population(
        model or model_for(data, cell),
        make_member_optimizer(cfg),
        data,
        settings,
        members,
        progress=False,
        log=None,
        **kwargs,
    )


def assert_same_run(a, b, rtol=1e-5):
    """The same curve, metrics (the test results too) and parameters: within ``rtol`` (and a
    small atol), or, with ``rtol=0``, bit for bit."""

    def same(got, want, what):
        if rtol == 0:
            np.testing.assert_array_equal(got, want, err_msg=what)
        else:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-7, err_msg=what)

    assert [e.keys() for e in a.curve] == [e.keys() for e in b.curve]
    assert [e["epoch"] for e in a.curve] == [e["epoch"] for e in b.curve]
    for key in ("train_loss", "valid_loss", "valid_solved"):
        if a.curve and key in a.curve[0]:
            same([e[key] for e in a.curve], [e[key] for e in b.curve], key)
    assert a.metrics.keys() == b.metrics.keys()
    for key, value in a.metrics.items():
        if isinstance(value, float):  # losses, metric values and solved fractions
            same(value, b.metrics[key], key)
        else:  # the metric's name, epochs, the reason it stopped, None for no result
            assert value == b.metrics[key], key
    flat_a, flat_b = jax.tree.leaves(a.params), jax.tree.leaves(b.params)
    assert [x.shape for x in flat_a] == [x.shape for x in flat_b]
    for x, y in zip(flat_a, flat_b, strict=True):
        if rtol == 0:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-6)


MIXED = [
    Member(hidden_size=8, seed=0, learning_rate=0.1, momentum=0.9),
    Member(hidden_size=5, seed=1, learning_rate=0.03, momentum=0.5, input_noise=0.3),
    Member(hidden_size=3, seed=2, learning_rate=0.2, clip_norm=0.5, forget_bias=1.0),
    Member(hidden_size=7, seed=3, learning_rate=0.05, momentum=0.99, clip_value=0.01),
]


@pytest.mark.parametrize("cell", ["vanilla", "gru", "fgr"])
@pytest.mark.slow
def test_member_equals_the_same_trial_alone(adding, cell):
    # max_padding_waste=1 puts every size into one bucket padded to 8: the hardest case.
    settings = TrainSettings(**{**SETTINGS.__dict__, "max_padding_waste": 1.0})
    # vanilla checks every kind of member; the other families, the largest and smallest padding.
    members = MIXED if cell == "vanilla" else [MIXED[0], MIXED[2]]
    members = [
        m if cell != "gru" else Member(**{**m.__dict__, "forget_bias": None}) for m in members
    ]
    together = train(adding, members, cell=cell, settings=settings)
    assert {r.population["padded_hidden_size"] for r in together} == {8}
    for member, result in zip(members, together, strict=True):
        (alone,) = train(adding, [member], cell=cell, settings=settings)
        assert alone.population["padded_hidden_size"] == member.hidden_size
        assert_same_run(result, alone)


def random_piano_rolls(seed=0):
    """A tiny multilabel dataset of random chords: a bounded loss, so huge learning rates stay
    finite (the adding task's squared error overflows past a learning rate of about 10)."""
    rng = np.random.default_rng(seed)
    pitches = np.arange(21, 109)

    def piece():
        steps = rng.integers(8, 16)
        return [tuple(rng.choice(pitches, rng.integers(0, 4), replace=False)) for _ in range(steps)]

    splits = {"train": 8, "valid": 4, "test": 4}
    return piano_roll_dataset(
        "random", {s: [piece() for _ in range(n)] for s, n in splits.items()}, "rng"
    )


@pytest.mark.slow
def test_in_float64_a_padded_member_equals_its_run_alone_at_huge_learning_rates():
    # In float32 these runs differ by up to 1e-4 relative in single entries (an entry near 0 at a
    # learning rate of 5e4 even by 0.6): the population's batched and zero-padded products add
    # in another order, and such steps amplify that as they do a one-ulp change of the initial
    # weights. In float64 that rounding is 1e-16, so more is the padding leaking into a member
    # (through a second layer's input, the readout, the optimizer, the clipping): padding with
    # 1e-6 instead of 0 fails here, and passes the float32 test above.
    data = random_piano_rolls()
    settings = dataclasses.replace(SETTINGS, max_padding_waste=1.0, batch_size=4)
    members = [
        Member(hidden_size=8, seed=0, learning_rate=1e2, momentum=0.9),
        Member(hidden_size=5, seed=1, learning_rate=1e3, momentum=0.9, clip_norm=1e3),
        Member(hidden_size=3, seed=2, learning_rate=5e4, momentum=0.5),
    ]
    with jax.enable_x64(True):
        model = SequenceModel(
            cell="vanilla", hidden_size=8, output_size=data.output_size, num_layers=2,
            param_dtype=jnp.float64,
        )  # fmt: skip
        together = train(data, members, settings=settings, model=model)
        alone = [train(data, [member], settings=settings, model=model)[0] for member in members]
    assert {r.population["padded_hidden_size"] for r in together} == {8}
    for result, single in zip(together, alone, strict=True):
        assert result.metrics["stopped"] == single.metrics["stopped"] == "max_epochs"
        np.testing.assert_allclose(
            [e["train_loss"] for e in result.curve], [e["train_loss"] for e in single.curve],
            rtol=1e-9,
        )  # fmt: skip
        for x, y in zip(
            jax.tree.leaves(result.params), jax.tree.leaves(single.params), strict=True
        ):
            assert x.dtype == np.float64
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)


def test_results_hold_each_members_own_shapes(adding):
    settings = TrainSettings(**{**SETTINGS.__dict__, "max_padding_waste": 1.0, "max_epochs": 1})
    results = train(adding, MIXED[:3], settings=settings)
    for member, result in zip(MIXED[:3], results, strict=True):
        assert result.params["params"]["layer_0"]["R_z"].shape == (member.hidden_size,) * 2
        assert result.params["params"]["readout"]["kernel"].shape == (member.hidden_size, 1)


def test_a_diverging_member_leaves_the_others_alone(adding):
    others = [MIXED[0], Member(hidden_size=8, seed=5, learning_rate=0.02)]
    exploding = Member(hidden_size=8, seed=9, learning_rate=1e6, momentum=0.9)
    with_it = train(adding, [others[0], exploding, others[1]])
    without = train(adding, others)
    assert with_it[1].metrics["stopped"] == "diverged"
    assert with_it[1].metrics["epochs_run"] < SETTINGS.max_epochs
    # Not bit for bit: 3 members and 2 are differently shaped programs (per device, too), whose
    # float32 sums may round differently in the last bit.
    for a, b in zip([with_it[0], with_it[2]], without, strict=True):
        assert_same_run(a, b)


def test_a_member_whose_validation_loss_is_not_finite_stops_as_diverged(adding, monkeypatch):
    # A planted NaN validation loss for member 1 from epoch 2 on, its training loss still finite
    # (as when only the validation split overflows): it must stop there as diverged, not train on
    # to max_epochs or stop "early" later, and keep epoch 1 as its best.
    import lstm_variants.population as population

    members = [MIXED[0], Member(hidden_size=8, seed=5, learning_rate=0.02)]
    clean = train(adding, members)
    train_epochs, epochs = population.train_epochs, []

    def nan_valid_for_member_1(state, epoch_fn, evaluate_valid, *args):
        def validate(*arrays):
            epochs.append(len(epochs) + 1)
            loss, solved = evaluate_valid(*arrays)
            loss = np.array(loss)
            if epochs[-1] >= 2:
                loss[1] = np.nan
            return loss, solved

        return train_epochs(state, epoch_fn, validate, *args)

    monkeypatch.setattr(population, "train_epochs", nan_valid_for_member_1)
    kept, diverged = train(adding, members)
    assert diverged.metrics["stopped"] == "diverged"
    assert diverged.metrics["epochs_run"] == 2 and diverged.metrics["best_epoch"] == 1
    assert math.isfinite(diverged.curve[1]["train_loss"]) and math.isnan(
        diverged.curve[1]["valid_loss"]
    )
    assert diverged.curve[0] == clean[1].curve[0]
    assert diverged.metrics["best_valid_loss"] == clean[1].curve[0]["valid_loss"]
    assert clean[1].metrics["stopped"] == "max_epochs"
    assert_same_run(kept, clean[0], rtol=0)  # the other member is undisturbed, bit for bit
    assert kept.metrics == clean[0].metrics


@pytest.mark.slow
def test_sharded_over_two_devices_equals_one_device(adding):
    if jax.default_backend() != "cpu" and len(jax.local_devices()) < 2:
        pytest.skip(f"needs two {jax.default_backend()} devices (on the CPU conftest.py makes two)")
    assert len(jax.local_devices()) >= 2
    # Three members on two devices: the population is padded with a frozen filler member. One
    # member has dropout: its masks come from its own key on whichever device it lands.
    members = [Member(**{**m.__dict__, "hidden_size": 6}) for m in MIXED[:3]]
    members[1] = Member(**{**members[1].__dict__, "dropout": 0.3})
    one = train(adding, members, num_devices=1)
    two = train(adding, members, num_devices=2)
    assert {r.population["devices"] for r in two} == {2}
    for a, b in zip(one, two, strict=True):
        assert_same_run(a, b)


@pytest.mark.parametrize("asked", [-1, 1000])
def test_devices_that_are_not_there_are_one_config_error(adding, asked):
    # 1000 trained on the devices there were (and recorded that), -1 was an IndexError.
    members = [Member(hidden_size=4, seed=0, learning_rate=0.1)]
    with pytest.raises(population.ConfigError, match=f"num_devices={asked}, but JAX sees"):
        train(adding, members, num_devices=asked)


def test_too_little_memory_trains_in_chunks_with_the_same_results(adding, monkeypatch):
    members = [Member(hidden_size=6, seed=s, learning_rate=0.05) for s in range(3)]
    whole = train(adding, members)
    member_bytes = estimate_member_bytes(model_for(adding).clone(hidden_size=6), adding, SETTINGS)
    room = 1.5 * member_bytes / 2**30  # for one member at a time
    monkeypatch.setenv("LSTM_VARIANTS_DEVICE_MEMORY_GB", str(room))
    chunked = train(adding, members, num_devices=1)
    assert [r.population["size"] for r in chunked] == [1, 1, 1]
    for a, b in zip(whole, chunked, strict=True):
        assert_same_run(a, b)


@pytest.mark.parametrize(
    "member_bytes, members, devices, chunk",
    [
        (6, 3, 2, 2),  # one member per device fits: not all 3, which puts 2 on one device
        (5, 3, 2, 3),  # two per device fit: all 3
        (4, 5, 2, 4),  # two per device (8 of 10 bytes): 5 would put 3 (12 bytes) on one
        (3, 5, 1, 3),  # one device: three fit
        (11, 4, 2, 2),  # none fits: one per device, never zero
    ],
)
def test_a_chunk_never_puts_more_on_one_device_than_fits(
    monkeypatch, member_bytes, members, devices, chunk
):
    monkeypatch.setattr("lstm_variants.population.device_memory_bytes", lambda device: 10)
    got = members_per_chunk(member_bytes, members, ["device"] * devices)
    assert got == chunk
    per_device = -(-got // devices)  # a chunk is split evenly, padded to a multiple of devices
    assert per_device * member_bytes <= 10 or per_device == 1


def test_the_memory_estimate_budgets_the_longest_evaluation_split():
    def dataset(test_steps, test_sequences):
        def split(n, t):
            x = np.zeros((n, t, 3), np.float32)
            return Split(x, x, np.full(n, t, np.int32))

        return SequenceDataset(
            name="toy", input_size=3, output_size=3, target="multilabel", target_at="every_step",
            metric="nll_per_step", train=split(64, 10), valid=split(1, 10),
            test=split(test_sequences, test_steps),
        )  # fmt: skip

    model = SequenceModel(cell="vanilla", hidden_size=8, output_size=3)
    settings = TrainSettings(batch_size=16, eval_batch_size=256)
    small = estimate_member_bytes(model, dataset(10, 1), settings)
    longer = estimate_member_bytes(model, dataset(1000, 1), settings)
    larger = estimate_member_bytes(model, dataset(1000, 256), settings)
    width = 16 * 8 + 3  # floats per step and sequence
    assert longer - small == 4 * width * (1000 - 10)  # the test split's 990 extra steps
    assert larger - longer == 4 * width * 1000 * 255  # and its 255 extra sequences


@pytest.mark.slow
def test_a_finite_loss_past_perplexitys_range_leaves_the_population_alone():
    # e^nats overflows a float above ~709.8 nats: math.exp raised and ended the whole population.
    assert metric_value(800.0, "perplexity") == math.inf
    assert metric_value(2.0, "perplexity") == pytest.approx(math.e**2)
    rng = np.random.default_rng(0)
    vocab, n, steps = 20, 32, 10
    tokens = rng.integers(0, vocab, size=(n, steps)).astype(np.int32)
    split = Split(tokens, np.roll(tokens, -1, axis=1), np.full(n, steps, np.int32))
    data = SequenceDataset(
        name="toy_words", input_size=vocab, output_size=vocab, target="categorical",
        target_at="every_step", metric="perplexity", train=split, valid=split, test=split,
    )  # fmt: skip
    model = SequenceModel(cell="vanilla", hidden_size=4, output_size=vocab, vocab_size=vocab)
    healthy = Member(hidden_size=4, seed=0, learning_rate=10.0)
    wild = Member(hidden_size=4, seed=0, learning_rate=1e4)  # valid loss ~2,400 nats, finite
    settings = TrainSettings(max_epochs=2, patience=5, batch_size=8)
    sgd = make_member_optimizer({"name": "sgd"})
    results = train_population(model, sgd, data, settings, [healthy, wild], progress=False)
    assert results[0].metrics["best_valid"] < 100
    assert 709.8 < results[1].metrics["best_valid_loss"] < math.inf
    assert results[1].metrics["best_valid"] == math.inf
    alone = train_population(model, sgd, data, settings, [healthy], progress=False)[0]
    assert_same_run(results[0], alone)


def test_patience_counts_epochs_without_gain_and_the_test_uses_the_best_parameters(adding):
    settings = TrainSettings(max_epochs=6, patience=3, batch_size=8, eval_batch_size=16)
    member = Member(hidden_size=4, seed=0, learning_rate=0.3, momentum=0.9)  # peaks at epoch 2
    (result,) = train(adding, [member], settings=settings)
    metrics = result.metrics
    assert metrics["stopped"] == "early" and metrics["best_epoch"] < metrics["epochs_run"]
    assert metrics["epochs_run"] == metrics["best_epoch"] + settings.patience
    # The returned parameters are the best epoch's, not the last one's: evaluated with the
    # trainer's own evaluation they give the recorded best validation loss (the curve's entry at
    # the best epoch) and the recorded test loss. The last epoch's parameters give another
    # validation loss (0.054 test loss at the best epoch, 0.122 at the last).
    evaluate = jax.jit(make_eval_fn(model_for(adding, hidden=4), adding, 16))
    best_valid, _ = evaluate(result.params, *split_arrays(adding.valid))
    at_best = result.curve[metrics["best_epoch"] - 1]["valid_loss"]
    assert metrics["best_valid_loss"] == at_best == min(e["valid_loss"] for e in result.curve)
    assert result.curve[-1]["valid_loss"] > at_best * 1.01  # the last epoch's really differ
    np.testing.assert_allclose(float(best_valid), at_best, rtol=1e-6)
    best_test, _ = evaluate(result.params, *split_arrays(adding.test))
    np.testing.assert_allclose(metrics["test_loss"], float(best_test), rtol=1e-6)


def test_early_stopping_is_per_member(adding):
    settings = TrainSettings(**{**SETTINGS.__dict__, "max_epochs": 12, "patience": 2})
    frozen = Member(hidden_size=8, seed=0, learning_rate=1e-12)  # flat validation: stops early
    learning = Member(hidden_size=8, seed=1, learning_rate=0.1, momentum=0.9)
    stopped, running = train(adding, [frozen, learning], settings=settings)
    assert stopped.metrics["stopped"] == "early"
    assert stopped.metrics["epochs_run"] < running.metrics["epochs_run"]
    (alone,) = train(adding, [frozen], settings=settings)
    assert_same_run(stopped, alone)


def test_buckets_bound_the_wasted_work():
    sizes = [20, 25, 31, 44, 60, 90, 120, 160, 200, 200]
    for max_waste in (0.0, 0.3, 0.6):
        buckets = hidden_buckets(sizes, 88, max_waste)
        assert sorted(i for _, members in buckets for i in members) == list(range(len(sizes)))
        for size, members in buckets:
            assert size == max(sizes[i] for i in members)
            assert all(wasted_work(sizes[i], size, 88) <= max_waste for i in members)
        assert bucket_waste(buckets, sizes, 88) <= max_waste
    assert len(hidden_buckets(sizes, 88, 0.0)) == len(set(sizes))
    assert len(hidden_buckets(sizes, 88, 0.999)) == 1
    assert wasted_work(100, 100, 88) == 0.0
    assert math.isclose(wasted_work(50, 100, 0), 0.75)


@pytest.mark.slow
def test_truncated_bptt_carries_the_state_but_not_the_gradient():
    """One epoch over a stream equals hand-written truncated BPTT with plain SGD."""
    from lstm_variants.data.base import SequenceDataset, Split

    rng = np.random.default_rng(0)
    streams, window, vocab = 2, 4, 5
    tokens = rng.integers(0, vocab, size=(3 * streams, window)).astype(np.int32)
    split = Split(tokens, np.roll(tokens, -1, axis=1), np.full(3 * streams, window, np.int32))
    data = SequenceDataset(
        name="toy_stream",
        input_size=vocab,
        output_size=vocab,
        target="categorical",
        target_at="every_step",
        metric="bits_per_char",
        train=split,
        valid=split,
        test=split,
        streams=streams,
    )
    model = SequenceModel(cell="vanilla", hidden_size=3, output_size=vocab, vocab_size=vocab)
    lr = 0.5
    settings = TrainSettings(max_epochs=1, patience=5)
    (result,) = train(
        data, [Member(hidden_size=3, seed=0, learning_rate=lr)], settings=settings, model=model
    )

    params = model.init(jax.random.split(jax.random.key(0))[0], tokens[:1, :1], jnp.ones(1, int))

    def window_loss(p, carries, rows):
        outputs, finals = model.apply(
            p, tokens[rows], jnp.full(streams, window), carries, return_carries=True
        )
        targets = jnp.asarray(split.targets[rows])
        logp = jax.nn.log_softmax(outputs)
        return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], -1)), finals

    carries = model.initial_carries(streams)
    for w in range(3):
        rows = np.arange(w * streams, (w + 1) * streams)
        grads, finals = jax.grad(window_loss, has_aux=True)(params, carries, rows)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        carries = finals  # the next window starts where this one ended ...
    for x, y in zip(jax.tree.leaves(result.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)

    # ... and differs from starting every window afresh, so the carry really crosses.
    fresh = model.init(jax.random.split(jax.random.key(0))[0], tokens[:1, :1], jnp.ones(1, int))
    for w in range(3):
        rows = np.arange(w * streams, (w + 1) * streams)
        grads, _ = jax.grad(window_loss, has_aux=True)(fresh, model.initial_carries(streams), rows)
        fresh = jax.tree.map(lambda p, g: p - lr * g, fresh, grads)
    differences = [
        float(jnp.max(jnp.abs(x - y)))
        for x, y in zip(jax.tree.leaves(result.params), jax.tree.leaves(fresh), strict=True)
    ]
    assert max(differences) > 1e-4


def test_ignored_targets_count_in_neither_loss_nor_metric():
    from lstm_variants.losses import frame_losses, frame_weights

    outputs = jnp.asarray([[[2.0, 0.0], [0.0, 5.0], [1.0, 1.0]]])
    targets = jnp.asarray([[0, -1, 1]])
    weights = frame_weights(jnp.asarray([3]), 3, "every_step", targets)
    np.testing.assert_array_equal(weights, [[1.0, 0.0, 1.0]])
    losses = frame_losses(outputs, targets, "categorical") * weights
    expected = [-jax.nn.log_softmax(outputs[0, 0])[0], 0.0, math.log(2.0)]
    np.testing.assert_allclose(losses[0], expected, rtol=1e-6)


def test_input_noise_is_per_member_and_changes_training(adding):
    quiet = Member(hidden_size=6, seed=4, learning_rate=0.1)
    noisy = Member(hidden_size=6, seed=4, learning_rate=0.1, input_noise=0.5)
    settings = TrainSettings(**{**SETTINGS.__dict__, "max_epochs": 2})
    a, b = train(adding, [quiet, noisy], settings=settings)
    assert a.curve[0]["train_loss"] != b.curve[0]["train_loss"]
    assert_same_run(a, train(adding, [quiet], settings=settings)[0])


def test_input_noise_has_each_members_standard_deviation(adding, monkeypatch):
    # The loss is swapped for one that measures its inputs: on all-zero inputs they are the noise
    # alone, so the epoch's "loss" is the noise's mean square, the std squared of each member.
    import lstm_variants.train as train_module

    def noise_power(model, data, normalization="frame"):
        def loss_fn(params, inputs, targets, lengths, sequence_weights, carries=None, dropout=None):
            total = jnp.sum(jnp.square(inputs))
            frames = jnp.asarray(inputs.size, inputs.dtype)
            return total / frames + 0.0 * params["w"].sum(), (total, frames, carries, None)

        return loss_fn

    monkeypatch.setattr(train_module, "make_loss_fn", noise_power)
    stds = jnp.asarray([0.5, 0.1])
    optimizer = make_member_optimizer({"name": "sgd"})
    epoch = train_module.make_member_epoch_fn(model_for(adding), optimizer, adding, SETTINGS)
    epoch = jax.vmap(epoch, in_axes=(0, 0, 0, 0, 0, 0, None, None, None, None))
    params = {"w": jnp.zeros((2, 1))}
    hyper = dict(learning_rate=0.0, momentum=0.0, clip_norm=math.inf, clip_value=math.inf)
    opt_state = jax.vmap(lambda p: optimizer(**hyper).init(p))(params)
    inputs = jnp.zeros((64, 50, adding.input_size))  # 6,400 draws per member
    targets, lengths = jnp.zeros((64, adding.output_size)), jnp.full(64, 50, jnp.int32)
    _, _, power = epoch(
        params, opt_state, {"w": jnp.ones((2, 1))}, {"input_noise": stds, "dropout": jnp.zeros(2)},
        jax.random.split(jax.random.key(0), 2), jnp.ones(2, bool), jnp.int32(1),
        inputs, targets, lengths,
    )  # fmt: skip
    np.testing.assert_allclose(np.sqrt(power), stds, rtol=0.05)  # 6,400 draws: ~1 % error


def test_input_noise_is_fresh_per_update_sequence_and_frame_and_spares_the_targets(
    adding, monkeypatch
):
    # The loss is swapped for sum(x * w) + sum(y * v) on all-zero inputs x: with SGD at learning
    # rate 1, one epoch leaves w = -(the sum of every update's noise) and v = -(the sum of the
    # targets). Independent N(0, s^2) noise in each of the 8 updates of 8 sequences gives each
    # entry of w a spread of s * sqrt(64) = 8 s; one draw reused by every update (or every
    # sequence of an update) gives s * sqrt(512) = 22.6 s, and one draw per sequence shared by
    # its frames makes w the same at every step. The targets are summed exactly, noise-free.
    import lstm_variants.train as train_module

    def probe(model, data, normalization="frame"):
        def loss_fn(params, inputs, targets, lengths, sequence_weights, carries=None, dropout=None):
            total = jnp.sum(inputs * params["w"][None]) + jnp.sum(targets * params["v"][None])
            return total, (total, jnp.ones(()), carries, None)

        return loss_fn

    monkeypatch.setattr(train_module, "make_loss_fn", probe)
    optimizer = make_member_optimizer({"name": "sgd"})
    epoch = train_module.make_member_epoch_fn(model_for(adding), optimizer, adding, SETTINGS)
    steps, std = 50, 0.5
    params = {"w": jnp.zeros((steps, adding.input_size)), "v": jnp.zeros(adding.output_size)}
    hyper = dict(learning_rate=1.0, momentum=0.0, clip_norm=math.inf, clip_value=math.inf)
    inputs = jnp.zeros((64, steps, adding.input_size))  # 8 updates of 8 sequences
    targets = jax.random.normal(jax.random.key(1), (64, adding.output_size))
    trained, _, _ = epoch(
        params, optimizer(**hyper).init(params), jax.tree.map(jnp.ones_like, params),
        {"input_noise": jnp.float32(std), "dropout": jnp.float32(0.0)}, jax.random.key(0),
        jnp.bool_(True), jnp.int32(1), inputs, targets, jnp.full(64, steps, jnp.int32),
    )  # fmt: skip
    w = np.asarray(trained["w"]) / std
    assert 6.5 < w.std() < 9.5  # 100 entries: ~7 % sampling error around 8
    assert abs(np.corrcoef(w[:-1].ravel(), w[1:].ravel())[0, 1]) < 0.4  # frames differ
    np.testing.assert_allclose(trained["v"], -np.sum(np.asarray(targets), axis=0), rtol=1e-5)


def test_a_member_whose_training_loss_is_not_finite_stops_as_diverged(adding, monkeypatch):
    # The mirror of the test above: member 1's training loss is planted infinite at epoch 2,
    # its validation loss still finite. A loss that is not finite on either split is divergence.
    import lstm_variants.population as population

    members = [MIXED[0], Member(hidden_size=8, seed=5, learning_rate=0.02)]
    clean = train(adding, members)
    train_epochs = population.train_epochs

    def inf_train_for_member_1(state, epoch_fn, *args):
        def epoch(*arrays):
            params, opt_state, loss = epoch_fn(*arrays)
            loss = np.array(loss)
            if int(arrays[6]) >= 2:  # the epoch number
                loss[1] = np.inf
            return params, opt_state, loss

        return train_epochs(state, epoch, *args)

    monkeypatch.setattr(population, "train_epochs", inf_train_for_member_1)
    kept, diverged = train(adding, members)
    assert diverged.metrics["stopped"] == "diverged"
    assert diverged.metrics["epochs_run"] == 2 and diverged.metrics["best_epoch"] == 1
    assert diverged.curve[1]["train_loss"] == math.inf
    assert math.isfinite(diverged.curve[1]["valid_loss"])
    assert clean[1].metrics["stopped"] == "max_epochs"
    assert_same_run(kept, clean[0], rtol=0)


def test_once_every_member_has_stopped_no_further_epoch_is_trained(adding, monkeypatch):
    # A member that learns nothing stops early after `patience` epochs without gain; with it
    # alone, the loop must end there, not run the compiled epoch on to max_epochs for nobody.
    import lstm_variants.population as population

    settings = TrainSettings(**{**SETTINGS.__dict__, "max_epochs": 12, "patience": 2})
    frozen = Member(hidden_size=8, seed=0, learning_rate=1e-12)
    train_epochs, calls = population.train_epochs, []

    def counting(state, epoch_fn, *args):
        def epoch(*arrays):
            calls.append(int(arrays[6]))
            return epoch_fn(*arrays)

        return train_epochs(state, epoch, *args)

    monkeypatch.setattr(population, "train_epochs", counting)
    (result,) = train(adding, [frozen], settings=settings)
    assert result.metrics["stopped"] == "early"
    assert result.metrics["epochs_run"] < settings.max_epochs
    assert calls == list(range(1, result.metrics["epochs_run"] + 1))


def _token_stream_data(streams, vocab=5, windows=3, window=4):
    tokens = np.zeros((windows * streams, window), np.int32)
    split = Split(tokens, tokens, np.full(windows * streams, window, np.int32))
    return SequenceDataset(
        name="toy_stream", input_size=vocab, output_size=vocab, target="categorical",
        target_at="every_step", metric="bits_per_char", train=split, valid=split, test=split,
        streams=streams,
    )  # fmt: skip


def test_input_noise_on_token_inputs_is_said_to_do_nothing(capsys):
    data = _token_stream_data(2)
    model = SequenceModel(cell="vanilla", hidden_size=4, output_size=5, vocab_size=5)
    settings = TrainSettings(max_epochs=1, batch_size=2)
    optimizer = make_member_optimizer({"name": "sgd"})
    members = [
        Member(hidden_size=4, seed=0, learning_rate=0.1),
        Member(hidden_size=4, seed=1, learning_rate=0.1),
    ]
    quiet, noisy = (
        train_population(model, optimizer, data, settings, members, progress=False, log=None)
        for members in (members, [members[0], dataclasses.replace(members[1], input_noise=0.5)])
    )
    err = capsys.readouterr().err
    assert err.count("note: train.input_noise is not applied to token inputs") == 1
    assert "1 trial(s) with input noise train as without" in err
    assert quiet[1].curve == noisy[1].curve  # what the note says


def test_the_memory_estimate_of_streams_counts_every_stream_in_training_and_evaluation():
    # A text dataset trains and evaluates its S streams side by side, whatever the batch sizes:
    # two more streams add 2 * 2 * 4 T width bytes of training and 2 * 4 T width of evaluation.
    model = SequenceModel(cell="vanilla", hidden_size=8, output_size=5, vocab_size=5)
    settings = TrainSettings(batch_size=16, eval_batch_size=1)
    two = estimate_member_bytes(model, _token_stream_data(2), settings)
    four = estimate_member_bytes(model, _token_stream_data(4), settings)
    width, steps = 16 * 8 + 5, 4
    assert four - two == 4 * steps * width * (2 * 2 + 2)
    other_batches = TrainSettings(batch_size=64, eval_batch_size=1)
    assert estimate_member_bytes(model, _token_stream_data(2), other_batches) == two


def test_the_memory_estimate_of_streams_ignores_the_evaluation_batch_size():
    # A stream dataset is evaluated a window of each stream at a time (make_eval_fn), so
    # eval_batch_size = 256 (the default) over 2 streams of 300 windows holds 2 sequences, not
    # 256: budgeting 256 made Tiny Shakespeare's estimate (32 streams) about 3 times too large,
    # which chunked populations that fit and refused trials that fit.
    model = SequenceModel(cell="vanilla", hidden_size=8, output_size=5, vocab_size=5)
    data = _token_stream_data(2, windows=300)
    sizes = {
        estimate_member_bytes(model, data, TrainSettings(batch_size=2, eval_batch_size=size))
        for size in (1, 2, 256)
    }
    assert len(sizes) == 1


def test_a_stream_trial_beyond_the_device_is_told_what_lowers_its_memory(monkeypatch):
    # A text dataset's batches are its streams' windows, which train.batch_size and
    # train.eval_batch_size do not change (the advice the line gave): it names those options.
    monkeypatch.setenv("LSTM_VARIANTS_DEVICE_MEMORY_GB", "0.00001")
    model = SequenceModel(cell="vanilla", hidden_size=8, output_size=5, vocab_size=5)
    members = [Member(hidden_size=64, seed=0, learning_rate=0.1)]
    optimizer = make_member_optimizer({"name": "sgd"})
    with pytest.raises(population.ConfigError) as error:
        train_population(
            model, optimizer, _token_stream_data(2), TrainSettings(batch_size=2), members,
            progress=False, log=None,
        )  # fmt: skip
    assert "lower model.hidden_size, dataset.options.streams or dataset.options.window" in str(
        error.value
    )
    assert "batch_size" not in str(error.value)


def test_the_memory_estimate_counts_the_activations_of_every_layer():
    def dataset(train_steps):
        def split(n, t):
            x = np.zeros((n, t, 3), np.float32)
            return Split(x, x, np.full(n, t, np.int32))

        return SequenceDataset(
            name="toy", input_size=3, output_size=3, target="multilabel", target_at="every_step",
            metric="nll_per_step", train=split(64, train_steps), valid=split(1, 10),
            test=split(1, 10),
        )  # fmt: skip

    settings = TrainSettings(batch_size=16, eval_batch_size=256)
    for layers in (1, 2):
        model = SequenceModel(cell="vanilla", hidden_size=8, output_size=3, num_layers=layers)
        extra = estimate_member_bytes(model, dataset(20), settings) - estimate_member_bytes(
            model, dataset(10), settings
        )
        width = 16 * 8 * layers + 3
        assert extra == 4 * 10 * width * 2 * 16  # 10 more steps of 16 sequences, kept twice

    # A batch wider than the 64 training sequences runs as one batch of them all (the cap).
    model = SequenceModel(cell="vanilla", hidden_size=8, output_size=3)
    capped = estimate_member_bytes(model, dataset(10), TrainSettings(batch_size=100_000))
    assert capped == estimate_member_bytes(model, dataset(10), TrainSettings(batch_size=64))
    # With length groups, the largest group is the widest batch (64 sequences in 4 groups of 16).
    grouped = TrainSettings(batch_size=100_000, length_buckets=4)
    assert estimate_member_bytes(model, dataset(10), grouped) == estimate_member_bytes(
        model, dataset(10), TrainSettings(batch_size=16)
    )


def test_token_inputs_bucket_by_the_embedding_width(monkeypatch):
    # Token ids are looked up, not multiplied: the first layer's input products are those of
    # the embedding, hidden_size wide by default (embed_size=0), so h = 50 in a bucket of 100
    # wastes 1 - (50/100)^2 = 0.75 > 0.7 and trains apart; with a 65-wide embedding it wastes
    # 1 - 50 * 115 / (100 * 165) = 0.65 and joins. Either way the waste is reported: one
    # bucket of mixed sizes pads too, 1 - (100 * 165 + 50 * 115) / (2 * 100 * 165) = 32.6 % of
    # the work (it was said only for two buckets or more, which waste nothing here).
    monkeypatch.setattr(
        "lstm_variants.population._train_chunk",
        lambda model, optimizer, data, settings, members, *args: [None] * len(members),
    )
    data = _token_stream_data(2, vocab=65)
    members = [Member(hidden_size=h, seed=0, learning_rate=0.1) for h in (100, 50)]
    settings = TrainSettings(max_padding_waste=0.7)
    for embed_size, buckets in (
        (0, "2 hidden-size buckets [100, 50]; padding wastes 0.0% of the work"),
        (65, "1 hidden-size bucket [100]; padding wastes 32.6% of the work"),
    ):
        lines = []
        model = SequenceModel(
            cell="vanilla", hidden_size=8, output_size=65, vocab_size=65, embed_size=embed_size
        )
        optimizer = make_member_optimizer({"name": "sgd", "nesterov": True})
        train_population(
            model, optimizer, data, settings, members, progress=False, log=lines.append
        )
        found = [line for line in lines if "hidden-size bucket" in line]
        assert len(found) == 1 and buckets in found[0]
    lines = []  # one hidden size: nothing padded, nothing to report
    train_population(
        model, optimizer, data, settings, members[:1], progress=False, log=lines.append
    )
    assert not [line for line in lines if "hidden-size bucket" in line]


def test_populations_that_differ_only_in_epochs_or_patience_share_their_compiled_programs(
    adding, monkeypatch
):
    # The programs read neither (the host's epoch loop does): a sweep over train.patience must
    # not compile again for every job.
    compiled = {}
    monkeypatch.setattr(population, "_COMPILED", compiled)
    members = [Member(hidden_size=8, seed=0, learning_rate=0.1)]
    train(adding, members, settings=dataclasses.replace(SETTINGS, max_epochs=2, patience=3))
    assert len(compiled) == 1
    train(adding, members, settings=dataclasses.replace(SETTINGS, max_epochs=3, patience=1))
    train(adding, members, settings=dataclasses.replace(SETTINGS, max_padding_waste=0.9))
    assert len(compiled) == 1
    train(adding, members, settings=dataclasses.replace(SETTINGS, batch_size=4))
    assert len(compiled) == 2  # the batch is part of the program
