"""The compute device a worker runs models on, as the trial loop needs it (torch imported here only)."""

from __future__ import annotations

import gc
from dataclasses import dataclass


@dataclass
class TorchDevice:
    """`cuda` when this process sees a GPU (a Ray actor sees its own as cuda:0), else `cpu`."""

    name: str

    @classmethod
    def detect(cls) -> TorchDevice:
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
