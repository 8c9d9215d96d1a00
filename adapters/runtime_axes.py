"""Runtime settings as sweep axes: how a loaded model runs, not what it is.

Two axes, parameters of every torch model's card (pure data here; ``_runtime_variants.py`` applies them):

* ``compile``: ``none`` (eager, the paper's setting) or a ``torch.compile`` mode — ``default``,
  ``reduce-overhead`` (CUDA graphs), ``max-autotune`` (autotuned kernels and CUDA graphs). Only the
  denoiser is compiled: it runs once per step (twice the batch with guidance), so it holds almost all
  of the launches; the text encoders run once and the decoder and vocoder once per generation.
* ``attention``: the scaled-dot-product-attention backend (``torch.nn.attention.sdpa_kernel``) for the
  denoiser's SDPA calls: ``default`` (torch picks per call), ``flash``, ``efficient``, ``math``. The
  other modules keep torch's choice, as they keep eager.

The eager run — ``compile: none``, ``attention: default`` — is every other runtime's reference: its
waveform for the same configuration and seed is what a runtime's output is compared with.

`compiled_graphs` lets the trial see compilation without importing torch: a window in which a graph
was compiled would hold compile time, so the trial refuses it.
"""

from __future__ import annotations

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
RUNTIME_PARAMS = (COMPILE, ATTENTION)
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


def compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process so far (0 while it was never imported)."""
    utils = sys.modules.get("torch._dynamo.utils")
    return 0 if utils is None else int(utils.counters["stats"]["unique_graphs"])


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
