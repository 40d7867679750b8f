"""Diagnostics: gradient flow on cells whose answer is known in closed form, exact gate saturation
fractions, the layer-by-layer forward against the model, and the diagnose app end to end."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lstm_variants.cells import LSTMCell, RecurrentCell
from lstm_variants.cli import CONFIG_DIR
from lstm_variants.data import SequenceDataset, Split
from lstm_variants.data.adding import adding_problem
from lstm_variants.diagnostics import cli as diagnose_cli
from lstm_variants.diagnostics.gate_stats import (
    gate_report,
    long_memory_units,
    recurrence_gates,
    saturation_fractions,
)
from lstm_variants.diagnostics.gradient_flow import (
    carry_gradients,
    fit_rate,
    gradient_flow,
    labelled_lengths,
    mean_by_lag,
    model_outputs,
    take_step,
)
from lstm_variants.diagnostics.studies import fresh_variables, study_dataset
from lstm_variants.errors import ConfigError
from lstm_variants.experiment import build_model
from lstm_variants.model import SequenceModel, step_mask


class LinearCell(RecurrentCell):
    """h_new = W x + R h + b, no non-linearity: the recurrence whose gradient flow is a^k for R = a I."""

    @nn.nowrap
    def project(self, params, x):
        return x @ params["W"] + params["b"].reshape((1,) * (x.ndim - 1) + (-1,))

    @nn.nowrap
    def split_recurrent(self, params):
        return (params["R"],), {}

    @nn.nowrap
    def recurrent_inputs(self, carry):
        return (carry,)

    @nn.nowrap
    def step(self, step_params, carry, px, ms):
        h_new = px + ms[0]
        return h_new, h_new


def last_step_readout(readout_vector, lengths):
    """(T, B, H) outputs -> (B,) losses w . h_{T_b}: linear, so dL/dh_T = w for every sequence."""

    def losses(outputs):
        return take_step(jnp.swapaxes(outputs, 0, 1), lengths - 1) @ readout_vector

    return losses


@pytest.mark.parametrize("a", [0.8, 0.95, 1.05])
def test_linear_rnn_gradient_decays_as_a_to_the_lag(a):
    T, B, D, H = 40, 6, 3, 5
    keys = jax.random.split(jax.random.key(0), 4)
    params = {
        "W": jax.random.normal(keys[0], (D, H)),
        "R": a * jnp.eye(H),
        "b": jnp.zeros((H,)),
    }
    cell = LinearCell(features=H)
    lengths = jnp.array([40, 40, 35, 30, 38, 25], jnp.int32)  # aligned at each sequence's own end
    mask = step_mask(lengths, T).T
    px = cell.project(params, jax.random.normal(keys[1], (T, B, D)))
    readout_vector = jax.random.normal(keys[2], (H,))
    grads = carry_gradients(
        cell, params, jnp.zeros((B, H)), px, mask, last_step_readout(readout_vector, lengths)
    )
    profile = mean_by_lag(grads["h"], lengths)
    # dL/dh_{T-k} = a^k w for every sequence, exactly.
    expected = a ** np.arange(T) * float(jnp.linalg.norm(readout_vector))
    np.testing.assert_allclose(profile[:25], expected[:25], rtol=1e-4)
    fit = fit_rate(profile)
    assert abs(fit.rate - a) / a < 0.01
    assert fit.points == T - 1


def test_the_geometric_average_weighs_every_sequence_alike():
    # Two sequences whose gradients decay at 0.5 and 0.9 per step (norms 2 * r^k, 3 * r^k), one
    # of them shorter: the geometric profile decays at sqrt(0.45) while both exist, and the
    # arithmetic one at the slower rate's pace.
    T, H = 30, 4
    lags = np.arange(T)
    grads = np.zeros((T, 2, H), np.float32)
    lengths = np.array([T, 20])
    for b, (scale, rate) in enumerate([(2.0, 0.5), (3.0, 0.9)]):
        norms = scale * rate ** lags[: lengths[b]]
        grads[lengths[b] - 1 - lags[: lengths[b]], b, 0] = norms  # aligned at each sequence's end
    geometric = mean_by_lag(jnp.asarray(grads), jnp.asarray(lengths), "geometric")
    arithmetic = mean_by_lag(jnp.asarray(grads), jnp.asarray(lengths), "arithmetic")
    both = lags[:20]
    np.testing.assert_allclose(geometric[both], np.sqrt(6.0) * np.sqrt(0.45) ** both, rtol=1e-5)
    np.testing.assert_allclose(arithmetic[both], 1.0 * 0.5**both + 1.5 * 0.9**both, rtol=1e-5)
    np.testing.assert_allclose(geometric[20:], 2.0 * 0.5 ** lags[20:], rtol=1e-5)  # one left
    assert fit_rate(geometric, last_lag=19).rate == pytest.approx(np.sqrt(0.45), rel=1e-4)
    assert fit_rate(arithmetic, first_lag=10, last_lag=19).rate == pytest.approx(0.9, rel=0.01)
    with pytest.raises(ConfigError, match="average must be one of arithmetic, geometric"):
        mean_by_lag(jnp.asarray(grads), jnp.asarray(lengths), "harmonic")


def test_a_planted_rate_fits_lower_where_the_short_sequences_have_the_large_norms():
    # docs/diagnostics.md: each lag averages the sequences that reach it, so with unequal lengths
    # the set changes along the profile. Every sequence here decays at exactly 1/2 per step.
    def fitted(norms):
        lengths = np.array([7, 5, 3])
        lags = np.arange(7)
        grads = np.zeros((7, 3, 2), np.float32)
        for b, (length, norm) in enumerate(zip(lengths, norms, strict=True)):
            grads[length - 1 - lags[:length], b, 0] = norm * 0.5 ** lags[:length]
        return fit_rate(mean_by_lag(jnp.asarray(grads), jnp.asarray(lengths))).rate

    assert fitted([1.0, 1.0, 1.0]) == pytest.approx(0.5, rel=1e-5)
    assert fitted([1.0, 2.0, 4.0]) == pytest.approx(0.41, abs=0.005)  # the large ones drop out
    assert fitted([4.0, 2.0, 1.0]) == pytest.approx(0.57, abs=0.005)  # the small ones drop out


def test_fit_rate_ignores_underflowed_lags():
    profile = np.array([1.0, 0.5, 0.25, 0.125, 0.0, 0.0, np.nan])
    fit = fit_rate(profile, first_lag=0)
    assert fit.rate == pytest.approx(0.5)
    assert fit.points == 4
    assert fit.decades_per_100_steps == pytest.approx(100 * np.log10(0.5))


def _tiny_adding(T=12, n=8):
    return adding_problem(T=T, n_train=n, n_valid=n, n_test=n, seed=1)


def _init(model, data, seed=0):
    x = jnp.asarray(data.train.inputs[:1, :1])
    return model.init(jax.random.key(seed), x, jnp.ones((1,), jnp.int32), parameters_only=True)


def test_open_forget_gate_closed_input_gate_carries_the_cell_gradient_undiminished():
    data = _tiny_adding(T=20)
    model = SequenceModel(cell="vanilla", hidden_size=4, output_size=1, readout_at="last_step")
    variables = _init(model, data)
    layer = dict(variables["params"]["layer_0"])
    for name in ("R_z", "R_i", "R_f", "R_o"):
        # No recurrent weights: the cell path c_{t-1} -> c_t is then the only path from c_t onwards.
        layer[name] = jnp.zeros_like(layer[name])
    layer["b_f"] = jnp.full_like(layer["b_f"], 20.0)  # f = sigma(20) = 1 - 2e-9: open
    layer["b_i"] = jnp.full_like(layer["b_i"], -20.0)  # i = 2e-9: closed
    opened = {"params": dict(variables["params"], layer_0=layer)}
    # Fitted over lags every sequence has (lengths 20..22), so each lag averages the same sequences.
    flow = gradient_flow(model, opened, data, num_sequences=8, last_lag=19)
    profile_c = flow.profiles["c"]
    assert profile_c[0] == 0.0  # the readout sees y_T, not the carried c_T
    lags = np.arange(1, 20)  # every sequence is at least 20 steps long
    np.testing.assert_allclose(profile_c[lags] / profile_c[1], 1.0, atol=1e-5)
    assert flow.fits["c"].rate == pytest.approx(1.0, abs=1e-6)
    # The same cell with its forget gate at f = sigma(0) = 1/2 loses half the signal per step.
    half = {name: jnp.zeros_like(layer[name]) for name in ("W_f", "p_f", "b_f")}
    halved = {"params": dict(variables["params"], layer_0=layer | half)}
    flow = gradient_flow(model, halved, data, num_sequences=8, last_lag=19)
    assert flow.fits["c"].rate == pytest.approx(0.5, rel=1e-4)


def test_a_model_whose_readout_misses_the_datasets_targets_is_one_error():
    """An every_step model on the adding problem's last_step targets measured NaN, silently."""
    data = _tiny_adding()
    model = SequenceModel(cell="vanilla", hidden_size=4, output_size=1)
    with pytest.raises(ConfigError, match="the model reads out at every_step, but adding's"):
        gradient_flow(model, _init(model, data), data, num_sequences=4)


@pytest.mark.parametrize(
    "cell, layers, tokens", [("vanilla", 1, False), ("gru", 2, False), ("fgr", 1, True)]
)
def test_layer_by_layer_forward_equals_the_model(cell, layers, tokens):
    B, T = 3, 6
    lengths = jnp.array([6, 4, 1], jnp.int32)
    if tokens:
        inputs = jax.random.randint(jax.random.key(1), (B, T), 0, 7)
        model = SequenceModel(cell=cell, hidden_size=5, output_size=2, vocab_size=7, embed_size=3)
    else:
        inputs = jax.random.normal(jax.random.key(1), (B, T, 3))
        model = SequenceModel(cell=cell, hidden_size=5, output_size=2, num_layers=layers)
    variables = model.init(jax.random.key(0), inputs, lengths)
    np.testing.assert_allclose(
        model_outputs(model, variables, inputs, lengths),
        model.apply(variables, inputs, lengths),
        rtol=1e-5,
        atol=1e-6,
    )


def test_saturation_fractions_of_a_hand_built_array_are_exact():
    values = np.array(
        [[[0.05, 0.95]], [[0.5, 0.95]], [[0.05, 0.2]], [[0.99, 0.01]]]
    )  # (T=4, B=1, H=2)
    mask = np.array([[True], [True], [True], [False]])  # the last step is padding
    sat = saturation_fractions(values, mask)
    np.testing.assert_array_equal(sat.left, [2 / 3, 0.0])
    np.testing.assert_array_equal(sat.right, [0.0, 2 / 3])
    # A diverged unit's NaN is neither saturated nor not; in padding it does not count.
    values[1, 0, 1], values[3, 0, 0] = np.nan, np.nan
    sat = saturation_fractions(values, mask)
    np.testing.assert_array_equal(sat.left, [2 / 3, np.nan])
    np.testing.assert_array_equal(sat.right, [0.0, np.nan])


def test_gate_saturation_of_a_hand_built_lstm_is_exact():
    """i, f, o read their values straight from the input: gate_j = sigma(x_j) with known x."""
    H, T, B = 3, 5, 2
    rng = np.random.default_rng(0)
    table = rng.choice([0.02, 0.3, 0.5, 0.7, 0.97], size=(T, B, 3 * H))  # the gate values wanted
    inputs = jnp.asarray(np.log(table / (1 - table)), jnp.float32)  # logit: sigma(x) = table
    cell = LSTMCell(features=H)
    params = _zero_params(cell, 3 * H)
    eye = jnp.eye(3 * H)
    params["W_i"], params["W_f"], params["W_o"] = eye[:, :H], eye[:, H : 2 * H], eye[:, 2 * H :]
    lengths = jnp.array([5, 3], jnp.int32)
    mask = step_mask(lengths, T).T
    carry0 = cell.initialize_carry(None, (B, 1))
    gates = recurrence_gates(cell, params, carry0, cell.project(params, inputs), mask)
    valid = np.asarray(mask)[..., None]
    for k, gate in enumerate(("i", "f", "o")):
        wanted = table[..., k * H : (k + 1) * H]
        sat = saturation_fractions(gates[gate], mask)
        np.testing.assert_array_equal(sat.left, ((wanted < 0.1) & valid).sum((0, 1)) / 8)
        np.testing.assert_array_equal(sat.right, ((wanted > 0.9) & valid).sum((0, 1)) / 8)
    forget = table[..., H : 2 * H]
    share = ((forget > 0.9) & valid).sum((0, 1)) / 8
    expected = sorted(
        ((j, share[j]) for j in range(H) if share[j] > 0.25), key=lambda unit: -unit[1]
    )
    assert long_memory_units(gates["f"], mask, mostly=0.25) == expected


def _zero_params(cell, input_size):
    return {name: jnp.zeros(shape) for name, (_, shape) in cell.param_shapes(input_size).items()}


@pytest.mark.parametrize("cell, gates", [("vanilla", {"i", "f", "o"}), ("tanh_rnn", set())])
def test_gate_report_names_the_gates_and_retention(cell, gates):
    data = _tiny_adding()
    model = SequenceModel(cell=cell, hidden_size=4, output_size=1, readout_at="last_step")
    report = gate_report(model, _init(model, data), data, num_sequences=4)
    assert set(report.saturation) == gates
    assert (report.retention_values is None) == (not gates)


def test_a_diverged_networks_long_memory_units_are_not_counted_as_none():
    """NaN retention is neither long-memory nor not: '0 of 4 units' read as a measured answer."""
    from lstm_variants.diagnostics.report import long_memory_lines

    data = _tiny_adding()
    model = SequenceModel(cell="vanilla", hidden_size=4, output_size=1, readout_at="last_step")
    diverged = jax.tree.map(lambda a: a * jnp.nan, _init(model, data))
    report = gate_report(model, diverged, data, num_sequences=4)
    assert report.long_memory is None
    row = {"cell": "vanilla", "state": "trained", "gates": report}
    assert long_memory_lines([row]) == [
        "- vanilla (trained): not counted: its retention is not finite (the network diverged)"
    ]
    assert gate_report(model, _init(model, data), data, num_sequences=4).long_memory == []


def test_gate_report_counts_the_valid_steps_of_unequal_sequences_only():
    """Saturation, retention and long-memory units against the reference LSTM run over each
    sequence's own steps: padding (held state, zero input) would add steps that were never seen."""
    import dataclasses

    from reference_cells import lstm_step

    B, T, H = 4, 8, 4
    lengths = np.array([8, 5, 3, 1], np.int32)
    inputs = 3.0 * np.random.default_rng(2).normal(size=(B, T, 2)).astype(np.float32)  # saturates
    inputs[np.arange(T)[None, :] >= lengths[:, None]] = 0.0
    split = Split(inputs, np.zeros((B, 1), np.float32), lengths)
    data = dataclasses.replace(_tiny_adding(), valid=split)
    model = SequenceModel(cell="vanilla", hidden_size=H, output_size=1, readout_at="last_step")
    variables = _init(model, data, seed=3)
    report = gate_report(model, variables, data, num_sequences=B, mostly=0.15)

    P = variables["params"]["layer_0"]
    seen = {"i": [], "f": [], "o": []}
    for b in range(B):
        # Without full gate recurrence the gates named in the state feed nothing: the reference
        # step only hands back this step's i, f, o under those names.
        state = (jnp.zeros((1, H)), jnp.zeros((1, H)), dict.fromkeys(seen))
        for t in range(lengths[b]):
            with jax.numpy_rank_promotion("allow"):
                state, _ = lstm_step(P, state, jnp.asarray(inputs[b : b + 1, t]), {})
            for gate in seen:
                seen[gate].append(np.asarray(state[2][gate])[0])
    seen = {gate: np.stack(values) for gate, values in seen.items()}  # (17 valid steps, H)
    for gate, values in seen.items():
        np.testing.assert_allclose(report.saturation[gate].left, (values < 0.1).mean(0))
        np.testing.assert_allclose(report.saturation[gate].right, (values > 0.9).mean(0))
    assert all((v < 0.1).any() and (v > 0.9).any() for v in seen.values())  # counts to compare
    np.testing.assert_allclose(
        np.sort(report.retention_values), np.sort(seen["f"].ravel()), rtol=1e-5, atol=1e-6
    )
    share = (seen["f"] > 0.9).mean(0)
    long_memory = sorted(((j, share[j]) for j in range(H) if share[j] > 0.15), key=lambda u: -u[1])
    assert long_memory and [j for j, _ in report.long_memory] == [j for j, _ in long_memory]
    np.testing.assert_allclose([f for _, f in report.long_memory], [f for _, f in long_memory])


def _diagnose_config(tmp_path, *overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "diagnose",
            overrides=[
                "dataset.options.T=11",
                "dataset.options.n_train=16",
                "dataset.options.n_valid=8",
                "dataset.options.n_test=8",
                "model.hidden_size=4",
                "train.max_epochs=1",
                "diagnose.num_sequences=8",
                "diagnose.cells=[vanilla,tanh_rnn]",
                "diagnose.init_study.cells=[tanh_rnn]",
                "diagnose.init_study.initializers=[orthogonal,normal]",
                "diagnose.init_study.gains=[0.5,2.0]",
                "diagnose.clipping_study.cells=[tanh_rnn]",
                "diagnose.clipping_study.gains=[3.0]",
                "diagnose.clipping_study.clip_norms=[1.0]",
                # The task runs in this test process, whose compiles stay off disk (conftest): the
                # session's cache would otherwise be on for every later test of this worker.
                "compilation_cache=null",
                f"out_dir={tmp_path}",
                *overrides,
            ],
        )
    return OmegaConf.to_container(cfg, resolve=True)


def test_diagnose_writes_tables_and_figures(tmp_path):
    # Fresh models only: the clipping study covers brief training (the compile dominates the time).
    cfg = _diagnose_config(tmp_path, "diagnose.states=[fresh]", "diagnose.num_sequences=128")
    (tmp_path / "gate_saturation_trained.png").write_bytes(b"an earlier run's figure")
    written = diagnose_cli.run(cfg, tmp_path)
    names = {path.name for path in written}
    assert names == {
        "summary.md",
        "results.json",
        "gradient_flow.png",
        "gate_saturation_fresh.png",
        "forget_gate.png",
        "init_study.png",
    }
    summary = (tmp_path / "summary.md").read_text()
    assert "| tanh_rnn | fresh |" in summary
    assert "| tanh_rnn | 3 | 1 |" in summary  # the clipping study's row: gain 3, clip_norm 1
    assert ", 8 valid sequences" in summary.splitlines()[0]  # all there are, not the 128 asked
    assert {path.name for path in tmp_path.glob("*.png")} == names - {"summary.md", "results.json"}


def test_diagnose_with_the_geometric_average_says_so_and_lies_below_the_arithmetic(tmp_path):
    cfg = _diagnose_config(
        tmp_path,
        "diagnose.states=[fresh]",
        "diagnose.cells=[vanilla]",
        "diagnose.average=geometric",
        "diagnose.init_study.enabled=false",
        "diagnose.clipping_study.enabled=false",
    )
    diagnose_cli.run(cfg, tmp_path)
    heading = (tmp_path / "summary.md").read_text().splitlines()[0]
    assert heading.endswith("8 valid sequences (g(k): the geometric mean over them)")
    data = study_dataset(cfg)
    model = build_model(cfg, data)
    variables = fresh_variables(model, data, 0)
    flows = {
        average: gradient_flow(model, variables, data, num_sequences=8, average=average)
        for average in ("arithmetic", "geometric")
    }
    for state in ("h", "c"):
        arithmetic, geometric = (flows[a].profiles[state][1:] for a in flows)
        assert np.all(
            geometric <= arithmetic * (1 + 1e-6)
        )  # the mean of logs is at most the log of the mean
        assert np.any(geometric < arithmetic * (1 - 1e-3))  # the sequences differ, so strictly


def test_the_long_memory_heading_states_the_fraction_its_units_were_counted_with(tmp_path):
    """It said 'most of the time' whatever diagnose.long_memory_mostly was."""
    cfg = _diagnose_config(
        tmp_path,
        "diagnose.states=[fresh]",
        "diagnose.cells=[vanilla]",
        "diagnose.long_memory_mostly=0.2",
        "diagnose.init_study.enabled=false",
        "diagnose.clipping_study.enabled=false",
    )
    diagnose_cli.run(cfg, tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "## Long-memory units (retention > 0.9 on more than 20% of the steps)" in summary


def test_lists_given_without_brackets_are_lists_of_one(tmp_path):
    from lstm_variants.diagnostics.settings import checked_diagnose
    from lstm_variants.diagnostics.studies import study_dataset

    cfg = _diagnose_config(tmp_path, "diagnose.states=fresh", "diagnose.cells=gru")
    diagnose = checked_diagnose(cfg, study_dataset(cfg))
    assert diagnose["states"] == ["fresh"] and diagnose["cells"] == ["gru"]


def test_diagnose_app_help_and_one_line_errors(tmp_path, app):
    help_text = subprocess.run(
        [sys.executable, "-m", "lstm_variants.diagnostics.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "lstm-variants-diagnose" in help_text and "diagnose:" in help_text
    # Laid out as lstm-variants --help: example commands first, its own footer, not Hydra's.
    assert "lstm-variants-diagnose --cfg job " in help_text and "Powered by Hydra" not in help_text
    for argv, message in [
        (["cell=nope"], "unknown cell 'nope'"),
        (["diagnose.nope=1"], "diagnose.nope"),
        (["diagnose.average=harmonic"], "diagnose.average must be one of arithmetic, geometric"),
    ]:
        done = app(*argv, main=diagnose_cli.main, cwd=tmp_path)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lstm-variants-diagnose: error:")
        assert message in lines[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (  # the config's cell is measured only where diagnose.cells names it: lstm was not
            ["cell=lstm"],
            "cell=lstm is not measured: diagnose measures the cells of diagnose.cells (vanilla, "
            "tanh_rnn); give 'diagnose.cells=[lstm]', or diagnose.cells=null for the config's cell",
        ),
        (
            ["cell=gru", "diagnose.records=[x]"],
            "cell=gru is not read with diagnose.records: each trial is measured as it was trained",
        ),
    ],
)
def test_a_chosen_cell_that_is_not_measured_is_one_line(tmp_path, app, argv, message):
    tiny = ["dataset.options.T=11", "dataset.options.n_train=16", "dataset.options.n_valid=8",
            "model.hidden_size=4", "diagnose.num_sequences=8", "diagnose.states=[fresh]",
            "diagnose.cells=[vanilla,tanh_rnn]", "diagnose.init_study.enabled=false",
            "diagnose.clipping_study.enabled=false", f"out_dir={tmp_path / 'out'}"]  # fmt: skip
    done = app(*tiny, *argv, main=diagnose_cli.main, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"lstm-variants-diagnose: error: {message}"]


def test_unknown_cell_in_the_cell_list_is_one_line(tmp_path, capsys, monkeypatch):
    cfg = _diagnose_config(tmp_path, "diagnose.cells=[nope]")
    monkeypatch.setattr(diagnose_cli.HydraConfig, "get", lambda: None)
    with pytest.raises(SystemExit) as stopped:
        diagnose_cli.task(OmegaConf.create(cfg))
    assert stopped.value.code == 2
    assert (
        "lstm-variants-diagnose: error: diagnose.cells: 'nope': unknown cell 'nope'"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("diagnose.split=train2", "diagnose.split must be one of train, valid, test, got 'train2'"),
        ("diagnose.states=[]", "diagnose.states is empty"),
        ("diagnose.first_lag=50", "diagnose.first_lag=50 is after diagnose.last_lag=4"),
        # One lag, or none the sequences reach: every rate was NaN, a table of '-'.
        ("diagnose.first_lag=4", "diagnose.first_lag=4 is at diagnose.last_lag=4: the rate is"),
        (  # T=11: the adding sequences have 11 or 12 steps
            "diagnose.first_lag=11 diagnose.last_lag=100",
            "diagnose.first_lag=11: the rate is fitted over at least two lags, but the longest "
            "measured valid sequence has 12 steps (lags 0..11): give a first_lag of at most 10",
        ),
        (
            "diagnose.records=[emptydir] diagnose.first_lag=4",
            "diagnose.first_lag=4 is at diagnose.last_lag=4",
        ),
        ("diagnose.layer=5", "diagnose.layer=5, but the model has 1 layer(s): give 0 to 0"),
        ("diagnose.records=[emptydir]", "no run records (**/records/*.json) under"),
        ("diagnose.records=3", "diagnose.records must list record files or study directories"),
        ("diagnose.records=0", "diagnose.records must list record files or study directories"),
        (  # the records' mistake first: states=[] is allowed with records
            "diagnose.records=0 diagnose.states=[]",
            "diagnose.records must list record files or study directories",
        ),
        ("diagnose.records=[emptydir,3]", "must list record files or study directories, got 3"),
        (
            "diagnose.cells=[vanilla,{name:vanilla,options:{forget_bias:3.0}}]",
            "two entries are labelled 'vanilla'",
        ),
        ("diagnose.cells=[{options:{forget_bias:1.0}}]", "name is missing"),
        ("diagnose.cells=[{name:vanilla,option:{forget_bias:3.0}}]", "unknown key(s) option"),
        ("diagnose.cells=[vanilla,3]", "entry 3 must be a cell name or a mapping"),
        (
            "diagnose.cells=[{name:vanilla,options:{forget_bias:abc}}]",
            "cell.options.forget_bias must be a number, got 'abc'",
        ),
        ("diagnose.states=[fresh,traned]", "unknown model state 'traned'"),
        ("diagnose.init_study.gains=[abc]", "diagnose.init_study.gains must hold positive numbers"),
        ("diagnose.init_study.initializers=[orthogonl]", "unknown study initialiser 'orthogonl'"),
        (
            "diagnose.clipping_study.clip_norms=[-1.0]",
            "diagnose.clipping_study.clip_norms must be a number > 0 (or null: off), got -1.0",
        ),
        (
            "diagnose.clipping_study.optimizer.learning_rate=-1",
            "diagnose.clipping_study.optimizer.learning_rate must be a number >= 0",
        ),
        ("out_dir=${hydra:runtime.cwd}/afile/sub", "cannot be written"),
        ("+search=quick", "search is lstm-variants' group, not this app's"),
        (  # the config's cell (vanilla) is not measured: its options changed nothing, silently
            "diagnose.cells=[lstm,gru] +cell.options.forget_bias=5.0",
            "+cell.options.forget_bias=5.0 sets options of the config's cell vanilla, which "
            "diagnose.cells does not name: give each cell its options in its entry, e.g. "
            "'diagnose.cells=[{name:lstm,options:{forget_bias:5.0}}]', or set cell=lstm",
        ),
        (
            "diagnose.records=[emptydir] +cell.options.forget_bias=5.0",
            "+cell.options.forget_bias=5.0 is not read with diagnose.records",
        ),
    ],
)
def test_a_diagnose_setting_that_would_fail_late_is_one_line(
    tmp_path, capsys, monkeypatch, override, message
):
    # Each of these was a traceback, a table of '-', a study run with a reversed gradient or a
    # silently dropped result, after the measuring began; now nothing trains before the check.
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "afile").write_text("")
    monkeypatch.chdir(tmp_path)
    studies = ("diagnose.init_study.enabled=true", "diagnose.clipping_study.enabled=true")
    override = override.replace("${hydra:runtime.cwd}", str(tmp_path))
    cfg = _diagnose_config(tmp_path, "diagnose.last_lag=4", *studies, *override.split())
    monkeypatch.setattr(diagnose_cli.HydraConfig, "get", lambda: None)
    monkeypatch.setattr(
        "lstm_variants.diagnostics.studies.train_run",
        lambda *a, **k: pytest.fail("trained before the settings were checked"),
    )
    with pytest.raises(SystemExit) as stopped:
        diagnose_cli.task(OmegaConf.create(cfg))
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("lstm-variants-diagnose: error:") and message in lines[-1]


def test_the_config_cells_options_reach_the_entries_that_name_it(tmp_path):
    from lstm_variants.diagnostics.settings import checked_diagnose
    from lstm_variants.diagnostics.studies import cell_study

    def rates(*overrides):
        cfg = _diagnose_config(tmp_path, "diagnose.states=[fresh]", *overrides)
        data = study_dataset(cfg)
        cfg["diagnose"] = checked_diagnose(cfg, data)
        return {row["cell"]: row["flow"].fits["h"].rate for row in cell_study(cfg, data, False)}

    given = rates("cell=lstm", "+cell.options.forget_bias=5.0", "diagnose.cells=[lstm,gru]")
    entry = rates("diagnose.cells=[{name:lstm,options:{forget_bias:5.0}}]")
    plain = rates("diagnose.cells=[lstm]")
    assert given["lstm"] == pytest.approx(entry["lstm"], rel=1e-6)
    assert abs(given["lstm"] - plain["lstm"]) > 0.05  # the option changes the measured cell


def test_unlabelled_last_frames_are_cut_so_the_loss_is_read_at_a_labelled_step():
    """A categorical sequence ending in IGNORE (-1) frames (allowed in iam_online and timit) is
    measured from its last labelled frame, as if it ended there; one without any is left out."""
    B, T = 3, 6
    inputs = np.asarray(jax.random.normal(jax.random.key(1), (B, T, 3)), np.float32)
    targets = np.array([[0, 1, 2, 1, -1, -1], [2, 1, 0, 1, 2, 0], [-1, -1, -1, 0, 0, 0]], np.int32)
    lengths = np.array([6, 6, 3], np.int32)
    assert labelled_lengths(targets, lengths, "categorical").tolist() == [4, 6, 0]
    assert labelled_lengths(targets, lengths, "regression").tolist() == [6, 6, 3]

    def dataset(x, y, n):
        split = Split(inputs=x, targets=y, lengths=n)
        return SequenceDataset(name="frames", input_size=3, output_size=3, target="categorical",
                               target_at="every_step", metric="cross_entropy",
                               train=split, valid=split, test=split)  # fmt: skip

    model = SequenceModel(cell="vanilla", hidden_size=4, output_size=3)
    variables = model.init(jax.random.key(0), jnp.asarray(inputs), jnp.asarray(lengths))
    flow = gradient_flow(model, variables, dataset(inputs, targets, lengths))
    cut = gradient_flow(
        model, variables, dataset(inputs[:2], targets[:2], np.array([4, 6], np.int32))
    )
    for name in ("h", "c"):
        np.testing.assert_allclose(flow.profiles[name], cut.profiles[name], rtol=1e-6)
    with pytest.raises(ConfigError, match="none of the first 1 valid sequences has a step"):
        gradient_flow(model, variables, dataset(inputs[2:], targets[2:], lengths[2:]), 1)


def test_train_greff_is_greffs_protocol_here_too():
    """The brief-training block of conf/diagnose.yaml must not win over a protocol asked for."""

    def train(*overrides):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("diagnose", overrides=list(overrides)).train

    brief, greff = train(), train("train=greff", "dataset=jsb_chorales")
    assert (brief.batch_size, brief.max_epochs) == (32, 20)
    assert (greff.batch_size, greff.max_epochs, greff.patience) == (1, 150, 15)
    assert train("train=greff", "train.batch_size=8").batch_size == 8  # the command line wins


def test_the_default_layer_is_the_last():
    from lstm_variants.diagnostics.gradient_flow import model_carry_gradients

    B, T = 2, 5
    lengths = jnp.array([5, 3], jnp.int32)
    inputs = jax.random.normal(jax.random.key(1), (B, T, 3))
    targets = jax.random.normal(jax.random.key(2), (B, T, 2))
    model = SequenceModel(cell="gru", hidden_size=4, output_size=2, num_layers=2)
    variables = model.init(jax.random.key(0), inputs, lengths)

    def grads(layer):
        return jax.jit(
            lambda v: model_carry_gradients(model, v, inputs, targets, lengths, "regression", layer)
        )(variables)["h"]

    np.testing.assert_array_equal(grads(None), grads(1))  # layer 0's differ (another cell)


def test_a_layer_past_the_last_is_one_line():
    from lstm_variants.diagnostics.gradient_flow import check_layer

    with pytest.raises(ConfigError, match=r"diagnose.layer=2, but the model has 2 layer\(s\)"):
        check_layer(2, 2)
    check_layer(1, 2)


def test_the_rate_is_fitted_over_lags_1_to_100_by_default():
    # As lstm-variants-diagnose fits it: a 120-step profile's rate comes from lags 1..100.
    T, B = 120, 2
    rng = np.random.default_rng(0)
    split = Split(
        rng.normal(size=(B, T, 1)).astype(np.float32),
        rng.normal(size=(B, 1)).astype(np.float32),
        np.full(B, T, np.int32),
    )
    data = SequenceDataset(
        name="toy", input_size=1, output_size=1, target="regression", target_at="last_step",
        metric="mse", train=split, valid=split, test=split,
    )  # fmt: skip
    model = SequenceModel(cell="gru", hidden_size=2, output_size=1, readout_at="last_step")
    variables = model.init(jax.random.key(0), jnp.asarray(split.inputs), split.lengths)
    flow = gradient_flow(model, variables, data, num_sequences=B)
    assert len(flow.profiles["h"]) == T
    assert (flow.fits["h"].first_lag, flow.fits["h"].last_lag) == (1, 100)
    everything = gradient_flow(model, variables, data, num_sequences=B, last_lag=None)
    assert everything.fits["h"].last_lag == T - 1


def test_diagnostics_figures_are_saved_at_a_resolution_their_legends_can_be_read_at(tmp_path):
    """At 80 dpi and 7-point legends a legend line was 8 pixels high: 'tanh_rnn' read as
    'tanh_mn' in gradient_flow.png."""
    from PIL import Image

    from lstm_variants.diagnostics import plots

    rows = [
        {"initializer": init, "cell": cell, "gain": gain, "rate_h": 0.9 * gain}
        for init in ("orthogonal", "glorot")
        for cell in ("lstm", "tanh_rnn")
        for gain in (0.5, 1.0, 2.0)
    ]
    figure = plots.init_study_figure(rows)
    sizes = [text.get_fontsize() for text in figure.axes[-1].get_legend().get_texts()]
    path = plots.save(figure, tmp_path / "init_study.png")
    dpi = Image.open(path).info["dpi"]
    assert round(dpi[0]) == round(dpi[1]) >= 120
    assert min(sizes) * dpi[0] / 72 >= 14  # legend letters at least 14 pixels high
