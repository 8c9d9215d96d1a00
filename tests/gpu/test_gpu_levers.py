"""On a machine with an NVIDIA GPU (skipped elsewhere): the precision and cache axes on tiny real models in
float16 — fp8 where the card has float8 matrix multiplies, int8 and a step cache, fp8 under CUDA graphs —
each changing the waveform, and fp8 infeasible, naming the layer, where torchao leaves one unquantised."""

from __future__ import annotations

import math

import numpy as np
import pytest

from t2a_ray.adapters import adapter_class
from t2a_ray.adapters.runtime_axes import FP8_MIN_CAPABILITY, output_equivalence
from t2a_ray.errors import InfeasibleError

pytestmark = [pytest.mark.gpu, pytest.mark.torchao]

PARAMS = {"steps": 4, "duration_s": 1.0, "batch_size": 1}
PROMPT = ["a dog barks"]


def _fp8_card() -> bool:
    import torch

    return torch.cuda.get_device_capability() >= FP8_MIN_CAPABILITY


@pytest.fixture(scope="module")
def audioldm():
    a = adapter_class("audioldm").load(device="cuda", dtype="float16", weights="tiny")
    yield a
    a.unload()


@pytest.mark.parametrize(
    "runtime",
    [
        {"precision": "int8"},
        {"cache": "every-2"},
        {"precision": "fp8"},
        {"precision": "fp8", "compile": "reduce-overhead"},
    ],
)
def test_each_lever_runs_on_the_gpu_and_changes_the_waveform(audioldm, runtime):
    if runtime.get("precision") == "fp8" and not _fp8_card():
        with pytest.raises(InfeasibleError, match="compute capability"):
            audioldm.generate(PROMPT, {**PARAMS, **runtime}, seed=1)
        return
    eager = audioldm.generate(PROMPT, PARAMS, seed=1).waveforms
    first = audioldm.generate(PROMPT, {**PARAMS, **runtime}, seed=1).waveforms  # compiles, where asked
    again = audioldm.generate(PROMPT, {**PARAMS, **runtime}, seed=1).waveforms
    rel, snr = output_equivalence(again, eager)
    assert rel is not None and rel > 0 and math.isfinite(snr)
    assert np.isfinite(again).all() and np.allclose(again, first, atol=1e-3)


def test_fp8_with_a_layer_torchao_leaves_as_it_was_is_infeasible():
    if not _fp8_card():
        pytest.skip("float8 matrix multiplies need compute capability ≥ 8.9")
    sao = adapter_class("stable-audio-open").load(device="cuda", dtype="float16", weights="tiny")
    try:
        with pytest.raises(InfeasibleError, match=r"unquantised \(the first: .*multiples of 16\)"):
            sao.generate(PROMPT, {**PARAMS, "precision": "fp8"}, seed=0)
    finally:
        sao.unload()
