"""The `precision` axis (`runtime_axes.py`) applied: a quantised copy of a loaded denoiser, through torchao.

torchao (``quantize_``) replaces the weights of every ``nn.Linear`` of the denoiser by its tensor
subclasses, in place; convolutions, norms and embeddings keep the swept dtype. It works in place, so it
works on a copy: the eager denoiser stays as it was, the reference of every other runtime (the copy
holds the model's denoiser a second time, in its smaller format). A worker quantises once per model
and precision, on the first call of that runtime: inside the trial's setup generation, metered apart
(`runtime_axes.quantised_denoisers` lets the trial record that it happened). A worker's first quantisation
also imports torchao (seconds), as a user's first one does; that import is part of its setup cost.

* ``fp8``: ``Float8DynamicActivationFloat8WeightConfig`` — float8 (e4m3) weights and activations
  scaled per call, multiplied by ``torch._scaled_mm``, which needs `runtime_axes.FP8_MIN_CAPABILITY`.
* ``int8``: ``Int8WeightOnlyConfig`` — int8 weights dequantised into the swept dtype for each multiply.

A device or layer that cannot run the asked-for format is `InfeasibleError`, never the unquantised
denoiser in its place: torchao itself leaves a linear layer as it was where float8's matrix multiply
cannot take its shape (a dimension not a multiple of 16), so every linear layer is checked afterwards.

torchao's configs would also set process-wide inductor options (``set_inductor_config``): they are left
alone, so that a quantised denoiser is compiled as every other runtime of the worker is, before and
after it, and a difference between runtimes is the quantisation's.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from t2a_ray.adapters.runtime_axes import FP8_GPU, FP8_MIN_CAPABILITY
from t2a_ray.errors import InfeasibleError, first_line

_QUANTISED = 0  # denoiser copies quantised in this process: what a setup generation records


def quantised_count() -> int:
    """Denoisers quantised in this process so far (read through `runtime_axes.quantised_denoisers`)."""
    return _QUANTISED


def check_device(precision: str, device: torch.device) -> None:
    """Raise InfeasibleError where `device` cannot run `precision`, before anything is copied."""
    if precision != "fp8":
        return
    if device.type != "cuda":
        raise InfeasibleError(f"precision=fp8: no float8 matrix multiply on the {device.type}")
    capability = torch.cuda.get_device_capability(device)
    if capability < FP8_MIN_CAPABILITY:
        raise InfeasibleError(
            f"precision=fp8: {torch.cuda.get_device_name(device)} has compute capability "
            f"{'.'.join(map(str, capability))}; float8 matrix multiplies need {FP8_GPU}"
        )


def quantised(denoiser: torch.nn.Module, precision: str) -> torch.nn.Module:
    """A copy of `denoiser` whose linear layers hold `precision` ("fp8" or "int8") weights."""
    global _QUANTISED
    try:
        from torchao.quantization import quantize_
    except ImportError as e:  # the launch checks this first; a worker without it still says why
        raise InfeasibleError(f"precision={precision} needs torchao: pip install 't2a-ray[levers]'") from e
    config = _config(precision)
    copied = copy.deepcopy(denoiser)
    try:
        quantize_(copied, config)
    except (RuntimeError, AssertionError, ValueError, NotImplementedError) as e:
        # torchao asserts what the device or a layer's shape cannot do; that is a result, not a bug
        raise InfeasibleError(
            f"precision={precision}: torchao cannot quantise this denoiser: {first_line(e)}"
        ) from e
    left = unquantised_linears(copied)
    if left:
        name, shape = left[0]
        why = "; float8 needs both dimensions multiples of 16" if precision == "fp8" else ""
        raise InfeasibleError(
            f"precision={precision}: torchao left {len(left)} linear layer(s) of the denoiser unquantised "
            f"(the first: {name}, weight {tuple(shape)}{why})"
        )
    _QUANTISED += 1
    return copied


def unquantised_linears(module: torch.nn.Module) -> list[tuple[str, torch.Size]]:
    """(name, weight shape) of each linear layer of `module` whose weight is not a torchao tensor."""
    from torchao.utils import TorchAOBaseTensor

    return [
        (name, m.weight.shape)
        for name, m in module.named_modules()
        if isinstance(m, torch.nn.Linear) and not isinstance(m.weight, TorchAOBaseTensor)
    ]


def _config(precision: str) -> Any:
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, Int8WeightOnlyConfig

    kind = {"fp8": Float8DynamicActivationFloat8WeightConfig, "int8": Int8WeightOnlyConfig}[precision]
    return kind(set_inductor_config=False)
