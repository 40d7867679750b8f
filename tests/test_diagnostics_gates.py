"""Every cell's gate values (``RecurrentCell.gate_values``) against the gates written from the
equations of DESIGN.md section 2, one step, random parameters and carry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.nn import sigmoid

from lstm_variants.cells import VARIANTS, LSTMCell, make_cell
from lstm_variants.diagnostics.gate_stats import gate_values

B, D, H = 3, 4, 5


def expected_lstm_gates(cell: LSTMCell, P, carry, x):
    c_prev, y_prev, *previous = carry
    g = jnp.tanh if cell.input_activation == "tanh" else (lambda v: v)
    sources = cell.recurrent_gates()
    gates_prev = dict(zip(sources, previous, strict=True))

    def pre(gate, cell_state):
        total = x @ P[f"W_{gate}"] + y_prev @ P[f"R_{gate}"] + P[f"b_{gate}"]
        if cell.peepholes:
            total = total + P[f"p_{gate}"] * cell_state
        for source in sources:  # FGR
            total = total + gates_prev[source] @ P[f"R_{source}{gate}"]
        return total

    out = {}
    z = g(x @ P["W_z"] + y_prev @ P["R_z"] + P["b_z"])
    i = sigmoid(pre("i", c_prev)) if cell.input_gate else 1.0
    if cell.coupled_gates:
        f = 1.0 - i
    else:
        f = sigmoid(pre("f", c_prev)) if cell.forget_gate else 1.0
    c = z * i + c_prev * f
    if cell.input_gate:
        out["i"] = i
    if cell.forget_gate:
        out["f"] = f
    if cell.output_gate:
        out["o"] = sigmoid(pre("o", c))
    return out


def expected_gates(name, cell, P, carry, x):
    family = type(cell).__name__
    if family == "LSTMCell":
        return expected_lstm_gates(cell, P, carry, x)
    h = carry
    if family == "GRUCell":
        return {
            "r": sigmoid(x @ P["W_r"] + h @ P["U_r"] + P["b_r"]),
            "u": sigmoid(x @ P["W_u"] + h @ P["U_u"] + P["b_u"]),
        }
    if family == "MGUCell":
        return {"f": sigmoid(x @ P["W_f"] + h @ P["U_f"] + P["b_f"])}
    if family == "MUTCell":
        if cell.variant == 1:
            u = sigmoid(x @ P["W_u"] + P["b_u"])
            r = sigmoid(x @ P["W_r"] + h @ P["U_r"] + P["b_r"])
        elif cell.variant == 2:
            u = sigmoid(x @ P["W_u"] + h @ P["U_u"] + P["b_u"])
            r = sigmoid(x @ P["W_x"] + h @ P["U_r"] + P["b_r"])
        else:
            u = sigmoid(x @ P["W_u"] + jnp.tanh(h) @ P["U_u"] + P["b_u"])
            r = sigmoid(x @ P["W_r"] + h @ P["U_r"] + P["b_r"])
        return {"u": u, "r": r}
    return {}  # the tanh RNN has no gates


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_gate_values_follow_the_equations(name):
    cell = make_cell(name, H)
    keys = jax.random.split(jax.random.key(0), 8)
    P = {
        key: 0.5 * jax.random.normal(jax.random.fold_in(keys[0], n), shape)
        for n, (key, (_, shape)) in enumerate(sorted(cell.param_shapes(D).items()))
    }
    carry = cell.initialize_carry(None, (B, D))
    carry = jax.tree.map(
        lambda c, k: jax.nn.sigmoid(jax.random.normal(k, c.shape)),  # gates of FGR lie in (0, 1)
        carry,
        tuple(keys[2 : 2 + cell.carry_size()]) if cell.carry_size() > 1 else keys[2],
    )
    x = jax.random.normal(keys[1], (B, D))
    recurrent, step_params = cell.split_recurrent(P)
    ms = tuple(a @ r for a, r in zip(cell.recurrent_inputs(carry), recurrent, strict=True))
    got = gate_values(cell, step_params, carry, cell.project(P, x), ms)
    with jax.numpy_rank_promotion("allow"):  # the equations broadcast as on paper
        wanted = expected_gates(name, cell, P, carry, x)
    assert set(got) == set(wanted)
    for gate in wanted:
        np.testing.assert_allclose(got[gate], wanted[gate], rtol=1e-5, atol=1e-6)
