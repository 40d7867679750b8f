"""The contract every recurrent cell follows, so that one sequence model and one fast recurrence
serve all of them.

A cell splits its step into the parts that do and do not depend on time order:

```
px_t          = project(params, x_t)                     all time steps at once, outside the loop
m_t[k]        = a_t[k] @ R[k],  a_t = recurrent_inputs(carry_{t-1})   the recurrent products
carry_t, y_t  = step(step_params, carry_{t-1}, px_t, m_t)            element-wise gate math (+ any
                                                                      product that needs a gate first)
```

``split_recurrent(params)`` returns the fused recurrent matrices ``R[k]`` and the remaining
parameters the step needs. Keeping the products ``a @ R`` outside ``step`` is what lets the fast
recurrence (``lstm_variants.recurrence``) compute each ``dR[k]`` as one matrix product after the time
loop instead of an outer product per step.

Parameters are created under the names of the papers (``W_z``, ``R_i``, ``p_f``, ``b_o``, ...), so
``cell.paper_params`` *is* the paper-notation view: there is no separate fused storage to decode.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from lstm_variants.initializers import Initializer, make_initializer

Params = dict[str, jax.Array]


def along_last(v: jax.Array, like: jax.Array) -> jax.Array:
    """Reshape a feature vector so it broadcasts against ``like`` without implicit rank promotion."""
    return v.reshape((1,) * (like.ndim - 1) + v.shape)


def split_features(x: jax.Array, parts: int) -> list[jax.Array]:
    """Split the last axis into ``parts`` equal blocks (the gates of a fused pre-activation)."""
    return jnp.split(x, parts, axis=-1)


class RecurrentCell(nn.RNNCellBase):
    """Base class: parameter creation, the per-step ``__call__`` for ``flax.linen.RNN``, carry init.

    Attributes:
      features: number of hidden units H.
      kernel_init: initialiser of the input weights W_* (default Glorot/Xavier uniform).
      recurrent_kernel_init: initialiser of the recurrent weights R_* / U_* (default orthogonal).
      bias_init: initialiser of the biases b_* (default zeros).
      peephole_init: initialiser of peephole vectors p_* (default U(-0.1, 0.1)).
      param_dtype: dtype of the parameters (default float32).
    """

    features: int
    kernel_init: Initializer = make_initializer("glorot_uniform")
    recurrent_kernel_init: Initializer = make_initializer("orthogonal")
    bias_init: Initializer = make_initializer("zeros")
    peephole_init: Initializer = make_initializer("uniform", 0.1)
    param_dtype: Any = jnp.float32

    @nn.nowrap
    def param_shapes(self, input_size: int) -> dict[str, tuple[Initializer, tuple[int, ...]]]:
        """Name -> (initialiser, shape) of every parameter, in the paper's notation."""
        raise NotImplementedError

    @nn.compact
    def paper_params(self, input_size: int) -> Params:
        """Create (or fetch) the parameters and return them by their paper names."""
        return {
            name: self.param(name, init, shape, self.param_dtype)
            for name, (init, shape) in self.param_shapes(input_size).items()
        }

    @nn.nowrap
    def project(self, params: Params, x: jax.Array) -> jax.Array:
        """Input pre-activations for any leading axes of ``x`` (..., D) -> (..., P)."""
        raise NotImplementedError

    @nn.nowrap
    def split_recurrent(self, params: Params) -> tuple[tuple[jax.Array, ...], Params]:
        """(fused recurrent matrices R[k], parameters used inside ``step``)."""
        raise NotImplementedError

    @nn.nowrap
    def recurrent_inputs(self, carry) -> tuple[jax.Array, ...]:
        """The vectors a[k] that multiply R[k] at this step."""
        raise NotImplementedError

    @nn.nowrap
    def step(self, step_params: Params, carry, px: jax.Array, ms: tuple[jax.Array, ...]):
        """One time step given the input pre-activation and the recurrent products."""
        raise NotImplementedError

    @nn.nowrap
    def gate_values(
        self, step_params: Params, carry, px: jax.Array, ms: tuple[jax.Array, ...]
    ) -> dict[str, jax.Array]:
        """The gate activations of the step ``step(step_params, carry, px, ms)`` takes, by paper name.

        For diagnostics (``lstm_variants.diagnostics.gate_stats``): each cell family computes them
        with the code its ``step`` uses, so no equation is written twice. A removed gate is absent;
        a cell without gates (the tanh RNN, the default here) returns {}.
        """
        return {}

    @nn.nowrap
    def step_vjp(self, step_params: Params, carry, px: jax.Array, ms, d_carry, d_y):
        """Optional hand-written pullback of ``step``, for the fast recurrence's backward loop.

        Args:
          step_params, carry, px, ms: the arguments ``step`` was called with.
          d_carry, d_y: cotangents of ``step``'s outputs (new carry, output).

        Returns:
          ``(d_carry, d_px, d_ms, d_step_params)``, the cotangents of ``step``'s inputs (``d_carry``
          without what flows through the products ``ms``), or None (the default): the recurrence
          then differentiates ``step`` with ``jax.vjp``. Worth writing only where it gives XLA
          fewer, larger kernels per step than autodiff does (the LSTM: see ``LSTMCell.step_vjp``).
        """
        return None

    @nn.nowrap
    def carry_size(self) -> int:
        """How many (batch, H) arrays the carry holds."""
        return 1

    @nn.nowrap
    def output_of(self, carry) -> jax.Array:
        """The hidden state the next layer and the readout see."""
        return carry

    def __call__(self, carry, inputs: jax.Array):
        """One step, for use as a drop-in cell of ``flax.linen.RNN``."""
        params = self.paper_params(inputs.shape[-1])
        recurrent, step_params = self.split_recurrent(params)
        ms = tuple(a @ r for a, r in zip(self.recurrent_inputs(carry), recurrent, strict=True))
        return self.step(step_params, carry, self.project(params, inputs), ms)

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array | None, input_shape: tuple[int, ...]):
        """Zero carry for inputs of shape (*batch, D)."""
        zeros = jnp.zeros(tuple(input_shape[:-1]) + (self.features,), self.param_dtype)
        n = self.carry_size()
        return zeros if n == 1 else (zeros,) * n

    @property
    def num_feature_axes(self) -> int:
        return 1
