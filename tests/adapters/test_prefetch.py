"""`Adapter.prefetch` of the torch adapters: run in a fresh process, it imports what a full-size load
needs, and leaves the process-wide torch state (default dtype, CUDA) as it found it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    import torch
    from t2a_ray.adapters import adapter_class

    # torchao, where installed, is imported by diffusers and opens CUDA on import where a GPU is
    # visible (its triton check): import it first, so that what is measured is our code's effect.
    if importlib.util.find_spec("torchao") is not None:
        import torchao
    cuda_before = torch.cuda.is_initialized()
    cls = adapter_class("audioldm")
    before = set(sys.modules)
    cls.prefetch()
    prefetched = set(sys.modules) - before
    dtype = str(torch.get_default_dtype())
    loaded = set(sys.modules)
    cls.load(device="cpu", dtype="float32", weights="random")
    print(json.dumps({
        "prefetched": len(prefetched),
        "pipeline_prefetched": cls.pipeline().__module__ in prefetched,
        "dtype_after": dtype,
        "cuda_before": cuda_before,
        "cuda_after": torch.cuda.is_initialized(),
        "imported_by_the_load": sorted(set(sys.modules) - loaded),
    }))
    """
)


@pytest.mark.slow
def test_a_prefetched_model_loads_at_full_size_without_importing_anything_more():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["prefetched"] > 100 and out["pipeline_prefetched"]  # diffusers' code among them
    assert out["imported_by_the_load"] == []
    assert out["dtype_after"] == "torch.float32" and out["cuda_after"] == out["cuda_before"]
