"""The parts of a loaded model, for the adapters that load it (`_diffusers`) and the runtimes that wrap
its denoiser (`_runtime_variants`)."""

from __future__ import annotations

from typing import Any

import torch


def named_modules_of(model: Any) -> dict[str, torch.nn.Module]:
    """The top-level modules of a loaded model: a pipeline's components, or a namespace's attributes."""
    if isinstance(model, torch.nn.Module):
        return {"model": model}
    components = getattr(model, "components", None)
    if components is None:
        components = vars(model)
    return {name: m for name, m in components.items() if isinstance(m, torch.nn.Module)}
