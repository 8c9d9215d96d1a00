"""The `cache` axis (`runtime_axes.py`) applied: a denoiser's deep features reused between adjacent steps.

Adjacent denoising steps compute nearly the same deep features, so a fixed schedule recomputes them at
every `interval`-th call of the denoiser (one call per step: the loops batch both sides of guidance) and
reuses them at the calls between; the shallow layers run at every step on the current latents.

* **UNet** (DeepCache, at the granularity of diffusers' blocks): every block below the outermost level
  — the down blocks but the first, the mid block and the up blocks but the last — returns, at a reusing
  step, what it returned at the last recomputing step, without computing. The outermost down block and
  up block, and the convolutions around them, run: the last up block takes the reused deep feature and
  the fresh skip connections of the first down block.
* **DiT** (fixed-interval layer caching, as FORA does per block): every transformer block but the first
  and the last adds, at a reusing step, the residual (output − input) it added at the last recomputing
  step to its current input, without computing.

This is a small hook of our own rather than a package: DeepCache's helper takes a diffusers pipeline
(it reads the step from ``pipe.scheduler`` and wraps ``pipe.unet``), which Tango and Make-An-Audio are
not (they run t2a-ray's loop), and its DiT counterparts patch the forward of particular diffusers
transformer classes; diffusers' own hooks (``diffusers.hooks``) are error-guided (FirstBlockCache, for
registered block classes), attention-only (PyramidAttentionBroadcast, FasterCache) or forecast the
outputs (TaylorSeer) rather than reuse them. It replaces the blocks' ``forward`` on the instance
(``nn.Module.__call__`` calls it) and a pre-hook on the denoiser counts its calls; ``remove`` restores
both. The state is one generation's: ``reset`` drops the features, so no generation reuses another's.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from t2a_ray.errors import InfeasibleError


def cached_blocks(denoiser: torch.nn.Module) -> tuple[str, list[torch.nn.Module]]:
    """(hook, blocks): the step-cache hook (a key of `runtime_axes.CACHE_HOOKS`) of `denoiser`'s architecture
    and the blocks whose work it reuses. InfeasibleError for an architecture without one."""
    name = type(denoiser).__name__
    if all(hasattr(denoiser, a) for a in ("down_blocks", "mid_block", "up_blocks")):  # diffusers UNets
        mid = [] if denoiser.mid_block is None else [denoiser.mid_block]
        blocks = [*list(denoiser.down_blocks)[1:], *mid, *list(denoiser.up_blocks)[:-1]]
        if not blocks:
            raise InfeasibleError(f"cache: {name} has one level and no mid block, nothing deep to reuse")
        return "unet", blocks
    for attribute in ("transformer_blocks", "blocks"):  # Stable Audio's DiT; Make-An-Audio 2's
        layers = getattr(denoiser, attribute, None)
        if isinstance(layers, torch.nn.ModuleList):
            if len(layers) < 3:
                raise InfeasibleError(
                    f"cache: {name} has {len(layers)} transformer block(s); the cache keeps the first and "
                    "the last computed at every step and reuses those between, so it needs 3 or more"
                )
            return "dit", list(layers)[1:-1]
    raise InfeasibleError(f"cache: no step-cache hook for the denoiser {name} (a UNet or a DiT has one)")


class StepCache:
    """Fixed-schedule reuse of `denoiser`'s deep features, installed until `remove`."""

    def __init__(self, denoiser: torch.nn.Module, interval: int):
        self.hook, self.blocks = cached_blocks(denoiser)
        self.denoiser = denoiser
        self.interval = interval
        self.calls = 0  # denoiser calls in this generation
        self.saved: dict[int, Any] = {}  # block index → its output (UNet) or residual (DiT)
        self._counter = denoiser.register_forward_pre_hook(self._count)
        for index, block in enumerate(self.blocks):
            block.forward = functools.partial(self._forward, index, block.forward)

    @property
    def recomputing(self) -> bool:
        """Whether the denoiser's current call computes the deep features (the first call, then every
        `interval`-th)."""
        return (self.calls - 1) % self.interval == 0

    def reset(self) -> None:
        """Start a generation: no feature of the last one is reused."""
        self.calls = 0
        self.saved.clear()

    def remove(self) -> None:
        """Put the denoiser back as it was."""
        self._counter.remove()
        for block in self.blocks:
            vars(block).pop("forward", None)
        self.saved.clear()

    def _count(self, module: torch.nn.Module, args: Any) -> None:
        self.calls += 1

    def _forward(self, index: int, forward: Any, *args: Any, **kwargs: Any) -> Any:
        if self.hook == "unet":
            if self.recomputing or index not in self.saved:
                self.saved[index] = forward(*args, **kwargs)
            return self.saved[index]
        hidden = args[0] if args else kwargs["hidden_states"]
        if self.recomputing or index not in self.saved:
            out = forward(*args, **kwargs)
            self.saved[index] = out - hidden
            return out
        return hidden + self.saved[index]
