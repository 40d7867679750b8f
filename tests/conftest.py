"""Test-wide JAX settings (Equinox style): rank-promotion errors catch broadcasting mistakes in gate
code; two simulated CPU devices exercise multi-device code. Strict dtype promotion is a fixture
(`strict_dtypes`) for our own numerics only, because optax's Adam mixes int counters and floats."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_num_cpu_devices", 2)


@pytest.fixture
def strict_dtypes():
    with jax.numpy_dtype_promotion("strict"):
        yield
