"""Baselines beside the gated cells: the plain tanh RNN (Elman 1990) and the minimal gated unit
(Zhou et al. 2016).

The equations and examples are in the cells' docstrings (``help(TanhRNNCell)``, ``help(MGUCell)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from lstm_variants.cells.base import Params, RecurrentCell, along_last, split_features


class TanhRNNCell(RecurrentCell):
    """Elman's simple recurrent network with a tanh non-linearity::

        h_new = tanh(W x + R h + b)

    Example::

        >>> import jax, jax.numpy as jnp
        >>> from lstm_variants.cells import TanhRNNCell
        >>> cell = TanhRNNCell(features=4)
        >>> x = jnp.ones((2, 3))
        >>> variables = cell.init(jax.random.key(0), cell.initialize_carry(None, x.shape), x)
        >>> sorted(variables["params"])
        ['R', 'W', 'b']
    """

    @nn.nowrap
    def param_shapes(self, input_size):
        return {
            "W": (self.kernel_init, (input_size, self.features)),
            "R": (self.recurrent_kernel_init, (self.features, self.features)),
            "b": (self.bias_init, (self.features,)),
        }

    @nn.nowrap
    def project(self, params: Params, x):
        out = x @ params["W"]
        return out + along_last(params["b"], out)

    @nn.nowrap
    def split_recurrent(self, params: Params):
        return (params["R"],), {}

    @nn.nowrap
    def recurrent_inputs(self, carry):
        return (carry,)

    @nn.nowrap
    def step(self, step_params, carry, px, ms):
        h_new = jnp.tanh(px + ms[0])
        return h_new, h_new


class MGUCell(RecurrentCell):
    """Minimal gated unit (Zhou et al. 2016): one forget gate doing the work of the GRU's two::

        f = sigma(W_f x + U_f h + b_f)
        n = tanh(W_h x + U_h (f * h) + b_h)
        h_new = (1 - f) * h + f * n

    Example::

        >>> import jax, jax.numpy as jnp
        >>> from lstm_variants.cells import MGUCell
        >>> cell = MGUCell(features=4)
        >>> x = jnp.ones((2, 3))
        >>> variables = cell.init(jax.random.key(0), cell.initialize_carry(None, x.shape), x)
        >>> sorted(variables["params"])
        ['U_f', 'U_h', 'W_f', 'W_h', 'b_f', 'b_h']
    """

    @nn.nowrap
    def param_shapes(self, input_size):
        n_in, n_hid = input_size, self.features
        return {
            "W_f": (self.kernel_init, (n_in, n_hid)),
            "W_h": (self.kernel_init, (n_in, n_hid)),
            "U_f": (self.recurrent_kernel_init, (n_hid, n_hid)),
            "U_h": (self.recurrent_kernel_init, (n_hid, n_hid)),
            "b_f": (self.bias_init, (n_hid,)),
            "b_h": (self.bias_init, (n_hid,)),
        }

    @nn.nowrap
    def project(self, params: Params, x):
        out = x @ jnp.concatenate([params["W_f"], params["W_h"]], axis=-1)
        return out + along_last(jnp.concatenate([params["b_f"], params["b_h"]]), out)

    @nn.nowrap
    def split_recurrent(self, params: Params):
        return (params["U_f"],), {"U_h": params["U_h"]}

    @nn.nowrap
    def recurrent_inputs(self, carry):
        return (carry,)

    @nn.nowrap
    def step(self, step_params, carry, px, ms):
        h = carry
        f = self._forget(px, ms)
        n = jnp.tanh(split_features(px, 2)[1] + (f * h) @ step_params["U_h"])
        h_new = (1.0 - f) * h + f * n
        return h_new, h_new

    @nn.nowrap
    def gate_values(self, step_params, carry, px, ms):
        """{'f': the forget gate} of this step (h_new = (1 - f) h + f n)."""
        return {"f": self._forget(px, ms)}

    @nn.nowrap
    def _forget(self, px, ms):
        return jax.nn.sigmoid(split_features(px, 2)[0] + ms[0])
