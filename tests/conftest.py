"""Shared fixtures. Multi-GPU sweeps run on Ray's logical GPUs, which no worker sees as a CUDA device: the
same tests pass on a CPU-only machine and on a GPU host. Tests marked `gpu` use the real GPUs."""

from __future__ import annotations

import importlib.util
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
    # torchao stays out of the dev install: diffusers imports it wherever it is installed, which every
    # test process that loads a pipeline would pay for; the GPU machine's suite installs it.
    missing = {
        "gpu": None if has_cuda() else "needs an NVIDIA GPU (run on the GPU machine)",
        "torchao": None
        if importlib.util.find_spec("torchao")
        else "needs torchao (pip install -e '.[dev,levers]'; the GPU machine's suite has it)",
    }
    for item in items:
        for marker, reason in missing.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


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
