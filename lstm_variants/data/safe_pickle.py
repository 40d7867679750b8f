"""Unpickling downloaded data without running what the file says.

The public polyphonic-music pickles (Boulanger-Lewandowski et al. 2012, as served by
pyro-ppl/datasets) hold numpy integer scalars, so they cannot be read as plain JSON-like data. A
plain `pickle.load` would however call any global the file names, e.g. `os.system`, so a tampered
download could run code. `restricted_load` resolves only the few numpy globals needed to rebuild
numpy scalars and arrays, plus `_codecs.encode` (which Python 3 protocol-2 pickles use to store
bytes), and refuses everything else with a DataError before anything is called.

The JSB Chorales file was written by Python 2 with protocol 2; it names
`numpy.core.multiarray.scalar` and `numpy.dtype`. numpy 2 writes `numpy._core...` instead. Both
spellings map to the same objects here, looked up directly so that the deprecated `numpy.core`
alias is never imported.

Example:
    >>> import pickle, numpy as np
    >>> restricted_load(pickle.dumps([(np.int64(60), np.int64(64))], protocol=2))
    [(np.int64(60), np.int64(64))]
"""

from __future__ import annotations

import _codecs
import io
import pickle
from typing import BinaryIO

import numpy as np

from lstm_variants.data.base import DataError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

_NUMPY_CORE_GLOBALS = {
    ("multiarray", "scalar"): _multiarray.scalar,  # numpy scalars, e.g. np.int64(60)
    ("multiarray", "_reconstruct"): _multiarray._reconstruct,  # arrays, protocols 2 to 4
    ("numeric", "_frombuffer"): _numeric._frombuffer,  # arrays, protocol 5
}

ALLOWED_GLOBALS = {
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("_codecs", "encode"): _codecs.encode,  # bytes in protocol-2 pickles written by Python 3
    **{
        (f"{package}.{module}", name): value
        for package in ("numpy.core", "numpy._core")
        for (module, name), value in _NUMPY_CORE_GLOBALS.items()
    },
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals in `ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"refusing to unpickle global '{module}.{name}': only numpy scalars and arrays "
                "are allowed; the file is not a plain data pickle (tampered or wrong file?)"
            ) from None

    def persistent_load(self, pid):
        raise DataError("refusing to unpickle a persistent id: not a plain data pickle")


def restricted_load(source: bytes | bytearray | BinaryIO):
    """Unpickle plain data and numpy scalars/arrays, refusing every other global.

    Args:
        source: the pickle, as bytes or as a binary file object.

    Returns:
        The unpickled object. Python 2 byte strings are decoded as latin-1, as numpy needs for
        the scalar payloads of Python 2 pickles.

    Raises:
        DataError: the pickle names a global outside `ALLOWED_GLOBALS`, or is truncated or
            otherwise malformed.
    """
    fileobj = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    name = getattr(fileobj, "name", "pickle data")
    try:
        return RestrictedUnpickler(fileobj, encoding="latin1").load()
    except DataError as error:
        if name == "pickle data":
            raise
        raise DataError(f"{name}: {error}") from None  # which file was refused
    except Exception as error:  # a malformed pickle raises many kinds; report each as DataError
        raise DataError(
            f"cannot unpickle {name}: {type(error).__name__}: {error} (truncated or corrupt "
            "file?); delete it to have it downloaded again, or replace it with a good copy"
        ) from error
