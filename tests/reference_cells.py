"""Per-step references written from the equations of DESIGN.md section 2, one Python loop over
time, no fusing, no scan: the slow path the fast path is checked against.

Each ``*_step(P, state, x)`` takes the paper-notation parameters P and returns (state, y).
"""

import jax
import jax.numpy as jnp
from jax.nn import sigmoid

IDENTITY = lambda v: v  # noqa: E731


def lstm_step(P, state, x, flags):
    """Greff's V with the variant changes of the table in DESIGN.md."""
    c_prev, y_prev, gates_prev = state
    g = IDENTITY if flags.get("input_activation") == "identity" else jnp.tanh
    h = IDENTITY if flags.get("output_activation") == "identity" else jnp.tanh
    peep = flags.get("peepholes", True)
    fgr = flags.get("full_gate_recurrence", False)

    def gate_recurrence(target):
        # FGR: i-bar += R_i<target> i' + R_f<target> f' + R_o<target> o'
        if not fgr:
            return 0.0
        return sum(gates_prev[s] @ P[f"R_{s}{target}"] for s in gates_prev)

    z = g(x @ P["W_z"] + y_prev @ P["R_z"] + P["b_z"])
    if flags.get("input_gate", True):
        i = sigmoid(
            x @ P["W_i"]
            + y_prev @ P["R_i"]
            + (P["p_i"] * c_prev if peep else 0.0)
            + P["b_i"]
            + gate_recurrence("i")
        )
    else:
        i = 1.0
    if flags.get("coupled_gates", False):
        f = 1.0 - i
    elif flags.get("forget_gate", True):
        f = sigmoid(
            x @ P["W_f"]
            + y_prev @ P["R_f"]
            + (P["p_f"] * c_prev if peep else 0.0)
            + P["b_f"]
            + gate_recurrence("f")
        )
    else:
        f = 1.0
    c = z * i + c_prev * f
    if flags.get("output_gate", True):
        o = sigmoid(
            x @ P["W_o"]
            + y_prev @ P["R_o"]
            + (P["p_o"] * c if peep else 0.0)
            + P["b_o"]
            + gate_recurrence("o")
        )
    else:
        o = 1.0
    y = h(c) * o
    own = {"i": i, "f": f, "o": o}
    return (c, y, {k: own[k] for k in gates_prev}), y


def gru_step(P, h, x, reset_after):
    r = sigmoid(x @ P["W_r"] + h @ P["U_r"] + P["b_r"])
    u = sigmoid(x @ P["W_u"] + h @ P["U_u"] + P["b_u"])
    if reset_after:
        n = jnp.tanh(x @ P["W_n"] + P["b_n"] + r * (h @ P["U_n"] + P["b_hn"]))
    else:
        n = jnp.tanh(x @ P["W_n"] + (r * h) @ P["U_n"] + P["b_n"])
    h_new = u * h + (1 - u) * n
    return h_new, h_new


def mut_step(P, h, x, variant):
    if variant == 1:
        u = sigmoid(x @ P["W_u"] + P["b_u"])
        r = sigmoid(x @ P["W_r"] + h @ P["U_r"] + P["b_r"])
        h_new = jnp.tanh((r * h) @ P["U_h"] + jnp.tanh(x @ P["W_x"]) + P["b_h"]) * u + h * (1 - u)
    elif variant == 2:
        u = sigmoid(x @ P["W_u"] + h @ P["U_u"] + P["b_u"])
        r = sigmoid(x @ P["W_x"] + h @ P["U_r"] + P["b_r"])
        h_new = jnp.tanh((r * h) @ P["U_h"] + x @ P["W_h"] + P["b_h"]) * u + h * (1 - u)
    else:
        u = sigmoid(x @ P["W_u"] + jnp.tanh(h) @ P["U_u"] + P["b_u"])
        r = sigmoid(x @ P["W_r"] + h @ P["U_r"] + P["b_r"])
        h_new = jnp.tanh((r * h) @ P["U_h"] + x @ P["W_h"] + P["b_h"]) * u + h * (1 - u)
    return h_new, h_new


def tanh_rnn_step(P, h, x):
    h_new = jnp.tanh(x @ P["W"] + h @ P["R"] + P["b"])
    return h_new, h_new


def mgu_step(P, h, x):
    f = sigmoid(x @ P["W_f"] + h @ P["U_f"] + P["b_f"])
    n = jnp.tanh(x @ P["W_h"] + (f * h) @ P["U_h"] + P["b_h"])
    h_new = (1 - f) * h + f * n
    return h_new, h_new


def reference_layer(kind, flags, P, xs, lengths, hidden, return_state=False):
    """Run one layer over (B, T, D) inputs one step at a time; padded steps keep the state.

    Returns the (B, T, H) outputs, and with ``return_state`` also the final state: (c, y, gates)
    for the LSTM kinds, h for the others.
    """
    # The equations are written with NumPy broadcasting, as on paper.
    with jax.numpy_rank_promotion("allow"):
        outputs, state = _reference_layer(kind, flags, P, xs, lengths, hidden)
    return (outputs, state) if return_state else outputs


def _reference_layer(kind, flags, P, xs, lengths, hidden):
    batch, steps, _ = xs.shape
    zeros = jnp.zeros((batch, hidden), xs.dtype)
    if kind == "lstm":
        own = [
            g
            for g in "ifo"
            if flags.get({"i": "input_gate", "f": "forget_gate", "o": "output_gate"}[g], True)
        ]
        if flags.get("coupled_gates"):
            own.remove("f")
        state = (zeros, zeros, {g: zeros for g in own} if flags.get("full_gate_recurrence") else {})
        step = lambda s, x: lstm_step(P, s, x, flags)  # noqa: E731
    else:
        state = zeros
        step = {
            "gru": lambda s, x: gru_step(P, s, x, flags["reset_after"]),
            "mut": lambda s, x: mut_step(P, s, x, flags["variant"]),
            "tanh_rnn": lambda s, x: tanh_rnn_step(P, s, x),
            "mgu": lambda s, x: mgu_step(P, s, x),
        }[kind]
    outputs = []
    for t in range(steps):
        new_state, y = step(state, xs[:, t])
        valid = (t < lengths)[:, None]
        state = _select(valid, new_state, state)
        outputs.append(jnp.where(valid, y, 0.0))
    return jnp.stack(outputs, axis=1), state


def _select(valid, new, old):
    if isinstance(new, dict):
        return {k: _select(valid, new[k], old[k]) for k in new}
    if isinstance(new, tuple):
        return tuple(_select(valid, n, o) for n, o in zip(new, old, strict=True))
    return jnp.where(valid, new, old)
