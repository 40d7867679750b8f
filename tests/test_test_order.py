"""conftest.py's ordering: each xdist worker's first share starts with its part of the slow tests,
a file's slow tests on one worker, nothing lost or repeated."""

import types

from conftest import pytest_collection_modifyitems


class Item:
    def __init__(self, index: int, file: str, slow: bool):
        self.nodeid, self.slow = f"tests/{file}.py::test_{index}", slow

    def get_closest_marker(self, name: str):
        return object() if name == "slow" and self.slow else None


def shares(items, workers):
    """The contiguous shares xdist's worksteal first hands out (``_send_tests``)."""
    out, start, remaining = [], 0, len(items)
    for worker in range(workers):
        size = remaining // (workers - worker)
        out.append(items[start : start + size])
        start, remaining = start + size, remaining - size
    return out


def test_each_workers_share_starts_with_its_slow_tests_a_files_together():
    slow_at = {3: "a", 50: "b", 51: "b", 52: "b", 90: "c", 99: "c"}
    items = [Item(i, slow_at.get(i, "z"), i in slow_at) for i in range(101)]
    ordered = list(items)
    config = types.SimpleNamespace(workerinput={"workercount": 2})
    pytest_collection_modifyitems(config, ordered)
    assert sorted(map(id, ordered)) == sorted(map(id, items))
    first, second = shares(ordered, 2)
    for share in (first, second):
        slow = [item for item in share if item.slow]
        assert share[: len(slow)] == slow  # its slow tests first
    files = [
        {item.nodeid.split("::")[0] for item in share if item.slow} for share in (first, second)
    ]
    assert not files[0] & files[1] and files[0] | files[1] == {
        "tests/a.py",
        "tests/b.py",
        "tests/c.py",
    }
    assert {len([i for i in s if i.slow]) for s in (first, second)} == {3}  # b's 3; a's and c's 3


def test_without_workers_the_slow_tests_come_first_in_their_order():
    items = [Item(i, "f", i % 4 == 0) for i in range(12)]
    ordered = list(items)
    pytest_collection_modifyitems(types.SimpleNamespace(), ordered)
    assert [i.nodeid for i in ordered] == [
        i.nodeid for i in sorted(items, key=lambda item: not item.slow)
    ]
