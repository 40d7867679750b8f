"""Every cell against a per-step reference written from the equations, plus the Flax cross-checks
and the ablation checks of the cells issue."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from reference_cells import reference_layer

from lstm_variants.cells import VARIANTS, make_cell
from lstm_variants.model import SequenceModel

# The papers' definitions, restated here rather than imported from the registry.
PAPER = {
    "vanilla": ("lstm", {}),
    "nig": ("lstm", {"input_gate": False}),
    "nfg": ("lstm", {"forget_gate": False}),
    "nog": ("lstm", {"output_gate": False}),
    "niaf": ("lstm", {"input_activation": "identity"}),
    "noaf": ("lstm", {"output_activation": "identity"}),
    "np": ("lstm", {"peepholes": False}),
    "cifg": ("lstm", {"coupled_gates": True}),
    "fgr": ("lstm", {"full_gate_recurrence": True}),
    "lstm": ("lstm", {"peepholes": False}),
    "lstm_f": ("lstm", {"peepholes": False, "forget_gate": False}),
    "lstm_i": ("lstm", {"peepholes": False, "input_gate": False}),
    "lstm_o": ("lstm", {"peepholes": False, "output_gate": False}),
    "lstm_b": ("lstm", {"peepholes": False}),
    "gru": ("gru", {"reset_after": False}),
    "gru_reset_after": ("gru", {"reset_after": True}),
    "mut1": ("mut", {"variant": 1}),
    "mut2": ("mut", {"variant": 2}),
    "mut3": ("mut", {"variant": 3}),
    "tanh_rnn": ("tanh_rnn", {}),
    "mgu": ("mgu", {}),
}
B, T, D, H, OUT = 3, 7, 4, 5, 2
pytestmark = pytest.mark.usefixtures("strict_dtypes")


def test_every_registered_cell_has_a_reference():
    assert set(PAPER) == set(VARIANTS)


def _randomise(params, key):
    """Replace every parameter by N(0, 0.5) so zero-initialised biases and peepholes are tested too."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        tree,
        [0.5 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)],
    )


@pytest.mark.parametrize("recurrence", ["fast", "reference"])
@pytest.mark.parametrize("name", sorted(PAPER))
def test_scanned_model_matches_per_step_reference(name, recurrence):
    kind, flags = PAPER[name]
    with jax.enable_x64(True):
        model = SequenceModel(name, H, OUT, recurrence=recurrence, param_dtype=jnp.float64)
        xs = jax.random.normal(jax.random.key(1), (B, T, D), jnp.float64)
        lengths = jnp.array([T, 4, 1])
        params = _randomise(model.init(jax.random.key(0), xs, lengths), jax.random.key(2))
        cotangent = jax.random.normal(jax.random.key(3), (B, T, OUT), jnp.float64)
        # The final state enters the loss too: padded steps must leave it alone (the outputs of a
        # padded step are zeroed whatever the state does).
        d_y, d_c = jax.random.normal(jax.random.key(4), (2, B, H), jnp.float64)

        def fast_loss(p):
            outputs, (carry,) = model.apply(p, xs, lengths, return_carries=True)
            final = jnp.sum(model.cell_template().output_of(carry) * d_y)
            if kind == "lstm":
                final = final + jnp.sum(carry[0] * d_c)
            return jnp.sum(outputs * cotangent) + final

        def reference_loss(p):
            hidden, state = reference_layer(
                kind, flags, p["params"]["layer_0"], xs, lengths, H, return_state=True
            )
            readout = p["params"]["readout"]
            outputs = hidden @ readout["kernel"] + readout["bias"][None, None]
            if kind == "lstm":
                final = jnp.sum(state[1] * d_y) + jnp.sum(state[0] * d_c)
            else:
                final = jnp.sum(state * d_y)
            return jnp.sum(outputs * cotangent) + final

        value, grads = jax.value_and_grad(fast_loss)(params)
        ref_value, ref_grads = jax.value_and_grad(reference_loss)(params)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for path, got in jax.tree_util.tree_leaves_with_path(grads):
        want = _at(ref_grads, path)
        np.testing.assert_allclose(
            got, want, rtol=1e-5, atol=1e-8, err_msg=jax.tree_util.keystr(path)
        )


def _at(tree, path):
    for key in path:
        tree = tree[key.key]
    return tree


@pytest.mark.parametrize("name", ["vanilla", "fgr", "gru", "mut3"])
def test_padded_steps_change_neither_outputs_nor_final_state(name):
    model = SequenceModel(name, H, OUT)
    xs = jax.random.normal(jax.random.key(1), (2, T, D))
    lengths = jnp.array([4, 2])
    params = model.init(jax.random.key(0), xs, lengths)
    garbage = xs.at[:, 4:].set(1e3).at[1, 2:].set(-1e3)
    short, short_final = model.apply(params, xs[:, :4], lengths, return_carries=True)
    padded, padded_final = model.apply(params, garbage, lengths, return_carries=True)
    np.testing.assert_allclose(padded[:, :4], short, rtol=1e-6)
    assert np.all(np.asarray(padded)[1, 2:] == np.asarray(padded)[1, 2, None])  # zeros read out
    for got, want in zip(jax.tree.leaves(padded_final), jax.tree.leaves(short_final), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_each_layer_of_a_stack_starts_from_its_own_given_carry():
    # Truncated BPTT hands a stacked model each layer's final carry as the next window's initial
    # one. Composed by hand from two one-layer models (the first read out through the identity,
    # so its outputs are its hidden states), layer 1 must start from carry 1, not carry 0.
    model = SequenceModel("vanilla", H, OUT, num_layers=2)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    lengths = jnp.array([T, 5, 3])
    params = model.init(jax.random.key(0), xs, lengths)["params"]
    keys = iter(jax.random.split(jax.random.key(2), 4))
    carries = jax.tree.map(
        lambda z: jax.random.normal(next(keys), z.shape), model.initial_carries(B)
    )
    outputs, finals = model.apply({"params": params}, xs, lengths, carries, return_carries=True)

    single = SequenceModel("vanilla", H, H)
    identity = {"kernel": jnp.eye(H), "bias": jnp.zeros(H)}
    hidden, (final_0,) = single.apply(
        {"params": {"layer_0": params["layer_0"], "readout": identity}},
        xs, lengths, (carries[0],), return_carries=True,
    )  # fmt: skip
    on_top = SequenceModel("vanilla", H, OUT)
    top = {"layer_0": params["layer_1"], "readout": params["readout"]}
    want, (final_1,) = on_top.apply(
        {"params": top}, hidden, lengths, (carries[1],), return_carries=True
    )
    np.testing.assert_allclose(outputs, want, rtol=1e-5, atol=1e-6)
    for got, expected in zip(
        jax.tree.leaves(finals), jax.tree.leaves((final_0, final_1)), strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The carries differ enough that starting layer 1 from carry 0 shows in the outputs.
    wrong, _ = on_top.apply({"params": top}, hidden, lengths, (carries[0],), return_carries=True)
    assert np.max(np.abs(np.asarray(wrong) - np.asarray(want))) > 1e-3


def _run_flax_rnn(cell, params, xs):
    return nn.RNN(cell).apply({"params": {"cell": params}}, xs)


def test_np_equals_flax_lstm_cell():
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    flax_cell = nn.LSTMCell(H)
    flax_params = nn.RNN(flax_cell).init(jax.random.key(0), xs)["params"]["cell"]
    flax_params = _randomise(flax_params, jax.random.key(5))
    ours = {}
    for flax_gate, gate in zip("ifgo", "ifzo", strict=True):
        ours[f"W_{gate}"] = flax_params[f"i{flax_gate}"]["kernel"]
        ours[f"R_{gate}"] = flax_params[f"h{flax_gate}"]["kernel"]
        ours[f"b_{gate}"] = flax_params[f"h{flax_gate}"]["bias"]
    for name in ("np", "lstm"):
        np.testing.assert_allclose(
            _run_flax_rnn(make_cell(name, H), ours, xs),
            _run_flax_rnn(flax_cell, flax_params, xs),
            rtol=1e-5,
            atol=1e-6,
        )


def test_gru_reset_after_equals_flax_gru_cell():
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    flax_cell = nn.GRUCell(H)
    flax_params = _randomise(
        nn.RNN(flax_cell).init(jax.random.key(0), xs)["params"]["cell"], jax.random.key(6)
    )
    ours = {
        "W_r": flax_params["ir"]["kernel"], "b_r": flax_params["ir"]["bias"],
        "W_u": flax_params["iz"]["kernel"], "b_u": flax_params["iz"]["bias"],
        "W_n": flax_params["in"]["kernel"], "b_n": flax_params["in"]["bias"],
        "U_r": flax_params["hr"]["kernel"], "U_u": flax_params["hz"]["kernel"],
        "U_n": flax_params["hn"]["kernel"], "b_hn": flax_params["hn"]["bias"],
    }  # fmt: skip
    np.testing.assert_allclose(
        _run_flax_rnn(make_cell("gru_reset_after", H), ours, xs),
        _run_flax_rnn(flax_cell, flax_params, xs),
        rtol=1e-5,
        atol=1e-6,
    )
    different = _run_flax_rnn(make_cell("gru", H), ours | {"b_hn": jnp.zeros(H)}, xs)
    assert not np.allclose(different, _run_flax_rnn(flax_cell, flax_params, xs), atol=1e-3)


def _params(name, **options):
    cell = make_cell(name, H, **options)
    return cell, cell.init(jax.random.key(0), D, method="paper_params")["params"]


def _cell_states(name, params, steps=50, c0=0.7):
    """Run a cell on zero input from c = c0 with the block input z switched off (W_z = R_z = b_z = 0)."""
    cell = make_cell(name, H)
    params = params | {k: jnp.zeros_like(params[k]) for k in ("W_z", "R_z", "b_z")}
    carry = (jnp.full((1, H), c0), jnp.zeros((1, H)))
    states = []
    for _ in range(steps):
        carry, _ = cell.apply({"params": params}, carry, jnp.zeros((1, D)))
        states.append(carry[0])
    return jnp.stack(states)


def test_nfg_cell_state_never_decays_but_vanillas_does():
    _, nfg = _params("nfg")
    np.testing.assert_array_equal(_cell_states("nfg", nfg), np.float32(0.7))
    _, vanilla = _params("vanilla")
    assert float(jnp.max(jnp.abs(_cell_states("vanilla", vanilla)[-1]))) < 0.1


def test_parameter_sets_of_the_ablations():
    names = {name: set(_params(name)[1]) for name in ("vanilla", "cifg", "np", "nig", "nog", "fgr")}
    assert not any(k.endswith("_f") for k in names["cifg"])
    assert not any(k.startswith("p_") for k in names["np"])
    assert names["vanilla"] - names["nig"] == {"W_i", "R_i", "b_i", "p_i"}
    assert names["vanilla"] - names["nog"] == {"W_o", "R_o", "b_o", "p_o"}
    gate_matrices = {f"R_{s}{t}" for s in "ifo" for t in "ifo"}
    assert names["fgr"] - names["vanilla"] == gate_matrices


def test_cifg_forget_gate_is_one_minus_input_gate():
    cell, params = _params("cifg")
    params = _randomise(params, jax.random.key(3))
    x, c_prev, y_prev = (
        jax.random.normal(jax.random.key(k), (2, n)) for k, n in ((4, D), (5, H), (6, H))
    )
    (c, _), _ = cell.apply({"params": params}, (c_prev, y_prev), x)
    with jax.numpy_rank_promotion("allow"):
        z = jnp.tanh(x @ params["W_z"] + y_prev @ params["R_z"] + params["b_z"])
        i = jax.nn.sigmoid(
            x @ params["W_i"] + y_prev @ params["R_i"] + params["p_i"] * c_prev + params["b_i"]
        )
    np.testing.assert_allclose(c, z * i + c_prev * (1 - i), rtol=1e-5)


def test_fgr_gate_matrices_change_the_output():
    cell, params = _params("fgr")
    x = jax.random.normal(jax.random.key(4), (2, 3, D))
    base = nn.RNN(cell).apply({"params": {"cell": params}}, x)
    nudged = params | {"R_if": params["R_if"] + 0.5}
    assert not np.allclose(nn.RNN(cell).apply({"params": {"cell": nudged}}, x), base, atol=1e-4)


def test_lstm_b_initialises_forget_bias_to_one():
    _, params = _params("lstm_b")
    np.testing.assert_array_equal(params["b_f"], 1.0)
    np.testing.assert_array_equal(_params("lstm")[1]["b_f"], 0.0)


@pytest.mark.parametrize("name", ["cifg", "nfg", "lstm_f"])
def test_forget_bias_on_a_cell_without_b_f_is_refused(name):
    """It would be recorded as a hyperparameter while changing nothing."""
    with pytest.raises(ValueError, match="forget_bias=1.0 sets the initial b_f, and this cell has"):
        make_cell(name, H, forget_bias=1.0)
    assert "b_f" not in _params(name)[1]


def test_paper_params_names_the_forget_gate_bias():
    cell, params = _params("vanilla")
    assert (
        params["b_f"].shape == (H,)
        and params["W_z"].shape == (D, H)
        and params["p_o"].shape == (H,)
    )


def test_unknown_cell_lists_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"unknown cell 'lstmm' \(did you mean lstm\?\); valid cells: cifg, fgr, gru,",
    ):
        make_cell("lstmm", H)


def test_an_option_a_cell_does_not_have_names_the_nearest_and_the_valid_ones():
    from lstm_variants.errors import ConfigError

    with pytest.raises(ConfigError, match=r"cell 'vanilla' has no option 'forgetbias' \(did you"):
        make_cell("vanilla", H, forgetbias=1.0)
    assert make_cell("vanilla", H, forget_bias=1.0, name="layer").name == "layer"


def test_an_initialiser_may_be_given_by_its_name_as_in_the_config():
    """recurrent_kernel_init="orthogonal" failed inside Flax: 'str' object is not callable."""
    from lstm_variants.errors import ConfigError
    from lstm_variants.initializers import make_initializer

    by_name = make_cell("vanilla", H, recurrent_kernel_init="uniform", bias_init="zeros")
    assert by_name.recurrent_kernel_init is make_initializer("uniform")
    assert by_name == make_cell("vanilla", H, recurrent_kernel_init=make_initializer("uniform"))
    with pytest.raises(ConfigError, match="unknown initialiser 'orthogonl'; valid initialisers"):
        make_cell("vanilla", H, kernel_init="orthogonl")
    # By name at the config's default scale: peepholes U(-0.1, 0.1), as the default cell's.
    assert make_cell("vanilla", H, peephole_init="uniform") == make_cell("vanilla", H)
    from lstm_variants.cells.registry import NAMED_INIT_SCALES
    from lstm_variants.compose import compose_config

    init = compose_config()["model"]["init"]
    for kind, key in (("input", "kernel_init"), ("recurrent", "recurrent_kernel_init"),
                      ("peephole", "peephole_init"), ("bias", "bias_init")):  # fmt: skip
        assert init[f"{kind}_scale"] == NAMED_INIT_SCALES.get(key, 1.0)


def test_make_cell_overrides_any_flag_even_one_named_variant():
    # MUT's own flag is called `variant`, like make_cell's first argument once was.
    assert make_cell("mut1", H, variant=2).variant == 2
    assert make_cell("mut1", H).variant == 1


def test_an_unknown_readout_is_refused():
    from lstm_variants.errors import ConfigError

    model = SequenceModel("gru", H, 2, readout_at="last")
    x, lengths = jnp.zeros((1, 3, 2)), jnp.array([3])
    with pytest.raises(
        ConfigError, match="unknown readout_at 'last'; valid: every_step, last_step"
    ):
        model.init(jax.random.key(0), x, lengths)


def test_inputs_without_a_feature_axis_are_refused_not_read_as_time_by_batch():
    """(B, T) floats ran: the model took B as the features and T as the batch, so sequence 0's
    outputs changed when only sequence 1 did. The same for tokens without vocab_size."""
    from lstm_variants.errors import ConfigError

    model, lengths = SequenceModel("vanilla", H, 2), jnp.array([5, 5])
    x = jnp.arange(10.0).reshape(2, 5)
    with pytest.raises(ConfigError, match=r"inputs must be \(B, T, D\), got shape \(2, 5\); one"):
        model.init(jax.random.key(0), x, lengths)
    with pytest.raises(ConfigError, match="integer tokens need vocab_size"):
        model.init(jax.random.key(0), x.astype(jnp.int32), lengths)
    tokens = SequenceModel("vanilla", H, 2, vocab_size=7)
    with pytest.raises(ConfigError, match=r"with vocab_size=7 the inputs are \(B, T\) integer"):
        tokens.init(jax.random.key(0), x[..., None], lengths)
    tokens.init(jax.random.key(0), x.astype(jnp.int32) % 7, lengths)  # as meant: ids < 7
    # As meant, each sequence's outputs are its own.
    variables = model.init(jax.random.key(0), x[..., None], lengths)
    alone = model.apply(variables, x[..., None], lengths)[0]
    other = model.apply(variables, x.at[1].set(-7.0)[..., None], lengths)[0]
    np.testing.assert_array_equal(alone, other)


@pytest.mark.parametrize(
    ("settings", "lengths", "message"),
    [
        ({"recurrence": "slow"}, [5, 5], "unknown recurrence 'slow'; valid: fast, xla, reference"),
        ({"hidden_size": 0}, [5, 5], "hidden_size must be a whole number >= 1, got 0"),
        ({"num_layers": 0}, [5, 5], "num_layers must be a whole number >= 1, got 0"),
        ({"unroll": 0}, [5, 5], "unroll must be a whole number >= 1 or a bool, got 0"),
        ({}, [[5], [5]], r"lengths must be \(2,\), one per sequence of the batch, got shape"),
        ({}, [5, 5, 5], r"lengths must be \(2,\)"),
        ({}, [5.0, 4.0], "lengths must be whole numbers of steps .*, got float32"),
        ({"readout_at": "last_step"}, [5.0, 4.0], "lengths must be whole numbers of steps"),
        ({"readout_at": "last_step"}, [5, 6], r"lengths must lie in \[1, 5\] .*got \[5, 6\]"),
        ({"readout_at": "last_step"}, [0, 5], r"lengths must lie in \[1, 5\] .*no step to read"),
        ({}, [6, 5], r"lengths must lie in \[0, 5\] for inputs of 5 steps .*steps are missing"),
    ],
)
def test_settings_and_lengths_the_model_cannot_run_are_one_error(settings, lengths, message):
    from lstm_variants.errors import ConfigError

    model = SequenceModel(**({"cell": "gru", "hidden_size": H, "output_size": 2} | settings))
    with pytest.raises(ConfigError, match=message):
        model.init(jax.random.key(0), jnp.zeros((2, 5, 3)), lengths)


def test_the_last_step_readout_of_a_traced_length_outside_1_to_t_is_nan():
    """Inside jit nothing can raise: a length above T read NaN, but a length of 0 read step T - 1
    (a padded step) and gave a plausible, meaningless number. Both are NaN now; in range, the
    readout is the every-step output at t = length - 1."""
    model = SequenceModel("vanilla", H, 2, readout_at="last_step", recurrence="reference")
    every = model.clone(readout_at="every_step")
    x = jax.random.normal(jax.random.key(1), (4, 5, 3))
    variables = model.init(jax.random.key(0), x, jnp.array([5, 5, 5, 5]))
    run = jax.jit(lambda lengths: model.apply(variables, x, lengths))
    out = np.asarray(run(jnp.array([5, 6, 0, 2])))
    assert np.isnan(out[1:3]).all()
    lengths = jnp.array([5, 1, 3, 2])
    expected = every.apply(variables, x, lengths)[jnp.arange(4), lengths - 1]
    np.testing.assert_allclose(run(lengths), expected, rtol=1e-6)
    np.testing.assert_array_equal(out[[0, 3]], np.asarray(run(lengths))[[0, 3]])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"vocab_size": -5}, "vocab_size must be a whole number >= 0, got -5"),
        ({"vocab_size": 5, "embed_size": -2}, "embed_size must be a whole number >= 0, got -2"),
    ],
)
def test_a_negative_vocabulary_or_embedding_size_is_one_error(settings, message):
    """Both were an MLIRError traceback ('invalid tensor dimension size') from the embedding."""
    from lstm_variants.errors import ConfigError

    model = SequenceModel("gru", H, 2, **settings)
    with pytest.raises(ConfigError, match=message):
        model.init(jax.random.key(0), jnp.zeros((2, 5), jnp.int32), [5, 5])


def test_token_ids_outside_the_vocabulary_are_one_error():
    """The embedding's lookup read NaN for an id >= vocab_size and, for a negative id, the
    last rows' embeddings: outputs wrong without a word."""
    from lstm_variants.errors import ConfigError

    model, lengths = SequenceModel("gru", H, 2, vocab_size=5), jnp.array([3, 3])
    tokens = jnp.array([[1, 2, 3], [4, 0, 0]])
    variables = model.init(jax.random.key(0), tokens, lengths)
    for bad, shown in (
        (tokens.at[0, 2].set(5), r"\[0, 5\]"),
        (tokens.at[1, 1].set(-1), r"\[-1, 4\]"),
    ):
        with pytest.raises(ConfigError, match=r"token ids must lie in \[0, 4\] .*got " + shown):
            model.apply(variables, bad, lengths)
    assert np.isfinite(np.asarray(model.apply(variables, tokens, lengths))).all()
    # Concrete tokens inside a trace (the population sizes its parameters so) are checked too.
    unknown = tokens.at[0, 0].set(9)
    with pytest.raises(ConfigError, match="token ids must lie in"):
        jax.eval_shape(lambda: model.init(jax.random.key(0), unknown, lengths))
    jax.eval_shape(lambda: model.init(jax.random.key(0), tokens, lengths))
    # Traced ids cannot be told: any outside the vocabulary reads NaN, at its sequence's steps
    # from there on, as a length outside [1, T] does (a negative id read the last rows).
    apply = jax.jit(model.apply)
    for bad in (tokens.at[1, 1].set(-1), tokens.at[1, 1].set(-5), tokens.at[1, 1].set(5)):
        outputs = np.asarray(apply(variables, bad, lengths))
        assert np.isfinite(outputs[0]).all() and np.isfinite(outputs[1, 0]).all()
        assert np.isnan(outputs[1, 1:]).all()
    np.testing.assert_array_equal(
        apply(variables, tokens, lengths), model.apply(variables, tokens, lengths)
    )


def test_unroll_takes_what_lax_scan_takes():
    x, lengths = jnp.zeros((2, 5, 3)), [5, 4]
    for unroll in (True, False, 2, np.int64(3)):
        model = SequenceModel("gru", H, 2, unroll=unroll)
        model.apply(model.init(jax.random.key(0), x, lengths), x, lengths)


def test_a_dropout_rate_outside_0_to_1_is_refused():
    from lstm_variants.errors import ConfigError

    model, x, lengths = SequenceModel("gru", H, 2), jnp.zeros((2, 5, 3)), [5, 4]
    variables = model.init(jax.random.key(0), x, lengths)
    # jnp arrays too: they ran, a rate of 1 dropping every input, -0.1 scaling them by 1/1.1.
    for rate in (1.0, np.float32(1.0), -0.1, jnp.float32(1.0), jnp.array([0.2, -0.1]), np.nan):
        with pytest.raises(ConfigError, match=r"dropout_rate must be in \[0, 1\), got "):
            model.apply(variables, x, lengths, dropout_rate=rate, dropout_key=jax.random.key(1))
    model.apply(variables, x, lengths, dropout_rate=0.5, dropout_key=jax.random.key(1))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_help_on_every_cell_shows_its_equations(name):
    """help(cell) shows the class docstring: the equations were in the module docstrings only."""
    doc = type(make_cell(name, H)).__doc__
    assert "h_new = " in doc or ("c = z * i + c' * f" in doc and "y = h(c) * o" in doc)


def test_the_readmes_cells_in_code_example_runs():
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Cells in code", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)[:1]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["ys"].shape == (2, 10, 64)
    assert {"b_i", "p_o"} <= set(namespace["params"]) and "b_f" not in namespace["params"]


@pytest.mark.parametrize("variant", [0, 4])
def test_a_mut_variant_other_than_1_2_3_is_one_config_error(variant):
    # +cell.options.variant=4 passes the option's type check (an integer); the cell itself says
    # which variants exist, before a KeyError from its parameter table could.
    from lstm_variants.errors import ConfigError

    with pytest.raises(ConfigError, match=f"MUT variant must be 1, 2 or 3, not {variant}"):
        make_cell("mut1", 4, variant=variant)


@pytest.mark.parametrize(
    ("key", "name"), [("bias_init", "orthogonal"), ("peephole_init", "glorot_uniform")]
)
def test_a_matrix_initialiser_for_a_vector_weight_is_one_config_error(key, name):
    """+cell.options.bias_init=orthogonal was Flax's ValueError when the first bias was drawn."""
    from lstm_variants.cells import check_cell
    from lstm_variants.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{key} '{name}' needs a matrix.*valid: uniform, normal"):
        check_cell("vanilla", {key: name})
    with pytest.raises(ConfigError, match="unknown initialiser 'zero'"):
        check_cell("vanilla", {key: "zero"})


@pytest.mark.parametrize("options", [{"forget_gate": False}, {"coupled_gates": True}])
def test_lstm_b_without_a_forget_bias_to_set_names_its_own_bias_not_an_option_never_given(options):
    """cell=lstm_b +cell.options.forget_gate=false said 'drop cell.options.forget_bias', which
    the user never set: the 1.0 is lstm_b's own."""
    from lstm_variants.cells import check_cell
    from lstm_variants.errors import ConfigError

    with pytest.raises(ConfigError, match="cell 'lstm_b' starts its forget-gate bias b_f at 1.0"):
        check_cell("lstm_b", options)
    with pytest.raises(ConfigError, match="drop cell.options.forget_bias"):  # set by the user
        check_cell("lstm", options | {"forget_bias": 1.0})
    check_cell("lstm_b", options | {"forget_bias": 0.0})


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_example_options_in_each_cells_config_are_accepted(name):
    """conf/cell/*.yaml's comment showed {forget_bias: 1.0, peepholes: false} for every cell,
    which NFG, CIFG, LSTM-f (no forget-gate bias) and the non-LSTM cells (no peepholes) refuse."""
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[1] / "conf" / "cell" / f"{name}.yaml").read_text()
    example = re.search(r"e\.g\. (\{[^}]*\})", text)
    assert example, f"conf/cell/{name}.yaml has no example options"
    options = yaml.safe_load(example.group(1))
    assert options and yaml.safe_load(text)["name"] == name
    make_cell(name, features=4, **options)  # raises ConfigError for an option it refuses
