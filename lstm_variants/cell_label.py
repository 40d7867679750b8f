"""How the tables name a trial's cell: the cell's name, plus the options it was built with.

``-m '+cell.options.forget_bias=0.0,1.0'`` trains one cell twice, with Jozefowicz et al.'s
forget-gate bias and without. Grouped by the cell's name alone, both would be one row of every
table, one box of every figure and one side of every test. Labelled ``vanilla`` and
``vanilla (forget_bias=1.0)``, each gets its own. Options that the search draws per trial
(``search.space`` holding ``cell.options.forget_bias``) are hyperparameters, not part of the
label, or every trial would be a cell of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cell_label(config: Mapping[str, Any]) -> str | None:
    """``config['cell']['name']``, followed by the options set in ``config['cell']['options']``
    that ``config['search']['sampled']`` does not hold, in key order: ``vanilla``,
    ``vanilla (forget_bias=1.0)``, ``nfg (forget_bias=0.0, peepholes=false)``. None without a
    cell name."""
    cell = config.get("cell") or {}
    name = cell.get("name")
    if name is None:
        return None
    drawn = (config.get("search") or {}).get("sampled") or {}
    options = {
        key: value
        for key, value in sorted((cell.get("options") or {}).items())
        if f"cell.options.{key}" not in drawn
    }
    if not options:
        return str(name)
    return f"{name} (" + ", ".join(f"{k}={_text(v)}" for k, v in options.items()) + ")"


def cell_name(label: str) -> str:
    """The cell's name in a label of ``cell_label``."""
    return label.partition(" (")[0]


def _text(value: Any) -> str:
    """A value as the command line writes it: ``true``, ``null``; a number as a float, so that
    ``forget_bias=1`` and ``forget_bias=1.0`` name one cell."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(float(value))
    return "null" if value is None else str(value)
