"""The gated recurrent unit (Cho et al. 2014), in both placements of the reset gate.

The equations of both, and an example, are in ``GRUCell``'s docstring (``help(GRUCell)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from lstm_variants.cells.base import Params, RecurrentCell, along_last, split_features


class GRUCell(RecurrentCell):
    """Gated recurrent unit of Cho et al. (2014).

    Reset before (Cho et al. 2014; the GRU of Jozefowicz et al. 2015)::

        r = sigma(W_r x + U_r h + b_r)                reset gate
        u = sigma(W_u x + U_u h + b_u)                update gate
        n = tanh(W_n x + U_n (r * h) + b_n)           candidate
        h_new = u * h + (1 - u) * n

    Reset after (cuDNN, PyTorch and ``flax.linen.GRUCell``)::

        n = tanh(W_n x + b_n + r * (U_n h + b_hn))

    Attributes:
      reset_after: apply the reset gate after the recurrent product (default False, Cho et al.;
        True matches cuDNN, PyTorch and ``flax.linen.GRUCell``).

    Example::

        >>> import jax, jax.numpy as jnp
        >>> from lstm_variants.cells import GRUCell
        >>> cell = GRUCell(features=4, reset_after=True)
        >>> x = jnp.ones((2, 3))
        >>> variables = cell.init(jax.random.key(0), cell.initialize_carry(None, x.shape), x)
        >>> "b_hn" in variables["params"]
        True
    """

    reset_after: bool = False

    @nn.nowrap
    def param_shapes(self, input_size):
        n_in, n_hid = input_size, self.features
        shapes = {f"W_{g}": (self.kernel_init, (n_in, n_hid)) for g in "run"}
        shapes |= {f"U_{g}": (self.recurrent_kernel_init, (n_hid, n_hid)) for g in "run"}
        shapes |= {f"b_{g}": (self.bias_init, (n_hid,)) for g in "run"}
        if self.reset_after:
            shapes["b_hn"] = (self.bias_init, (n_hid,))
        return shapes

    @nn.nowrap
    def project(self, params: Params, x):
        kernel = jnp.concatenate([params["W_r"], params["W_u"], params["W_n"]], axis=-1)
        bias = jnp.concatenate([params["b_r"], params["b_u"], params["b_n"]])
        out = x @ kernel
        return out + along_last(bias, out)

    @nn.nowrap
    def split_recurrent(self, params: Params):
        if self.reset_after:
            fused = jnp.concatenate([params["U_r"], params["U_u"], params["U_n"]], axis=-1)
            return (fused,), {"b_hn": params["b_hn"]}
        fused = jnp.concatenate([params["U_r"], params["U_u"]], axis=-1)
        return (fused,), {"U_n": params["U_n"]}

    @nn.nowrap
    def recurrent_inputs(self, carry):
        return (carry,)

    @nn.nowrap
    def step(self, step_params, carry, px, ms):
        h = carry
        _, u, n = self._gates(step_params, h, px, ms)
        h_new = u * h + (1.0 - u) * n
        return h_new, h_new

    @nn.nowrap
    def gate_values(self, step_params, carry, px, ms):
        """{'r': reset gate, 'u': update gate} of this step."""
        r, u, _ = self._gates(step_params, carry, px, ms)
        return {"r": r, "u": u}

    @nn.nowrap
    def _gates(self, step_params, h, px, ms):
        """(r, u, n): reset gate, update gate and candidate of one step."""
        px_r, px_u, px_n = split_features(px, 3)
        if self.reset_after:
            m_r, m_u, m_n = split_features(ms[0], 3)
            r = jax.nn.sigmoid(px_r + m_r)
            n = jnp.tanh(px_n + r * (m_n + along_last(step_params["b_hn"], m_n)))
        else:
            m_r, m_u = split_features(ms[0], 2)
            r = jax.nn.sigmoid(px_r + m_r)
            n = jnp.tanh(px_n + (r * h) @ step_params["U_n"])
        u = jax.nn.sigmoid(px_u + m_u)
        return r, u, n
