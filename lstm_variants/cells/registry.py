"""Every named cell of the two studies as (class, flags): the single source of truth for names.

Greff et al. (2017): ``vanilla`` (V) and its eight one-change variants. Jozefowicz et al. (2015):
``lstm`` (no peepholes) with ``lstm_f``/``lstm_i``/``lstm_o`` ablations and ``lstm_b`` (forget bias
1), both GRUs, MUT1-3. Baselines: ``tanh_rnn``, ``mgu``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lstm_variants.cells.base import RecurrentCell
from lstm_variants.cells.gru import GRUCell
from lstm_variants.cells.lstm import LSTMCell
from lstm_variants.cells.mut import MUTCell
from lstm_variants.cells.simple import MGUCell, TanhRNNCell
from lstm_variants.config_values import (
    INITIALIZER_NAMES,
    VECTOR_INITIALIZER_NAMES,
    check_cell_options,
)
from lstm_variants.errors import ConfigError, nearest_hint
from lstm_variants.initializers import make_initializer

_NO_PEEPHOLES = {"peepholes": False}

VARIANTS: dict[str, tuple[type[RecurrentCell], dict[str, Any]]] = {
    # Greff et al. 2017
    "vanilla": (LSTMCell, {}),
    "nig": (LSTMCell, {"input_gate": False}),
    "nfg": (LSTMCell, {"forget_gate": False}),
    "nog": (LSTMCell, {"output_gate": False}),
    "niaf": (LSTMCell, {"input_activation": "identity"}),
    "noaf": (LSTMCell, {"output_activation": "identity"}),
    "np": (LSTMCell, _NO_PEEPHOLES),
    "cifg": (LSTMCell, {"coupled_gates": True}),
    "fgr": (LSTMCell, {"full_gate_recurrence": True}),
    # Jozefowicz et al. 2015
    "lstm": (LSTMCell, _NO_PEEPHOLES),
    "lstm_f": (LSTMCell, _NO_PEEPHOLES | {"forget_gate": False}),
    "lstm_i": (LSTMCell, _NO_PEEPHOLES | {"input_gate": False}),
    "lstm_o": (LSTMCell, _NO_PEEPHOLES | {"output_gate": False}),
    "lstm_b": (LSTMCell, _NO_PEEPHOLES | {"forget_bias": 1.0}),
    "gru": (GRUCell, {"reset_after": False}),
    "gru_reset_after": (GRUCell, {"reset_after": True}),
    "mut1": (MUTCell, {"variant": 1}),
    "mut2": (MUTCell, {"variant": 2}),
    "mut3": (MUTCell, {"variant": 3}),
    # Baselines
    "tanh_rnn": (TanhRNNCell, {}),
    "mgu": (MGUCell, {}),
}


class UnknownCellError(ConfigError):
    """A cell name that is not in ``VARIANTS``."""


def make_cell(variant: str, /, features: int, **options: Any) -> RecurrentCell:
    """Build the cell called ``variant`` with ``features`` hidden units.

    Args:
      variant: a key of ``VARIANTS``.
      features: hidden size H.
      **options: overrides of the variant's flags (MUT's ``variant`` among them: the first
        argument is positional-only) or of the base attributes (initialisers, as functions or
        by name at the config's default scale, ``recurrent_kernel_init="orthogonal"``;
        ``forget_bias``, ``name`` of the Flax module, ...).

    Returns:
      An unbound Flax cell.

    Raises:
      ConfigError: an unknown cell (``UnknownCellError``), or an option the cell does not have.
    """
    if variant not in VARIANTS:
        raise UnknownCellError(
            f"unknown cell '{variant}'{nearest_hint(str(variant), VARIANTS)}; "
            f"valid cells: {', '.join(sorted(VARIANTS))}"
        )
    cls, flags = VARIANTS[variant]
    unknown = sorted(set(options) - set(getattr(cls, "__dataclass_fields__", {})))
    if unknown:  # the nearest and the valid options, not the dataclass's bare TypeError
        check_cell_options(cls, {unknown[0]: None}, variant)
    for key in VECTOR_INITS:
        value = options.get(key)
        if value in INITIALIZER_NAMES and value not in VECTOR_INITIALIZER_NAMES:
            # Else Flax's ValueError when the first bias or peephole vector is drawn.
            raise ConfigError(
                f"{key} '{value}' needs a matrix (a fan-in and a fan-out), and {key} fills "
                f"vectors; valid: {', '.join(VECTOR_INITIALIZER_NAMES)}"
            )
    named = {
        key: make_initializer(value, NAMED_INIT_SCALES.get(key, 1.0))
        for key, value in options.items()
        if key.endswith("_init") and isinstance(value, str)
    }
    settings = flags | options | named
    if "forget_bias" in flags and "forget_bias" not in options:
        # The cell's own bias (lstm_b's 1.0), not the user's: "drop cell.options.forget_bias",
        # the cell's message, would name an option nobody set.
        if not settings.get("forget_gate", True) or settings.get("coupled_gates", False):
            raise ConfigError(
                f"cell '{variant}' starts its forget-gate bias b_f at {flags['forget_bias']}, and "
                "these options leave it no b_f (no forget gate, or CIFG's f = 1 - i): start from "
                "cell=lstm instead (lstm_f has no forget gate)"
            )
    return cls(features=features, **settings)


# An initialiser given by its name ("uniform") has the scale the config gives it by default
# (conf/model/default.yaml, model.init.*_scale): peepholes U(-0.1, 0.1), the rest 1.0.
NAMED_INIT_SCALES = {"peephole_init": 0.1}

# The initialisers of (H,) vectors, as model.init.peephole and model.init.bias.
VECTOR_INITS = ("peephole_init", "bias_init")


def check_cell(variant: str, options: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` unless the cell called ``variant`` can be built with ``options``: an
    unknown cell, an option it does not have (with the nearest and the valid ones), a value of
    the wrong type, or one the cell itself refuses (its own message). Before anything trains:
    inside the compiled program the same mistake would be a traceback."""
    if variant in VARIANTS:  # else make_cell names the cells there are
        check_cell_options(VARIANTS[variant][0], options, variant)
    try:
        make_cell(variant, 1, **options)
    except TypeError as error:
        raise ConfigError(f"invalid option for cell '{variant}': {error}") from None
