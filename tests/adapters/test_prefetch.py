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
    import json, sys
    import torch
    from t2a_ray.adapters import adapter_class

    # Who opens CUDA, if anyone: the module of the first frame outside torch that asks for it. A
    # library may open it on import (torchao, where installed, checks triton's GPU on import);
    # t2a-ray's own code must not.
    opened_by = []
    torch_init = torch.cuda._lazy_init

    def recording_init():
        if not torch.cuda.is_initialized():
            frame = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__", "").startswith("torch."):
                frame = frame.f_back
            opened_by.append(frame.f_globals.get("__name__") if frame is not None else None)
        return torch_init()

    torch.cuda._lazy_init = recording_init
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
        "cuda_opened_by": opened_by,
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
    assert out["dtype_after"] == "torch.float32"
    # CUDA as it was, but where a library opened it (recorded), and never opened by t2a-ray's code
    assert out["cuda_after"] == out["cuda_before"] or out["cuda_opened_by"]
    assert not [m for m in out["cuda_opened_by"] if m is None or m.startswith("t2a_ray")]
