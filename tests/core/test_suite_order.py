"""`make test`'s order (tests/conftest.py): each test process starts with its share of the slow tests,
and every collected test still runs exactly once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import slow_first, worksteal_blocks


def collection(kinds: str, module=lambda i: f"test_{i}.py") -> list[SimpleNamespace]:
    """Stand-ins for collected tests: "s" slow, "q" quick; each knows its place in the collection and
    its module (by default each its own)."""
    return [
        SimpleNamespace(at=i, nodeid=f"{module(i)}::t{i}", keywords={"slow"} if k == "s" else set())
        for i, k in enumerate(kinds)
    ]


@pytest.mark.parametrize("n_workers", [1, 2, 3, 4])
def test_every_test_runs_once_and_each_process_begins_with_its_share_of_the_slow_ones(n_workers):
    items = collection("qqsqqqsqqsqqqqsqqqqsqqqqq")
    ordered = slow_first(items, n_workers)
    assert sorted(i.at for i in ordered) == list(range(len(items)))
    slow = sum("slow" in i.keywords for i in items)
    start, shares = 0, []
    for size in worksteal_blocks(len(items), n_workers):
        block = ordered[start : start + size]
        start += size
        kinds = ["slow" in i.keywords for i in block]
        n = sum(kinds)
        assert kinds == [True] * n + [False] * (len(block) - n)  # its slow tests first
        shares.append(n)
    assert sum(shares) == slow and max(shares) - min(shares) <= 1


def test_worksteal_blocks_cover_the_collection_in_equal_shares():
    assert worksteal_blocks(25, 2) == [12, 13]
    assert worksteal_blocks(10, 3) == [3, 3, 4]
    assert sum(worksteal_blocks(848, 4)) == 848


def test_without_slow_tests_the_order_is_the_collections():
    items = collection("qqqq")
    assert [i.at for i in slow_first(items, 2)] == [0, 1, 2, 3]


def test_the_slow_tests_of_one_module_stay_in_one_process():
    items = collection("ssqqssqqqqqqqq", module=lambda i: "test_slurm.py" if i < 2 else f"test_{i}.py")
    ordered = slow_first(items, 2)
    first = worksteal_blocks(len(items), 2)[0]
    blocks = [ordered[:first], ordered[first:]]
    holding = [b for b in blocks if any(i.nodeid.startswith("test_slurm.py") for i in b)]
    assert len(holding) == 1 and sum(i.nodeid.startswith("test_slurm.py") for i in holding[0]) == 2
    assert sorted(i.at for i in ordered) == list(range(len(items)))
