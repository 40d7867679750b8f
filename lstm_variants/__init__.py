"""lstm-variants: a JAX harness for comparing recurrent cells.

The subpackages are imported where used, so that ``import lstm_variants`` stays free of JAX:
``lstm_variants.cells`` (the cells), ``lstm_variants.model`` (the sequence model),
``lstm_variants.compose`` and ``lstm_variants.experiment`` (training from Python),
``lstm_variants.trained`` (a recorded trial with its parameters), ``lstm_variants.analysis`` and
``lstm_variants.diagnostics``.
"""

from importlib import metadata

try:
    __version__ = metadata.version("lstm-variants")
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "unknown"
