"""Runtime settings as sweep axes: how a loaded model runs, not what it is.

Four axes, parameters of every torch model's card (pure data here; ``_runtime_variants.py`` applies them):

* ``compile``: ``none`` (eager, the paper's setting) or a ``torch.compile`` mode — ``default``,
  ``reduce-overhead`` (CUDA graphs), ``max-autotune`` (autotuned kernels and CUDA graphs). Only the
  denoiser is compiled: it runs once per step (twice the batch with guidance), so it holds almost all
  of the launches; the text encoders run once and the decoder and vocoder once per generation.
* ``attention``: the scaled-dot-product-attention backend (``torch.nn.attention.sdpa_kernel``) for the
  denoiser's SDPA calls: ``default`` (torch picks per call), ``flash``, ``efficient``, ``math``. The
  other modules keep torch's choice, as they keep eager.
* ``precision``: the denoiser's linear layers quantised by torchao (``precision.py``): ``none`` (the
  dtype as swept), ``fp8`` (float8 weights and dynamically quantised float8 activations: a GPU of
  compute capability ≥ 8.9) or ``int8`` (int8 weights, computed in the swept dtype). It combines with
  ``compile``: torchao's tensors are meant to be compiled.
* ``cache``: the denoiser's deep features reused between adjacent steps on a fixed schedule
  (``step_cache.py``): ``none``, or recomputed at every 2nd or 3rd step (``every-2``, ``every-3``) and
  reused at the steps between. Each card names its hook (`CACHE_HOOKS`): a UNet's deep blocks
  (DeepCache) or a DiT's inner blocks. Not with ``compile``: the features kept between calls live
  outside a compiled graph (and CUDA graphs reuse their output memory), so that pair is infeasible.

The eager run — ``compile: none``, ``attention: default``, ``precision: none``, ``cache: none`` — is
every other runtime's reference: its waveform for the same configuration and seed is what a runtime's
output is compared with.

`compiled_graphs` and `quantised_denoisers` let the trial see compilation and quantisation without
importing torch: a window in which a graph was compiled would hold compile time, so the trial refuses
it, and the setup table records which setup generation did either.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from t2a_ray.adapters.base import ParamSpec

COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
ATTENTION_BACKENDS = ("default", "flash", "efficient", "math")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # compile modes that capture CUDA graphs: a GPU only

COMPILE = ParamSpec(
    "compile",
    str,
    "none",
    "torch.compile mode of the denoiser (none: eager; reduce-overhead and max-autotune: CUDA graphs)",
    choices=COMPILE_MODES,
)
ATTENTION = ParamSpec(
    "attention",
    str,
    "default",
    "scaled-dot-product-attention backend of the denoiser (default: torch picks for each call)",
    choices=ATTENTION_BACKENDS,
)
PRECISIONS = ("none", "fp8", "int8")
FP8_MIN_CAPABILITY = (8, 9)  # float8 matrix multiplies (torch._scaled_mm): Ada Lovelace, Hopper and later
FP8_GPU = "a GPU of compute capability ≥ " + ".".join(map(str, FP8_MIN_CAPABILITY))
PRECISION = ParamSpec(
    "precision",
    str,
    "none",
    "the denoiser's linear layers quantised by torchao, once per worker and metered as setup (none: the "
    f"dtype as swept; fp8: float8 weights and activations, {FP8_GPU}; int8: int8 weights); needs the "
    "`levers` extra",
    choices=PRECISIONS,
)
CACHE_MODES = ("none", "every-2", "every-3")
# The denoiser architectures with a step cache (`step_cache.py` finds the blocks): what a card's help says.
CACHE_HOOKS = {
    "unet": "the UNet's blocks below its outermost level (DeepCache): computed every 2nd or 3rd step, "
    "their output reused between",
    "dit": "the residual of each transformer block but the first and last: computed every 2nd or 3rd "
    "step, reused between",
}


def cache_param(hook: str) -> ParamSpec:
    """The `cache` axis of a card whose denoiser has the step-cache hook `hook` (a key of CACHE_HOOKS)."""
    return ParamSpec(
        "cache",
        str,
        "none",
        f"denoiser features reused between steps: {CACHE_HOOKS[hook]}; not with compile",
        choices=CACHE_MODES,
    )


def runtime_params(cache_hook: str | None) -> tuple[ParamSpec, ...]:
    """A torch model card's runtime axes: `cache` only where its denoiser has a step-cache hook."""
    return (COMPILE, ATTENTION, PRECISION, *(() if cache_hook is None else (cache_param(cache_hook),)))


def cache_interval(mode: str) -> int | None:
    """Steps between recomputations of the cached features (``every-2`` → 2); None: no cache."""
    return None if mode == "none" else int(mode.removeprefix("every-"))


RUNTIME_PARAMS = runtime_params("unet")  # every runtime axis (the `cache` help is each card's own)
EAGER: Mapping[str, str] = {spec.name: spec.default for spec in RUNTIME_PARAMS}

# A runtime whose waveform differs from the eager run's (same dtype, configuration and seed) by more
# than this, in dB of SNR, is flagged as changing the audio. Each threshold sits below what reordered
# sums alone (another attention kernel, fused kernels) do to a waveform in that dtype, with a margin,
# and far above a changed computation (a dropped term, another sampler path). The reorderings, and half
# precision against float32, are measured in benchmarks/results/runtime_equivalence_cpu.json (bfloat16,
# CPU); float16 keeps 3 more mantissa bits than bfloat16 and float32 16 more, so their noise is lower.
EQUIVALENT_MIN_SNR_DB = {"bfloat16": 20.0, "float16": 30.0, "float32": 60.0}


# The parameters a shape does not depend on: the denoiser's inputs are the same whatever the number
# of steps, so a runtime's graphs (and a warm-up) serve every step count.
SHAPE_FREE = ("steps",)


def shape_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """What a setup (a runtime's compilation and capture, a warm-up) depends on: every parameter but
    those of `SHAPE_FREE` — batch, duration, guidance, runtime, …"""
    return {k: v for k, v in params.items() if k not in SHAPE_FREE}


def shape_of(params: Mapping[str, Any]) -> str:
    """`shape_params` as one hashable key, the same for the same values in any order."""
    return repr(sorted(shape_params(params).items()))


def runtime_of(params: Mapping[str, Any]) -> dict[str, str]:
    """The runtime axes of a checked grid point (the eager defaults where a card has none)."""
    return {name: str(params.get(name, default)) for name, default in EAGER.items()}


def is_eager(params: Mapping[str, Any]) -> bool:
    return runtime_of(params) == dict(EAGER)


def eager_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The same grid point run eagerly: the reference for output equivalence."""
    return {**params, **{k: v for k, v in EAGER.items() if k in params}}


def identity_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters that identify a configuration (its trial id): the runtime axes at their eager
    defaults are left out, so a configuration keeps the id it had before these axes existed."""
    return {k: v for k, v in params.items() if not (k in EAGER and v == EAGER[k])}


def torchao_installed() -> bool:
    """Whether torchao can be imported (looked up, not imported: that takes seconds)."""
    return importlib.util.find_spec("torchao") is not None


def refusal(params: Mapping[str, Any], device: str) -> tuple[str, Any, str] | None:
    """(axis, value, why) for a checked grid point whose runtime cannot run on `device` ("cpu" or
    "cuda"), known before any model loads; None when nothing is known against it. What only the GPU
    can tell (its compute capability) is left to the trial, which makes it infeasible."""
    mode, precision = params.get("compile"), params.get("precision")
    if device == "cpu" and mode in CUDA_GRAPH_MODES:
        return (
            "compile",
            mode,
            "captures CUDA graphs, which need a GPU; on the CPU (--gpus 0) use compile none or default",
        )
    if device == "cpu" and precision == "fp8":
        return (
            "precision",
            precision,
            f"needs {FP8_GPU}; on the CPU (--gpus 0) use precision none or int8",
        )
    if precision not in (None, "none") and not torchao_installed():
        return "precision", precision, "needs torchao, which is not installed: pip install 't2a-ray[levers]'"
    return None


def compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process so far (0 while it was never imported)."""
    utils = sys.modules.get("torch._dynamo.utils")
    return 0 if utils is None else int(utils.counters["stats"]["unique_graphs"])


def quantised_denoisers() -> int:
    """Denoisers quantised (`precision.py`) in this process so far (0 while it was never imported)."""
    precision = sys.modules.get("t2a_ray.adapters.precision")
    return 0 if precision is None else precision.quantised_count()


def output_equivalence(waveforms: np.ndarray, reference: np.ndarray) -> tuple[float | None, float | None]:
    """(relative L2 error, SNR in dB) of `waveforms` against the eager run's `reference`, same shape.

    SNR = 10·log10(‖reference‖² / ‖waveforms − reference‖²) = −20·log10(relative error): inf when the
    two are identical; both None when the reference is silent (no relative error exists).
    """
    ref = np.asarray(reference, dtype=np.float64)
    diff = np.asarray(waveforms, dtype=np.float64) - ref
    ref_norm = float(np.linalg.norm(ref))
    if ref_norm == 0.0 or not math.isfinite(ref_norm):
        return None, None
    rel = float(np.linalg.norm(diff)) / ref_norm
    return rel, (math.inf if rel == 0.0 else -20.0 * math.log10(rel))
