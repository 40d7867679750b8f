"""A population member starts from its stand-alone network's parameters, padded and masked."""

import jax
import jax.numpy as jnp
import numpy as np

from lstm_variants.hidden_padding import hidden_axes
from lstm_variants.member_init import init_members
from lstm_variants.model import SequenceModel
from lstm_variants.population import Member

INPUTS = (jnp.zeros((1, 1, 3)), jnp.ones((1,), jnp.int32))
PADDED = 12


def setup(cell="vanilla"):
    model = SequenceModel(cell=cell, hidden_size=4, output_size=2)
    axes = hidden_axes(
        lambda h: jax.eval_shape(
            lambda: model.clone(hidden_size=h).init(
                jax.random.key(0), *INPUTS, parameters_only=True
            )
        )
    )
    return model, axes


def make_member(hidden_size, seed, **kwargs):
    return Member(hidden_size=hidden_size, seed=seed, learning_rate=0.1, **kwargs)


def member_slice(tree, index):
    return jax.tree.map(lambda leaf: leaf[index], tree)


def test_each_member_is_its_stand_alone_network_zero_padded_bit_for_bit():
    model, axes = setup()
    members = [make_member(5, seed=3), make_member(9, seed=4), make_member(5, seed=8)]
    params, masks, keys = init_members(model, members, axes, PADDED, INPUTS)
    for index, member in enumerate(members):
        init_key, data_key = jax.random.split(jax.random.key(member.seed))
        with jax.default_device(jax.local_devices(backend="cpu")[0]):  # where a member starts
            alone = model.clone(hidden_size=member.hidden_size).init(
                init_key, *INPUTS, parameters_only=True
            )
        padded, mask = member_slice(params, index), member_slice(masks, index)

        def check(a, p, m, leaf_axes, h=member.hidden_size):
            a = np.asarray(a)
            region = tuple(slice(0, a.shape[i]) for i in range(a.ndim))
            np.testing.assert_array_equal(p[region], a)
            outside = np.ones(p.shape, bool)
            outside[region] = False
            assert not p[outside].any(), "padding must be exactly zero"
            assert m[region].all() and not m[outside].any()
            assert all(p.shape[i] == PADDED and a.shape[i] == h for i in leaf_axes)

        jax.tree.map(check, alone, padded, mask, axes)
        np.testing.assert_array_equal(
            jax.random.key_data(jax.random.wrap_key_data(keys[index])),
            jax.random.key_data(data_key),
        )
    # Equal sizes with different seeds differ: each member has its own draw.
    assert not np.array_equal(
        params["params"]["readout"]["kernel"][0], params["params"]["readout"]["kernel"][2]
    )


def test_a_members_forget_bias_overrides_the_models():
    model, axes = setup()
    members = [make_member(6, seed=1), make_member(6, seed=1, forget_bias=1.0)]
    params, _, _ = init_members(model, members, axes, PADDED, INPUTS)
    b_f = np.asarray(params["params"]["layer_0"]["b_f"])
    np.testing.assert_allclose(b_f[1, :6] - b_f[0, :6], 1.0, rtol=0, atol=1e-7)
    assert not b_f[:, 6:].any()


def test_without_a_cpu_backend_members_are_initialised_on_the_default_device(monkeypatch):
    """JAX_PLATFORMS=cuda leaves no CPU backend: initialise where JAX runs. On a CPU-only machine
    that is the same CPU, so the same bits; a GPU's random bits are the same, its float32
    arithmetic (e.g. the orthogonal initialiser's QR) rounds differently."""
    model, axes = setup()
    members = [make_member(5, seed=3)]
    on_cpu, _, _ = init_members(model, members, axes, PADDED, INPUTS)
    local_devices = jax.local_devices

    def no_cpu(*args, backend=None, **kwargs):
        if backend == "cpu":
            raise RuntimeError("Unknown backend cpu")
        return local_devices(*args, **kwargs)

    monkeypatch.setattr(jax, "local_devices", no_cpu)
    fallback, _, _ = init_members(model, members, axes, PADDED, INPUTS)
    if jax.default_backend() == "cpu":
        jax.tree.map(np.testing.assert_array_equal, fallback, on_cpu)
    else:
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), fallback, on_cpu
        )


def test_a_config_without_forget_bias_gives_its_member_its_own_cells_bias():
    """Configs with and without forget_bias share a population whose model is built from the
    first config: the member that set none starts from its own cell's b_f, not the first's."""
    from test_train import config

    from lstm_variants.experiment import member_of

    cfgs = [config("cell=lstm", "+cell.options.forget_bias=2.0"), config("cell=lstm", "seed=1")]
    members = [member_of(cfg) for cfg in cfgs]
    assert [m.forget_bias for m in members] == [2.0, 0.0]
    assert member_of(config("cell=lstm_b")).forget_bias == 1.0  # LSTM-b's own bias of 1
    assert member_of(config("cell=gru")).forget_bias is None  # a cell without b_f
    # The population's model, as build_model makes it from the first config.
    model = SequenceModel(
        cell="lstm", hidden_size=4, output_size=2, cell_options=(("forget_bias", 2.0),)
    )
    params, _, _ = init_members(model, members, setup("lstm")[1], PADDED, INPUTS)
    b_f = np.asarray(params["params"]["layer_0"]["b_f"])
    assert (b_f[0, : members[0].hidden_size] == 2.0).all()
    assert not b_f[1].any()
