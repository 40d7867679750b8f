"""The three architectures found by the evolutionary search of Jozefowicz et al. (2015), Fig. 4.

The equations and an example are in ``MUTCell``'s docstring (``help(MUTCell)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from lstm_variants.cells.base import Params, RecurrentCell, along_last, split_features
from lstm_variants.errors import ConfigError

# Per variant: the input matrices in the order of the fused pre-activation (u, r, candidate).
_INPUT_KERNELS = {1: ("W_u", "W_r", "W_x"), 2: ("W_u", "W_x", "W_h"), 3: ("W_u", "W_r", "W_h")}


class MUTCell(RecurrentCell):
    """MUT1, MUT2 or MUT3 of Jozefowicz et al. (2015).

    Where an equation adds the input to a hidden-size vector (``tanh(x)`` in MUT1, ``x`` in
    MUT2), x is the input after a learned projection to the hidden size, ``W_x x`` (no bias), as
    in the paper where inputs are embeddings of the hidden size::

        MUT1: u = sigma(W_u x + b_u)
              r = sigma(W_r x + U_r h + b_r)
              h_new = tanh(U_h (r * h) + tanh(W_x x) + b_h) * u + h * (1 - u)

        MUT2: u = sigma(W_u x + U_u h + b_u)
              r = sigma(W_x x + U_r h + b_r)
              h_new = tanh(U_h (r * h) + W_h x + b_h) * u + h * (1 - u)

        MUT3: u = sigma(W_u x + U_u tanh(h) + b_u)
              r = sigma(W_r x + U_r h + b_r)
              h_new = tanh(U_h (r * h) + W_h x + b_h) * u + h * (1 - u)

    Attributes:
      variant: 1, 2 or 3 (default 1).

    Example::

        >>> import jax, jax.numpy as jnp
        >>> from lstm_variants.cells import MUTCell
        >>> cell = MUTCell(features=4, variant=1)
        >>> x = jnp.ones((2, 3))
        >>> variables = cell.init(jax.random.key(0), cell.initialize_carry(None, x.shape), x)
        >>> sorted(variables["params"])
        ['U_h', 'U_r', 'W_r', 'W_u', 'W_x', 'b_h', 'b_r', 'b_u']
    """

    variant: int = 1

    def __post_init__(self):
        if self.variant not in _INPUT_KERNELS:
            raise ConfigError(f"MUT variant must be 1, 2 or 3, not {self.variant}")
        super().__post_init__()

    @nn.nowrap
    def param_shapes(self, input_size):
        n_in, n_hid = input_size, self.features
        shapes = {w: (self.kernel_init, (n_in, n_hid)) for w in _INPUT_KERNELS[self.variant]}
        recurrent = ("U_r", "U_h") if self.variant == 1 else ("U_u", "U_r", "U_h")
        shapes |= {u: (self.recurrent_kernel_init, (n_hid, n_hid)) for u in recurrent}
        shapes |= {b: (self.bias_init, (n_hid,)) for b in ("b_u", "b_r", "b_h")}
        return shapes

    @nn.nowrap
    def project(self, params: Params, x):
        w_u, w_r, w_c = (x @ params[w] for w in _INPUT_KERNELS[self.variant])
        if self.variant == 1:
            w_c = jnp.tanh(w_c)
        out = jnp.concatenate([w_u, w_r, w_c], axis=-1)
        bias = jnp.concatenate([params["b_u"], params["b_r"], params["b_h"]])
        return out + along_last(bias, out)

    @nn.nowrap
    def split_recurrent(self, params: Params):
        step_params = {"U_h": params["U_h"]}
        if self.variant == 1:
            return (params["U_r"],), step_params
        if self.variant == 2:
            return (jnp.concatenate([params["U_u"], params["U_r"]], axis=-1),), step_params
        return (params["U_u"], params["U_r"]), step_params

    @nn.nowrap
    def recurrent_inputs(self, carry):
        return (jnp.tanh(carry), carry) if self.variant == 3 else (carry,)

    @nn.nowrap
    def step(self, step_params, carry, px, ms):
        h = carry
        u, r = self._gates(px, ms)
        px_c = split_features(px, 3)[2]
        h_new = jnp.tanh((r * h) @ step_params["U_h"] + px_c) * u + h * (1.0 - u)
        return h_new, h_new

    @nn.nowrap
    def gate_values(self, step_params, carry, px, ms):
        """{'u': update gate, 'r': reset gate} of this step."""
        u, r = self._gates(px, ms)
        return {"u": u, "r": r}

    @nn.nowrap
    def _gates(self, px, ms):
        """(u, r) of one step, from the input pre-activations and the recurrent products."""
        px_u, px_r, _ = split_features(px, 3)
        if self.variant == 1:
            u = jax.nn.sigmoid(px_u)
            r = jax.nn.sigmoid(px_r + ms[0])
        elif self.variant == 2:
            m_u, m_r = split_features(ms[0], 2)
            u = jax.nn.sigmoid(px_u + m_u)
            r = jax.nn.sigmoid(px_r + m_r)
        else:
            u = jax.nn.sigmoid(px_u + ms[0])
            r = jax.nn.sigmoid(px_r + ms[1])
        return u, r
