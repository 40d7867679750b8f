"""lstm-variants: a JAX harness for comparing recurrent cells.

The subpackages are imported where used, so that ``import lstm_variants`` stays free of JAX:
``lstm_variants.cells`` (the cells), ``lstm_variants.model`` (the sequence model),
``lstm_variants.compose`` and ``lstm_variants.experiment`` (training from Python),
``lstm_variants.trained`` (a recorded trial with its parameters), ``lstm_variants.analysis`` and
``lstm_variants.diagnostics``.
"""


def __getattr__(name: str) -> str:
    """``lstm_variants.__version__``, read from the installed metadata when first asked for."""
    if name == "__version__":
        from lstm_variants.version import PACKAGE, installed

        return installed(PACKAGE)
    raise AttributeError(f"module 'lstm_variants' has no attribute {name!r}")
