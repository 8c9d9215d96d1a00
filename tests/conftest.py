"""Shared fixtures. Multi-GPU sweeps run on Ray's logical GPUs, which no worker sees as a CUDA device: the
same tests pass on a CPU-only machine and on a GPU host. Tests marked `gpu` use the real GPUs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from t2a_ray.metering.gpu import LOGICAL_GPUS_ENV

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing can be downloaded here; fail fast if code tries
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault(LOGICAL_GPUS_ENV, "1")


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    items[:] = slow_first(items, _xdist_workers(config))
    if has_cuda():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (run on the GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _xdist_workers(config) -> int:
    """How many test processes share the collection (1 without pytest-xdist)."""
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput["workercount"]) if workerinput else 1


def worksteal_blocks(n_items: int, n_workers: int) -> list[int]:
    """The sizes of the contiguous blocks xdist's `worksteal` first hands its workers, in order (its
    `check_schedule`: each idle worker takes an equal share of what is left)."""
    sizes, left = [], n_items
    for i in range(n_workers):
        sizes.append(left // (n_workers - i))
        left -= sizes[-1]
    return sizes


def slow_first(items: list, n_workers: int) -> list:
    """The collection reordered so that each test process begins with its share of the `slow` tests
    (dealt round-robin) and ends with quick ones. The suite's wall time is at least its longest test's
    end: a long sweep started last would run alone. `worksteal` hands each process one contiguous
    block and then moves quick tests from the end of a busy process's block to an idle one."""
    slow = [i for i in items if "slow" in i.keywords]
    if not slow or len(slow) == len(items):
        return list(items)
    quick = [i for i in items if "slow" not in i.keywords]
    blocks: list[list] = [slow[w::n_workers] for w in range(n_workers)]
    ordered = []
    for block, size in zip(blocks, worksteal_blocks(len(items), n_workers), strict=True):
        fill = max(0, size - len(block))
        block, quick = block + quick[:fill], quick[fill:]
        ordered += block
    return ordered + quick


@pytest.fixture(autouse=True)
def real_gpus_for_gpu_tests(request, monkeypatch):
    if request.node.get_closest_marker("gpu"):
        monkeypatch.delenv(LOGICAL_GPUS_ENV, raising=False)


@pytest.fixture
def write_sweep(tmp_path: Path):
    """Write a sweep file from a YAML string (dedented) and return its path."""

    def write(text: str, name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
