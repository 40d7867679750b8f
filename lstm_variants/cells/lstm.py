"""One LSTM cell configured by ablation flags: Greff et al.'s V and its eight variants, and the
LSTM variants of Jozefowicz et al. (2015), without nine copies of the same code.

The equations, the flags and an example are in ``LSTMCell``'s docstring (``help(LSTMCell)``).

A removed gate has no parameters at all (not zero-initialised ones), so the parameter count and the
optimiser see the ablated model exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from lstm_variants.cells.base import Params, RecurrentCell, along_last, split_features
from lstm_variants.errors import ConfigError

ACTIVATIONS = {"tanh": jnp.tanh, "identity": lambda x: x}


class LSTMCell(RecurrentCell):
    """LSTM block of Greff et al. (2017) with ablation flags.

    Greff et al. (2017), "LSTM: A Search Space Odyssey", vanilla LSTM ("V") with peepholes::

        z = g(W_z x + R_z y' + b_z)                   block input      (y' = y^{t-1}, c' = c^{t-1})
        i = sigma(W_i x + R_i y' + p_i * c' + b_i)    input gate
        f = sigma(W_f x + R_f y' + p_f * c' + b_f)    forget gate
        c = z * i + c' * f                            cell
        o = sigma(W_o x + R_o y' + p_o * c + b_o)     output gate (its peephole sees the NEW cell)
        y = h(c) * o                                  block output

    Each flag is one of the paper's changes to V:

        input_gate=False         NIG   i = 1
        forget_gate=False        NFG   f = 1
        output_gate=False        NOG   o = 1
        input_activation='identity'   NIAF  g(x) = x
        output_activation='identity'  NOAF  h(x) = x
        peepholes=False          NP    p_i, p_f, p_o removed (Jozefowicz's LSTM)
        coupled_gates=True       CIFG  f = 1 - i, no forget-gate parameters
        full_gate_recurrence=True  FGR  gate activations of step t-1 feed every gate at step t:
                                 i-bar += R_ii i' + R_fi f' + R_oi o' (likewise f, o; nine matrices
                                 R_<source><target>); the carry holds (c, y, i, f, o)
        forget_bias=1.0          LSTM-b (Jozefowicz): b_f initialised to 1

    Attributes:
      input_gate: keep the input gate i (default True; False is NIG).
      forget_gate: keep the forget gate f (default True; False is NFG).
      output_gate: keep the output gate o (default True; False is NOG).
      input_activation: g, 'tanh' (default) or 'identity' (NIAF).
      output_activation: h, 'tanh' (default) or 'identity' (NOAF).
      peepholes: keep p_i, p_f, p_o (default True; False is NP).
      coupled_gates: f = 1 - i (default False; True is CIFG).
      full_gate_recurrence: gates of step t-1 feed all gates (default False; True is FGR).
      forget_bias: added to the initial b_f (default 0.0; 1.0 is LSTM-b).

    Example::

        >>> import jax, jax.numpy as jnp
        >>> from lstm_variants.cells import LSTMCell
        >>> cell = LSTMCell(features=4, coupled_gates=True)
        >>> x = jnp.ones((2, 3))
        >>> carry = cell.initialize_carry(None, x.shape)
        >>> variables = cell.init(jax.random.key(0), carry, x)
        >>> sorted(variables["params"])[:4]
        ['R_i', 'R_o', 'R_z', 'W_i']
    """

    input_gate: bool = True
    forget_gate: bool = True
    output_gate: bool = True
    input_activation: str = "tanh"
    output_activation: str = "tanh"
    peepholes: bool = True
    coupled_gates: bool = False
    full_gate_recurrence: bool = False
    forget_bias: float = 0.0

    def __post_init__(self):
        for which in (self.input_activation, self.output_activation):
            if which not in ACTIVATIONS:
                raise ConfigError(f"unknown activation '{which}'; valid: {', '.join(ACTIVATIONS)}")
        if self.coupled_gates and not (self.input_gate and self.forget_gate):
            raise ConfigError("coupled_gates (CIFG) needs both the input and the forget gate")
        if self.forget_bias and "f" not in self.gates():
            raise ConfigError(
                f"forget_bias={self.forget_bias} sets the initial b_f, and this cell has none "
                "(no forget gate, or CIFG's f = 1 - i): drop cell.options.forget_bias"
            )
        super().__post_init__()

    @nn.nowrap
    def gates(self) -> tuple[str, ...]:
        """Components with their own parameters, in the order of the fused pre-activation."""
        has = {
            "z": True,
            "i": self.input_gate,
            "f": self.forget_gate and not self.coupled_gates,
            "o": self.output_gate,
        }
        return tuple(name for name, present in has.items() if present)

    @nn.nowrap
    def peephole_gates(self) -> tuple[str, ...]:
        return tuple(g for g in self.gates() if g != "z") if self.peepholes else ()

    @nn.nowrap
    def recurrent_gates(self) -> tuple[str, ...]:
        """Sources and targets of the FGR gate-to-gate matrices."""
        return tuple(g for g in self.gates() if g != "z") if self.full_gate_recurrence else ()

    @nn.nowrap
    def param_shapes(self, input_size):
        n_in, n_hid = input_size, self.features
        shapes = {}
        for g in self.gates():
            shapes[f"W_{g}"] = (self.kernel_init, (n_in, n_hid))
        for g in self.gates():
            shapes[f"R_{g}"] = (self.recurrent_kernel_init, (n_hid, n_hid))
        for source in self.recurrent_gates():
            for target in self.recurrent_gates():
                shapes[f"R_{source}{target}"] = (self.recurrent_kernel_init, (n_hid, n_hid))
        for g in self.peephole_gates():
            shapes[f"p_{g}"] = (self.peephole_init, (n_hid,))
        for g in self.gates():
            bias_init = self.bias_init
            if g == "f" and self.forget_bias:
                bias_init = _shifted(self.bias_init, self.forget_bias)
            shapes[f"b_{g}"] = (bias_init, (n_hid,))
        return shapes

    @nn.nowrap
    def project(self, params: Params, x):
        kernel = jnp.concatenate([params[f"W_{g}"] for g in self.gates()], axis=-1)
        bias = jnp.concatenate([params[f"b_{g}"] for g in self.gates()])
        out = x @ kernel
        return out + along_last(bias, out)

    @nn.nowrap
    def split_recurrent(self, params: Params):
        recurrent = [jnp.concatenate([params[f"R_{g}"] for g in self.gates()], axis=-1)]
        sources = self.recurrent_gates()
        if sources:
            recurrent.append(
                jnp.concatenate(
                    [
                        jnp.concatenate([params[f"R_{s}{t}"] for t in sources], axis=-1)
                        for s in sources
                    ],
                    axis=0,
                )
            )
        return tuple(recurrent), {f"p_{g}": params[f"p_{g}"] for g in self.peephole_gates()}

    @nn.nowrap
    def carry_size(self) -> int:
        return 2 + len(self.recurrent_gates())

    @nn.nowrap
    def output_of(self, carry):
        return carry[1]

    @nn.nowrap
    def recurrent_inputs(self, carry):
        c_prev, y_prev, *gates_prev = carry
        if gates_prev:
            return y_prev, jnp.concatenate(gates_prev, axis=-1)
        return (y_prev,)

    @nn.nowrap
    def step(self, step_params, carry, px, ms):
        c_prev, y_prev, *_ = carry
        _, i, f, c, o, h_c = self._forward(step_params, c_prev, self._pre_activation(carry, px, ms))
        y = h_c if o is None else h_c * o
        own = {"i": i, "f": f, "o": o}
        new_carry = (c, y, *(own[g] for g in self.recurrent_gates()))
        return new_carry, y

    @nn.nowrap
    def gate_values(self, step_params, carry, px, ms):
        """{'i', 'f', 'o'} of this step, those present (CIFG's f = 1 - i included; NFG has no 'f')."""
        _, i, f, _, o, _ = self._forward(step_params, carry[0], self._pre_activation(carry, px, ms))
        return {name: gate for name, gate in (("i", i), ("f", f), ("o", o)) if gate is not None}

    @nn.nowrap
    def _pre_activation(self, carry, px, ms):
        """The fused pre-activation of z and the gates, without the peephole terms."""
        pre = px + ms[0]
        if self.recurrent_gates():
            # Gate-to-gate terms feed every gate but not the block input z, which is first.
            pre = pre + jnp.concatenate([jnp.zeros_like(carry[0]), ms[1]], axis=-1)
        return pre

    @nn.nowrap
    def _forward(self, step_params, c_prev, pre):
        """(z, i, f, c, o, h(c)) from the fused pre-activation; None for a removed gate.

        Every sigmoid is written as sigma(x) = (1 + tanh(x / 2)) / 2, so that all the gates that do
        not need the new cell state share ONE tanh over their concatenated pre-activations, and the
        output gate (when its peephole needs the new c) shares a second one with h(c). On XLA CPU
        this is what sets the cost of a time step: every separate transcendental becomes its own
        kernel, and at H = 128 a kernel's launch costs more than its arithmetic.
        """
        parts = dict(zip(self.gates(), split_features(pre, len(self.gates())), strict=True))

        def gate_input(gate: str, cell_state: jax.Array) -> jax.Array:
            name = f"p_{gate}"
            if name in step_params:
                return 0.5 * (parts[gate] + along_last(step_params[name], cell_state) * cell_state)
            return 0.5 * parts[gate]

        late_o = self.output_gate and "p_o" in step_params  # o's peephole sees the new c
        early = {}
        if self.input_activation == "tanh":
            early["z"] = parts["z"]
        for gate in ("i", "f", "o"):
            if gate in parts and not (gate == "o" and late_o):
                early[gate] = gate_input(gate, c_prev)
        t = _shared_tanh(early)
        z = t["z"] if "z" in t else parts["z"]
        i = 0.5 * t["i"] + 0.5 if "i" in t else None
        if self.coupled_gates:
            f = 1.0 - i
        else:
            f = 0.5 * t["f"] + 0.5 if "f" in t else None
        c = (z if i is None else z * i) + (c_prev if f is None else c_prev * f)
        late = {"o": gate_input("o", c)} if late_o else {}
        if self.output_activation == "tanh":
            late["h"] = c
        t_late = _shared_tanh(late)
        if self.output_gate:
            o = 0.5 * (t_late["o"] if late_o else t["o"]) + 0.5
        else:
            o = None
        h_c = t_late["h"] if "h" in t_late else c
        return z, i, f, c, o, h_c

    @nn.nowrap
    def step_vjp(self, step_params, carry, px, ms, d_carry, d_y):
        """The pullback of ``step`` written out (all variants but FGR, which uses ``jax.vjp``).

        With dy, dc the total output and cell cotangents::

            d_o-bar = dy * h(c) * o (1 - o)
            dc      = dc_next + dy * o * h'(c) + d_o-bar * p_o
            d_z-bar = dc * i * g'(z-bar)
            d_i-bar = dc * z * i (1 - i)           (CIFG: dc * (z - c') * i (1 - i))
            d_f-bar = dc * c' * f (1 - f)
            dc'     = dc * f + d_i-bar * p_i + d_f-bar * p_f
            dp_i = sum_b d_i-bar c',  dp_f = sum_b d_f-bar c',  dp_o = sum_b d_o-bar c

        y' reaches the step only through the products, so its direct cotangent is zero. Autodiff of
        ``step`` gives the same numbers with about twice as many XLA kernels per time step.
        """
        if self.recurrent_gates():
            return None
        c_prev, y_prev = carry
        d_c_next, d_y_next = d_carry
        z, i, f, c, o, h_c = self._forward(step_params, c_prev, px + ms[0])

        def peep(gate):
            name = f"p_{gate}"
            return along_last(step_params[name], c_prev) if name in step_params else None

        dy = d_y_next + d_y
        d_pre, d_sp = {}, {}
        dc = d_c_next + dy * (1.0 if o is None else o) * _derivative(self.output_activation, h_c)
        if o is not None:
            d_pre["o"] = dy * h_c * o * (1.0 - o)
            if peep("o") is not None:
                dc = dc + d_pre["o"] * peep("o")
                d_sp["p_o"] = _sum_batch(d_pre["o"] * c)
        d_pre["z"] = dc * (1.0 if i is None else i) * _derivative(self.input_activation, z)
        d_c_prev = dc if f is None else dc * f
        if i is not None:
            d_i = dc * (z - c_prev) if self.coupled_gates else dc * z
            d_pre["i"] = d_i * i * (1.0 - i)
        if self.forget_gate and not self.coupled_gates:
            d_pre["f"] = dc * c_prev * f * (1.0 - f)
        for gate in ("i", "f"):
            if gate in d_pre and peep(gate) is not None:
                d_c_prev = d_c_prev + d_pre[gate] * peep(gate)
                d_sp[f"p_{gate}"] = _sum_batch(d_pre[gate] * c_prev)
        d_fused = jnp.concatenate([d_pre[g] for g in self.gates()], axis=-1)
        return (d_c_prev, jnp.zeros_like(y_prev)), d_fused, (d_fused,), d_sp


def _shared_tanh(blocks: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """tanh of each (..., H) block, computed as one tanh over their concatenation."""
    if not blocks:
        return {}
    out = jnp.tanh(jnp.concatenate(list(blocks.values()), axis=-1))
    return dict(zip(blocks, split_features(out, len(blocks)), strict=True))


def _derivative(activation: str, value: jax.Array):
    """g'(x) written with g(x): 1 - g^2 for tanh, 1 for the identity."""
    return 1.0 - value * value if activation == "tanh" else 1.0


def _sum_batch(x: jax.Array) -> jax.Array:
    return x.sum(axis=tuple(range(x.ndim - 1)))


def _shifted(init, offset: float):
    def shifted(key, shape, dtype=jnp.float32):
        return init(key, shape, dtype) + jnp.asarray(offset, dtype)

    return shifted
