"""Every example in the package's docstrings runs and prints what it says (doctest).

The examples are how a reader first meets a cell or a loader; run by nothing, they would drift
from the code. The loaders' examples read real data: they run where the data directory
(``LSTM_VARIANTS_DATA_DIR``) holds it, and never download it.
"""

import doctest
import importlib
import os
from pathlib import Path

import pytest

import lstm_variants
from lstm_variants.data import loadable_here

PACKAGE = Path(lstm_variants.__file__).parent
WITH_EXAMPLES = sorted(
    path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
    for path in PACKAGE.rglob("*.py")
    if ">>> " in path.read_text()
)
# The dataset each loader module's example loads.
NEEDS_DATA = {
    "lstm_variants.data.music": "jsb_chorales",
    "lstm_variants.data.text": "tiny_shakespeare",
}


def test_the_examples_are_found():
    assert {"lstm_variants.cells.lstm", "lstm_variants.cells.simple"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_the_docstring_examples_run(name):
    if name in NEEDS_DATA and not (
        os.environ.get("LSTM_VARIANTS_DATA_DIR") and loadable_here(NEEDS_DATA[name])
    ):
        pytest.skip(f"set LSTM_VARIANTS_DATA_DIR to a directory holding {NEEDS_DATA[name]}'s file")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
