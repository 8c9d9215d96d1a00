"""The compute device a worker runs models on, as the trial loop needs it (torch imported here only)."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

# What a process that must not use a GPU sees (`--gpus 0`). Ray leaves CUDA_VISIBLE_DEVICES as it finds
# it for an actor that holds no GPU (unless RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1): the host's GPUs.
NO_CUDA_DEVICE = {"CUDA_VISIBLE_DEVICES": ""}


@dataclass
class TorchDevice:
    """`cuda` when this process sees a GPU (a Ray actor sees its own as cuda:0), else `cpu`."""

    name: str

    @classmethod
    def detect(cls, see_gpus: bool = True) -> TorchDevice:
        """`see_gpus=False` (a `--gpus 0` worker, or one on a logical GPU, which Ray names by the number of
        a real one): the CPU, and no CUDA device for anything this process loads later. Called before
        torch initialises CUDA, which reads CUDA_VISIBLE_DEVICES once."""
        if not see_gpus:
            os.environ.update(NO_CUDA_DEVICE)
            return cls("cpu")
        import torch

        return cls("cuda" if torch.cuda.is_available() else "cpu")

    @property
    def is_cuda(self) -> bool:
        return self.name.startswith("cuda")

    def uuid(self) -> str | None:
        """The GPU's UUID as CUDA sees it, so the meter reports the real device behind "cuda:0"."""
        if not self.is_cuda:
            return None
        import torch

        return str(torch.cuda.get_device_properties(0).uuid)

    def open_context(self) -> None:
        if self.is_cuda:
            import torch

            torch.zeros(1, device=self.name)
            torch.cuda.synchronize()

    def sync(self) -> None:
        """Wait for queued GPU work: a window's boundary must not cut through kernels in flight."""
        if self.is_cuda:
            import torch

            torch.cuda.synchronize()

    def busy_burst(self, warm_up_s: float = 1.0) -> Callable[[float], None]:
        """doctor's injected load: `burst(seconds)` runs fp16 4096² matmuls for about `seconds` and
        waits for them. The time of one matmul is measured after `warm_up_s` of them (clocks ramp up)."""
        import torch

        a = torch.randn(4096, 4096, device=self.name, dtype=torch.float16)
        b = torch.randn(4096, 4096, device=self.name, dtype=torch.float16)
        out = torch.empty_like(a)

        def run(n: int) -> None:
            for _ in range(n):
                torch.matmul(a, b, out=out)
            self.sync()

        t0 = time.perf_counter()
        while time.perf_counter() - t0 < warm_up_s:
            run(20)
        t0 = time.perf_counter()
        run(100)
        each_s = (time.perf_counter() - t0) / 100
        return lambda seconds: run(max(1, round(seconds / each_s)))

    def reset_peak_memory(self) -> None:
        if self.is_cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()

    def peak_memory_bytes(self) -> int | None:
        if not self.is_cuda:
            return None  # not measured on the CPU: null, not zero
        import torch

        return int(torch.cuda.max_memory_allocated())

    def is_out_of_memory(self, error: BaseException) -> bool:
        import torch

        return (
            isinstance(error, torch.cuda.OutOfMemoryError)
            or "out of memory" in str(error).lower()
            and isinstance(error, RuntimeError)
        )

    def free_memory(self) -> None:
        gc.collect()
        if self.is_cuda:
            import torch

            torch.cuda.empty_cache()
