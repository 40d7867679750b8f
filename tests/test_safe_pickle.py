"""The restricted unpickler: rebuilds numpy data, refuses every other global before calling it."""

import builtins
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lstm_variants.data import DataError
from lstm_variants.data.safe_pickle import restricted_load


class CallsOnLoad:
    """Unpickles as `func(*args)`: what a tampered data file would do."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_scalars_and_arrays_round_trip(protocol):
    data = {
        "train": [[(np.int64(60), np.int64(64)), ()], [(np.int32(21),)]],
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "text": "bach",
    }
    loaded = restricted_load(pickle.dumps(data, protocol=protocol))
    assert loaded["train"] == data["train"]
    assert type(loaded["train"][0][0][0]) is np.int64
    np.testing.assert_array_equal(loaded["array"], data["array"])
    assert loaded["array"].dtype == np.float32
    assert loaded["text"] == "bach"


def test_real_jsb_file_loads():
    path = Path(os.environ.get("LSTM_VARIANTS_DATA_DIR", "/nonexistent")) / "jsb_chorales.pickle"
    if not path.exists():
        pytest.skip("set LSTM_VARIANTS_DATA_DIR to a directory holding jsb_chorales.pickle")
    with open(path, "rb") as file:
        chorales = restricted_load(file)
    assert {split: len(chorales[split]) for split in ("train", "valid", "test")} == {
        "train": 229,
        "valid": 76,
        "test": 77,
    }
    assert isinstance(chorales["train"][0][0][0], np.integer)


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("func", [os.system, builtins.eval, subprocess.check_call, np.load])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, func, protocol):
    marker = tmp_path / "pwned"
    args = {
        os.system: (f"touch {marker}",),
        builtins.eval: (f"open({str(marker)!r}, 'w').close()",),
        subprocess.check_call: (["touch", str(marker)],),
        np.load: (str(marker),),
    }[func]
    payload = pickle.dumps({"train": [CallsOnLoad(func, *args)]}, protocol=protocol)
    # Protocols below 3 may store Python 2 module names (e.g. __builtin__), hence the wildcard.
    with pytest.raises(DataError, match=rf"refusing to unpickle global '[\w.]+\.{func.__name__}'"):
        restricted_load(payload)
    assert not marker.exists()


def test_hand_written_global_opcode_is_refused():
    # Protocol 0 text: GLOBAL 'os system', MARK, STRING, TUPLE, REDUCE, STOP.
    with pytest.raises(DataError, match="refusing to unpickle global 'os.system'"):
        restricted_load(b"cos\nsystem\n(S'echo pwned'\ntR.")


def test_a_refused_file_is_named(tmp_path):
    path = tmp_path / "jsb_chorales.pickle"
    path.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with open(path, "rb") as file, pytest.raises(DataError) as error:
        restricted_load(file)
    assert str(error.value).startswith(f"{path}: refusing to unpickle global 'os.system'")


@pytest.mark.parametrize("cut", [1, 10, -1])
def test_truncated_pickle_is_a_data_error(cut):
    payload = pickle.dumps({"train": [[(np.int64(60),)]]}, protocol=2)
    with pytest.raises(DataError, match="cannot unpickle") as error:
        restricted_load(payload[:cut])
    assert "delete it to have it downloaded again, or replace it" in str(error.value)
