"""TIMIT and IAM Online from the user's own `.npz` exports (written here in the documented format)."""

import numpy as np
import pytest

from lstm_variants.data import DataError, availability, cache, load_dataset
from lstm_variants.data.base import IGNORE

LENGTHS = {"train": [3, 5, 2], "valid": [4], "test": [2, 3]}


def write_split(directory, split, lengths, dim=39, classes=61, padded=False, **extra):
    rng = np.random.default_rng(len(lengths))
    frames = [rng.normal(size=(n, dim)).astype(np.float32) for n in lengths]
    labels = [rng.integers(0, classes, size=n) for n in lengths]
    directory.mkdir(parents=True, exist_ok=True)
    if padded:
        steps = max(lengths) + 1
        inputs = np.zeros((len(lengths), steps, dim), np.float32)
        targets = np.zeros((len(lengths), steps), np.int64)
        for i, (f, y) in enumerate(zip(frames, labels, strict=True)):
            inputs[i, : len(f)], targets[i, : len(y)] = f, y
        arrays = dict(inputs=inputs, targets=targets, lengths=np.array(lengths))
    else:
        arrays = dict(
            inputs=np.concatenate(frames), targets=np.concatenate(labels), lengths=np.array(lengths)
        )
    np.savez(directory / f"{split}.npz", **{**arrays, **extra})
    return frames, labels


@pytest.mark.parametrize("padded", [False, True])
def test_timit_concatenated_or_padded(tmp_path, padded):
    written = {s: write_split(tmp_path / "timit", s, n, padded=padded) for s, n in LENGTHS.items()}
    data = load_dataset("timit", data_dir=tmp_path)
    assert (data.input_size, data.output_size) == (39, 61)
    assert (data.target, data.target_at, data.metric) == (
        "categorical",
        "every_step",
        "cross_entropy",
    )
    for name, split in data.splits().items():
        frames, labels = written[name]
        np.testing.assert_array_equal(split.lengths, LENGTHS[name])
        for i, (f, y) in enumerate(zip(frames, labels, strict=True)):
            np.testing.assert_allclose(split.inputs[i, : len(f)], f)
            np.testing.assert_array_equal(split.targets[i, : len(y)], y)
            assert np.all(split.targets[i, len(y) :] == IGNORE)
            assert not split.inputs[i, len(f) :].any()
    assert availability("timit", tmp_path) == f"local {tmp_path}"


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64, np.int16])
def test_lengths_of_any_integer_dtype(tmp_path, padded, dtype):
    """Unsigned lengths used to stop concatenated exports with a TypeError (float offsets)."""
    for split, lengths in LENGTHS.items():
        frames, labels = write_split(tmp_path / "timit", split, lengths, padded=padded)
        path = tmp_path / "timit" / f"{split}.npz"
        arrays = dict(np.load(path))
        np.savez(path, **{**arrays, "lengths": arrays["lengths"].astype(dtype)})
    data = load_dataset("timit", data_dir=tmp_path)
    np.testing.assert_array_equal(data.test.lengths, LENGTHS["test"])
    np.testing.assert_allclose(data.test.inputs[-1, : len(frames[-1])], frames[-1])
    np.testing.assert_array_equal(data.test.targets[-1, : len(labels[-1])], labels[-1])


def test_iam_online_framewise_classes_from_labels_or_file(tmp_path):
    for split, lengths in LENGTHS.items():
        write_split(tmp_path / "iam_online", split, lengths, dim=4, classes=5)
    data = load_dataset("iam_online", data_dir=tmp_path)
    assert data.input_size == 4 and data.output_size <= 5
    assert load_dataset("iam_online", data_dir=tmp_path, num_classes=80).output_size == 80
    for split, lengths in LENGTHS.items():
        write_split(tmp_path / "iam_online", split, lengths, dim=4, classes=5, num_classes=82)
    assert load_dataset("iam_online", data_dir=tmp_path).output_size == 82


@pytest.mark.parametrize("name, what", [("timit", "LDC93S1"), ("iam_online", "IAM On-Line")])
def test_missing_names_what_to_obtain_and_where(tmp_path, name, what):
    with pytest.raises(DataError) as error:
        load_dataset(name, data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message and what in message and "licensed" in message
    assert f"{tmp_path / name}/{{train,valid,test}}.npz" in message
    assert availability(name, tmp_path).startswith("missing: ")
    assert what in availability(name, tmp_path)


def corrupt(directory, **arrays):
    for split, lengths in LENGTHS.items():
        write_split(directory / "timit", split, lengths)
    path = directory / "timit" / "valid.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            dict(features=np.zeros((4, 39)), targets=np.zeros(4, int), lengths=[4]),
            "missing array\\(s\\) \\['inputs'\\]",
        ),
        (
            dict(inputs=np.zeros((4, 39)), targets=np.zeros(4, int), lengths=[5]),
            "must have sum\\(lengths\\) = 5 rows",
        ),
        (
            dict(inputs=np.zeros((4, 39)), targets=np.full(4, 61), lengths=[4]),
            "target class ids must lie in \\[-1, 61\\)",
        ),
        (  # would wrap to class 7 as int32
            dict(inputs=np.zeros((4, 39)), targets=np.full(4, 2**32 + 7), lengths=[4]),
            "targets must be class ids below 2\\*\\*31 \\(int32\\), got 4294967303",
        ),
        (
            dict(inputs=np.zeros((0, 39)), targets=np.zeros(0, int), lengths=np.zeros(0, int)),
            "non-empty 1-D array",
        ),
        (
            dict(inputs=np.zeros((4, 39)), targets=np.zeros(4), lengths=[4]),
            "targets must be an integer array",
        ),
        (
            dict(inputs=np.zeros((4, 12)), targets=np.zeros(4, int), lengths=[4]),
            "different input sizes \\[12, 39\\]",
        ),
        (
            dict(inputs=np.array([np.zeros(3)], dtype=object), targets=[0], lengths=[1]),
            "not objects",
        ),
        (
            dict(inputs=np.zeros((4, 39)), targets=np.full(4, IGNORE), lengths=[4]),
            "no labelled frame",
        ),
        (
            dict(inputs=np.full((4, 39), np.nan), targets=np.zeros(4, int), lengths=[4]),
            "inputs contain NaN or infinite values",
        ),
        (  # the imaginary part would be dropped
            dict(inputs=np.ones((4, 39), complex), targets=np.zeros(4, int), lengths=[4]),
            "inputs must be a real number array, got dtype complex128",
        ),
        (
            dict(inputs=np.ones((4, 0)), targets=np.zeros(4, int), lengths=[4]),
            "inputs have no features \\(shape \\(4, 0\\)\\)",
        ),
    ],
)
def test_malformed_export_is_one_data_error(tmp_path, arrays, message):
    path = corrupt(tmp_path, **arrays)
    with pytest.raises(DataError, match=message) as error:
        load_dataset("timit", data_dir=tmp_path)
    assert "\n" not in str(error.value)
    if "valid" in str(error.value) and "npz" in str(error.value):
        assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            dict(features=np.zeros((4, 4)), lengths=[4]),
            "missing array\\(s\\) \\['inputs', 'targets'\\]",
        ),
        *(
            (
                dict(
                    inputs=np.zeros((4, 4)), targets=np.zeros(4, int), lengths=[4], num_classes=bad
                ),
                "num_classes must be one integer >= 1",
            )
            for bad in ([5, 6], 5.5, 0, np.nan, "five")
        ),
    ],
)
def test_a_malformed_export_without_num_classes_is_one_data_error(tmp_path, arrays, message):
    # iam_online counts its classes from the files' targets when no num_classes is given.
    for split, lengths in LENGTHS.items():
        write_split(tmp_path / "iam_online", split, lengths, dim=4, classes=5)
    np.savez(tmp_path / "iam_online" / "valid.npz", **arrays)
    with pytest.raises(DataError, match=message) as error:
        load_dataset("iam_online", data_dir=tmp_path)
    assert "\n" not in str(error.value) and "valid.npz" in str(error.value)


def test_truncated_npz_is_a_data_error(tmp_path):
    path = corrupt(tmp_path, inputs=np.zeros((4, 39)), targets=np.zeros(4, int), lengths=[4])
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset("timit", data_dir=tmp_path)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    for split, lengths in LENGTHS.items():
        write_split(tmp_path / "timit", split, lengths)
    monkeypatch.setenv(cache.DATA_DIR_ENV, str(tmp_path))
    assert load_dataset("timit").train.num_sequences == 3
