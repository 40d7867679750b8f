"""Every example in the package's docstrings runs and prints what it says (doctest).

The examples are how a reader first meets a cell or a loader; run by nothing, they would drift
from the code. The loaders of real data need the data directory (``LSTM_VARIANTS_DATA_DIR``).
"""

import doctest
import importlib
import os
from pathlib import Path

import pytest

import lstm_variants

PACKAGE = Path(lstm_variants.__file__).parent
WITH_EXAMPLES = sorted(
    path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
    for path in PACKAGE.rglob("*.py")
    if ">>> " in path.read_text()
)
NEEDS_DATA = {"lstm_variants.data.music", "lstm_variants.data.text"}


def test_the_examples_are_found():
    assert {"lstm_variants.cells.lstm", "lstm_variants.cells.simple"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_the_docstring_examples_run(name):
    if name in NEEDS_DATA and not os.environ.get("LSTM_VARIANTS_DATA_DIR"):
        pytest.skip("set LSTM_VARIANTS_DATA_DIR to the directory of the real data files")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
