"""The console scripts' entry points: each imports its command only when called, so that a Ctrl-C
while Python imports JAX, Hydra and pandas (the first second or so) ends with one line and status
130, like a Ctrl-C later on (``lstm_variants.interrupt``), instead of a traceback through the
import machinery. The generated script imports this module first, which imports nothing heavy.
"""

from __future__ import annotations

import importlib
import sys

from lstm_variants.interrupt import INTERRUPTED_STATUS


def start(prog: str, module: str) -> int | None:
    """Import ``module`` and run its ``main``; a Ctrl-C during the import is one line.

    Returns:
      ``main``'s exit status, which the console script passes to ``sys.exit`` (2 for an error
      line from a command whose ``main`` returns it rather than exiting).
    """
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted while starting; nothing was run", file=sys.stderr)
        sys.exit(INTERRUPTED_STATUS)
    return main()


def lstm_variants() -> int | None:
    return start("lstm-variants", "lstm_variants.cli")


def lstm_variants_data() -> int | None:
    return start("lstm-variants-data", "lstm_variants.data.cli")


def lstm_variants_analyze() -> int | None:
    return start("lstm-variants-analyze", "lstm_variants.analysis.cli")


def lstm_variants_diagnose() -> int | None:
    return start("lstm-variants-diagnose", "lstm_variants.diagnostics.cli")
