"""lstm-variants: a JAX harness for comparing recurrent cells."""
