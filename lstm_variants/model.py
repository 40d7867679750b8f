"""The sequence model: stacked recurrent layers of any cell and a readout.

For each layer the input projection of all T steps is one matrix product outside the time loop
(``cell.project`` on the (T, B, D) array); only the recurrence runs inside ``lax.scan``. Padded steps
(beyond each sequence's length) change neither the carry nor, through the zeroed outputs and the
masked losses in ``lstm_variants.losses``, the loss.

Readouts: a dense layer on the last layer's outputs, at every step (music: logits of 88 sigmoids;
text: logits of a softmax) or only at each sequence's last valid step (regression on the adding
problem).

Token inputs ((B, T) integer ids, text) pass through an embedding first, so a word vocabulary never
becomes a one-hot array. For truncated BPTT over long streams the model takes each layer's initial
carry and returns the final ones; the trainer stops their gradient at window edges.

Dropout (Zaremba et al. 2014) acts on the non-recurrent connections only: the input of every layer
(after the embedding) and the last layer's output before the readout; the recurrence itself is
never dropped. Its rate is an array, one value per member of a population, which flax's
``nn.Dropout`` (a Python-float rate) cannot take, hence ``dropout`` here.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from lstm_variants.cells import make_cell
from lstm_variants.errors import ConfigError
from lstm_variants.recurrence import RECURRENCES


def dropout(x: jax.Array, rate: jax.Array | float, key: jax.Array) -> jax.Array:
    """Inverted dropout with rate p::

        x~ = m * x / (1 - p),    m_j ~ Bernoulli(1 - p) independently,  so  E[x~] = x

    ``rate`` may be traced (one value per population member); at p = 0 the result is ``x`` bit
    for bit. Requires p < 1.

    The mask of feature j is drawn from ``fold_in(key, j)`` alone, so it does not depend on how
    many features follow: a population member padded to a wider hidden size (masked units) draws
    for its own units exactly the masks it draws trained alone.
    """
    width = x.shape[-1]
    draw = jax.vmap(lambda j: jax.random.uniform(jax.random.fold_in(key, j), x.shape[:-1]))
    keep = jnp.moveaxis(draw(jnp.arange(width)), 0, -1) >= rate
    # In x's dtype: a float32 rate array would promote bfloat16 inputs, and the carry with them.
    return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros_like(x))


READOUTS = ("every_step", "last_step")


def step_mask(lengths: jax.Array, num_steps: int) -> jax.Array:
    """(B,) lengths -> (B, T) booleans, True on the valid steps."""
    return jnp.arange(num_steps)[None, :] < lengths[:, None]


def check_lengths(lengths: jax.Array, num_steps: int, readout_at: str) -> None:
    """Raise ConfigError for concrete lengths outside what the T = ``num_steps`` inputs hold.

    A length above T would be cut to T steps without a word (the last-step readout read NaN); a
    last-step readout of a length below 1 has no step to read. Traced lengths (inside ``jit``)
    cannot be checked: there the last-step readout gives NaN for either (``last_outputs``), and
    every dataset's lengths are checked in [1, T] when it is loaded (``data.base.Split``).
    """
    if isinstance(lengths, jax.core.Tracer) or not lengths.size:
        return
    lowest = 1 if readout_at == "last_step" else 0
    # In numpy: a jnp reduction inside a trace (eval_shape of init) would be traced itself.
    concrete = np.asarray(lengths)
    shortest, longest = int(concrete.min()), int(concrete.max())
    if shortest < lowest or longest > num_steps:
        reason = "a sequence has no step to read" if shortest < lowest else "steps are missing"
        raise ConfigError(
            f"lengths must lie in [{lowest}, {num_steps}] for inputs of {num_steps} steps "
            f"(readout_at={readout_at}), got [{shortest}, {longest}]: {reason}; pad the inputs "
            "to the longest sequence and give each sequence's own number of valid steps"
        )


def last_outputs(hidden: jax.Array, lengths: jax.Array) -> jax.Array:
    """(B, T, H) outputs -> (B, H): each sequence's output at its last valid step, t = length - 1.

    A length outside [1, T] gives NaN (traced lengths cannot raise; ``check_lengths`` refuses
    concrete ones): a length of 0 would otherwise index t = -1, the last padded step, and read a
    plausible but meaningless value.
    """
    num_steps = hidden.shape[1]
    index = jnp.where((lengths >= 1) & (lengths <= num_steps), lengths - 1, num_steps)
    picked = jnp.take_along_axis(hidden, index[:, None, None], axis=1, mode="fill")
    return picked[:, 0]


def check_call(model: SequenceModel, inputs: jax.Array, lengths: jax.Array, dropout_rate) -> None:
    """Raise ConfigError for settings or shapes the model cannot run as meant.

    Shapes are checked because some wrong ones would run: (B, T) floats taken as T sequences of
    B features would mix the sequences of a batch without an error.
    """
    if model.readout_at not in READOUTS:
        raise ConfigError(f"unknown readout_at {model.readout_at!r}; valid: {', '.join(READOUTS)}")
    if model.recurrence not in RECURRENCES:
        valid = ", ".join(RECURRENCES)
        raise ConfigError(f"unknown recurrence {model.recurrence!r}; valid: {valid}")
    for name in ("hidden_size", "output_size", "num_layers"):
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    for name in ("vocab_size", "embed_size"):  # 0: real-valued inputs / the hidden size
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ConfigError(f"{name} must be a whole number >= 0, got {value!r}")
    unroll = model.unroll  # lax.scan also takes True (unroll fully) and False (1)
    if not isinstance(unroll, bool) and not (isinstance(unroll, numbers.Integral) and unroll >= 1):
        raise ConfigError(f"unroll must be a whole number >= 1 or a bool, got {unroll!r}")
    tokens = jnp.issubdtype(inputs.dtype, jnp.integer)
    if model.vocab_size and not (tokens and inputs.ndim == 2):
        raise ConfigError(
            f"with vocab_size={model.vocab_size} the inputs are (B, T) integer tokens, got "
            f"shape {inputs.shape} of {inputs.dtype}"
        )
    if model.vocab_size and not isinstance(inputs, jax.core.Tracer) and inputs.size:
        # The embedding's lookup cannot raise: in a trace, an id outside [0, vocab_size) reads
        # NaN (``__call__``); concrete ids are told here.
        tokens_seen = np.asarray(inputs)  # numpy: a jnp reduction in a trace is traced
        lowest, highest = int(tokens_seen.min()), int(tokens_seen.max())
        if lowest < 0 or highest >= model.vocab_size:
            raise ConfigError(
                f"token ids must lie in [0, {model.vocab_size - 1}] for vocab_size="
                f"{model.vocab_size}, got [{lowest}, {highest}]: encode the text with the "
                "vocabulary the model was built for, and pad with 0"
            )
    if not model.vocab_size and inputs.ndim != 3:
        advice = (
            "integer tokens need vocab_size"
            if tokens
            else "one feature per step goes in a last axis of size 1: inputs[..., None]"
        )
        raise ConfigError(f"inputs must be (B, T, D), got shape {inputs.shape}; {advice}")
    if lengths.shape != inputs.shape[:1]:
        raise ConfigError(
            f"lengths must be ({inputs.shape[0]},), one per sequence of the batch, got shape "
            f"{lengths.shape}"
        )
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        # Float lengths would mask steps by t < 2.5, and the last-step readout cannot index by them.
        raise ConfigError(
            f"lengths must be whole numbers of steps (an integer array), got {lengths.dtype}: "
            "pass lengths.astype(int)"
        )
    check_lengths(lengths, inputs.shape[1], model.readout_at)
    # A number or array given here (a jnp scalar too), not one value per member traced in a
    # population's program: there a rate of 1 would drop everything and a negative one rescale.
    if not isinstance(dropout_rate, jax.core.Tracer):
        rates = np.asarray(dropout_rate, dtype=float)
        if not np.all((rates >= 0) & (rates < 1)):
            shown = dropout_rate if isinstance(dropout_rate, numbers.Real) else rates.tolist()
            raise ConfigError(f"dropout_rate must be in [0, 1), got {shown!r}")


class SequenceModel(nn.Module):
    """Stacked recurrent layers plus a dense readout.

    Attributes:
      cell: cell name, a key of ``lstm_variants.cells.VARIANTS``.
      hidden_size: units per layer H.
      output_size: readout width O.
      num_layers: stacked layers (default 1).
      readout_at: 'every_step' (default) or 'last_step'.
      cell_options: extra cell attributes as (key, value) pairs (initialisers, forget_bias, ...).
      recurrence: 'fast' (default: on the CPU the LSTM's native kernel, else 'xla'), 'xla' (scan
        with a custom VJP) or 'reference' (plain scan); ``recurrence.RECURRENCES``.
      unroll: time steps per compiled loop iteration (default 1).
      param_dtype: dtype of every parameter (default float32); float inputs are cast to it.
      vocab_size: number of input tokens for (B, T) integer inputs (default 0: real-valued inputs).
      embed_size: embedding width for token inputs (default 0: ``hidden_size``).
    """

    cell: str
    hidden_size: int
    output_size: int
    num_layers: int = 1
    readout_at: str = "every_step"
    cell_options: tuple[tuple[str, Any], ...] = ()
    recurrence: str = "fast"
    unroll: int = 1
    param_dtype: Any = jnp.float32
    vocab_size: int = 0
    embed_size: int = 0

    @nn.nowrap
    def cell_template(self, name: str | None = None):
        """The (unbound) cell of one layer."""
        options = {"param_dtype": self.param_dtype} | dict(self.cell_options)
        return make_cell(self.cell, self.hidden_size, name=name, **options)

    @nn.nowrap
    def initial_carries(self, batch: int) -> tuple:
        """The zero carry of every layer for a batch of ``batch`` sequences."""
        cell = self.cell_template()
        return tuple(cell.initialize_carry(None, (batch, 1)) for _ in range(self.num_layers))

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        lengths: jax.Array,
        carries: tuple | None = None,
        return_carries: bool = False,
        parameters_only: bool = False,
        dropout_rate: jax.Array | float = 0.0,
        dropout_key: jax.Array | None = None,
    ):
        """Run the model.

        Args:
          inputs: (B, T, D) float inputs, or (B, T) integer tokens in [0, vocab_size) when
            ``vocab_size`` is set; zero-padded.
          lengths: (B,) valid steps per sequence, in [1, T] (0 allowed for 'every_step'); given
            concretely, others are a ConfigError (``check_lengths``).
          carries: each layer's initial carry (default: zeros, ``initial_carries``).
          return_carries: also return each layer's final carry.
          parameters_only: create the parameters without running the recurrence (outputs are
            then meaningless): ``model.init(key, x, n, parameters_only=True)`` gives the same
            parameters as ``model.init(key, x, n)`` without compiling a time loop.
          dropout_rate: dropout probability p on every layer's input and on the readout's input
            (``dropout``); used only with a ``dropout_key``.
          dropout_key: the PRNG key of the dropout masks (default None: no dropout, as for
            evaluation). Layer l's input uses ``fold_in(key, l)``, the readout's
            ``fold_in(key, num_layers)``.

        Returns:
          (B, T, O) outputs for ``readout_at='every_step'``, else (B, O); with
          ``return_carries`` the pair (outputs, final carries).
        """
        lengths = jnp.asarray(lengths)
        check_call(self, inputs, lengths, dropout_rate)
        batch, num_steps = inputs.shape[:2]
        if jnp.issubdtype(inputs.dtype, jnp.floating):
            # The carry is made in param_dtype; inputs of another dtype would promote px, and
            # with it the scanned carry, to a different type.
            inputs = inputs.astype(self.param_dtype)
        if self.vocab_size:
            width = self.embed_size or self.hidden_size
            # The lookup reads NaN for an id >= vocab_size but wraps a negative one to the last
            # rows, a plausible, wrong input: it is sent past the end too.
            inputs = jnp.where(inputs < 0, self.vocab_size, inputs)
            inputs = nn.Embed(self.vocab_size, width, param_dtype=self.param_dtype, name="embed")(
                inputs
            )
        if carries is None:
            carries = self.initial_carries(batch)
        mask = step_mask(lengths, num_steps).T  # time-major for the scan
        hidden = jnp.swapaxes(inputs, 0, 1)
        run = RECURRENCES[self.recurrence]

        def drop(x, position):
            if dropout_key is None:
                return x
            return dropout(x, dropout_rate, jax.random.fold_in(dropout_key, position))

        finals = []
        for layer in range(self.num_layers):
            hidden = drop(hidden, layer)
            cell = self.cell_template(name=f"layer_{layer}")
            params = cell.paper_params(hidden.shape[-1])
            if parameters_only:
                final, hidden = carries[layer], jnp.zeros(hidden.shape[:-1] + (self.hidden_size,))
            else:
                px = cell.project(params, hidden)
                final, hidden = run(cell, params, carries[layer], px, mask, unroll=self.unroll)
            finals.append(final)
        hidden = jnp.swapaxes(drop(hidden, self.num_layers), 0, 1)
        if self.readout_at == "last_step":
            hidden = last_outputs(hidden, lengths)
        outputs = nn.Dense(self.output_size, param_dtype=self.param_dtype, name="readout")(hidden)
        return (outputs, tuple(finals)) if return_carries else outputs
