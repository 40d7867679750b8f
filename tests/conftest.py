"""Test-wide JAX settings (Equinox style): rank-promotion errors catch broadcasting mistakes in gate
code; two simulated CPU devices exercise multi-device code; no persistent compilation cache. Strict
dtype promotion is a fixture (`strict_dtypes`) for our own numerics only, because optax's Adam
mixes int counters and floats."""

import os

import jax
import pytest

# Tests compile from scratch unless they ask for the on-disk cache (tests/test_compilation_cache.py):
# CLI runs in subprocesses inherit this, and nothing is written to the user's cache.
os.environ.setdefault("LSTM_VARIANTS_COMPILATION_CACHE", "")

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_num_cpu_devices", 2)


@pytest.fixture
def strict_dtypes():
    with jax.numpy_dtype_promotion("strict"):
        yield
