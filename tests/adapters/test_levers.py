"""The precision and cache runtime axes on a tiny real model on the CPU: validated like any axis, int8 and a
step cache change the computation (and skip the work they claim to), the eager denoiser stays the
reference, no generation reuses another's features, and what cannot run is infeasible with its reason."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from t2a_ray.adapters import adapter_class, get_card
from t2a_ray.adapters.make_an_audio_2 import ConcatDiT2MLP
from t2a_ray.adapters.precision import quantised, unquantised_linears
from t2a_ray.adapters.runtime_axes import cache_param, output_equivalence, quantised_denoisers
from t2a_ray.adapters.step_cache import StepCache, cached_blocks
from t2a_ray.cli import main
from t2a_ray.errors import InfeasibleError

MODEL = "audioldm"  # the tiny UNet pipeline: two levels, so one deep level and a mid block to reuse
PARAMS = {"steps": 2, "duration_s": 1.0, "batch_size": 1}
PROMPT = ["a dog barks"]


def _launch(tmp_path, models: str, grid: str):
    config = tmp_path / "levers.yaml"
    config.write_text(f"name: l\nmodels: {models}\nweights: tiny\ngrid: {grid}\nprompts: {{text: [a]}}\n")
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["launch", "--config", str(config), "--out", str(out), "--gpus", "0"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    return result, lines, out


@pytest.mark.parametrize(
    ("grid", "models", "fragment"),
    [
        (
            "{precision: [none, fp16]}",
            "[audioldm]",
            "grid.precision[1] = 'fp16': must be one of 'none', 'fp8', 'int8'",
        ),
        (
            "{cache: every-4}",
            "[stable-audio-open]",
            "grid.cache = 'every-4': must be one of 'none', 'every-2', 'every-3'",
        ),
        ("{cache: every-2}", "[noop]", "grid.cache = 'every-2': unknown parameter"),
        (
            "{precision: [none, fp8]}",
            "[tango]",
            "grid.precision = 'fp8': needs a GPU of compute capability ≥ 8.9",
        ),
    ],
)
def test_a_lever_that_cannot_run_is_one_line_exit_2_before_anything_loads(tmp_path, grid, models, fragment):
    result, lines, out = _launch(tmp_path, models, grid)
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert fragment in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_a_precision_without_torchao_is_refused_at_launch(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # how Python marks a module absent: import fails
    result, lines, _ = _launch(tmp_path, "[audioldm]", "{precision: [none, int8]}")
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert (
        "grid.precision = 'int8': needs torchao, which is not installed: pip install 't2a-ray[levers]'"
        in lines[0]
    )


def test_models_shows_the_levers_and_their_limits_per_model():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    blocks = {b.split("  —")[0]: b for b in result.output.split("\n\n") if "  —" in b}
    assert "compute capability ≥ 8.9" in blocks["audioldm"] and "'fp8', 'int8'" in blocks["audioldm"]
    assert "(DeepCache)" in blocks["tango"] and "transformer block" in blocks["stable-audio-open"]
    assert "not with compile" in blocks["make-an-audio-2"]
    assert "cache" not in get_card("noop").param_names


@pytest.fixture(scope="module")
def adapter():
    a = adapter_class(MODEL).load(device="cpu", dtype="float32", weights="tiny")
    yield a
    a.unload()


def test_the_card_names_the_hook_its_denoiser_has(adapter):
    hook, blocks = cached_blocks(adapter.model.unet)
    assert get_card(MODEL).param("cache") == cache_param(hook) and hook == "unet"
    unet = adapter.model.unet
    assert blocks == [*list(unet.down_blocks)[1:], unet.mid_block, *list(unet.up_blocks)[:-1]]


def _weight(adapter) -> torch.Tensor:
    """A linear layer's weight in the denoiser now in the pipeline's slot."""
    return adapter.model.unet.mid_block.attentions[0].transformer_blocks[0].attn1.to_q.weight


@pytest.mark.torchao
def test_int8_quantises_a_copy_once_and_changes_the_computation(adapter):
    eager = adapter.generate(PROMPT, PARAMS, seed=3).waveforms
    before = quantised_denoisers()
    int8 = adapter.generate(PROMPT, {**PARAMS, "precision": "int8"}, seed=3).waveforms
    assert type(_weight(adapter)).__name__ == "Int8Tensor"
    again = adapter.generate(PROMPT, {**PARAMS, "precision": "int8"}, seed=3).waveforms
    assert quantised_denoisers() == before + 1  # once per worker: the second call reuses the copy
    rel, snr = output_equivalence(int8, eager)
    assert 0 < rel and math.isfinite(snr) and np.array_equal(again, int8)
    cached = adapter.generate(PROMPT, {**PARAMS, "precision": "int8", "cache": "every-2"}, seed=3).waveforms
    assert not np.array_equal(cached, int8)  # the step cache on the quantised copy
    back = adapter.generate(PROMPT, PARAMS, seed=3).waveforms
    assert np.array_equal(back, eager)  # the eager denoiser was copied, never quantised in place
    assert type(_weight(adapter)) is torch.nn.Parameter


def test_a_step_cache_skips_the_deep_blocks_and_reuses_nothing_of_another_generation(adapter):
    adapter.generate(PROMPT, PARAMS, seed=0)
    unet = adapter.model.unet  # the eager denoiser
    pre_hooks = len(unet._forward_pre_hooks)
    calls: list[int] = []
    handle = unet.mid_block.resnets[0].register_forward_hook(lambda *_: calls.append(1))
    try:
        eager = adapter.generate(PROMPT, PARAMS, seed=3).waveforms
        eager_calls, calls[:] = len(calls), []
        cache = {**PARAMS, "cache": "every-2"}
        cached = adapter.generate(PROMPT, cache, seed=3).waveforms
        assert eager_calls == PARAMS["steps"] and len(calls) == 1  # inside a reused block: step 0 only
        rel, snr = output_equivalence(cached, eager)
        assert 0 < rel and math.isfinite(snr)
        assert len(unet._forward_pre_hooks) == pre_hooks + 1 and "forward" in vars(unet.mid_block)
        adapter.generate(["rain on a tin roof"], cache, seed=5)  # would leave its features behind
        assert adapter._variants.cache.saved == {}  # dropped when the generation ended
        assert np.array_equal(adapter.generate(PROMPT, cache, seed=3).waveforms, cached)
    finally:
        handle.remove()
    adapter.generate(PROMPT, PARAMS, seed=0)  # eager again: the denoiser as it was
    assert len(unet._forward_pre_hooks) == pre_hooks and "forward" not in vars(unet.mid_block)


@pytest.mark.parametrize(
    ("runtime", "reason"),
    [
        ({"precision": "fp8"}, "precision=fp8: no float8 matrix multiply on the cpu"),
        ({"cache": "every-2", "compile": "default"}, "cache=every-2 with compile=default: the features"),
    ],
)
def test_a_lever_the_device_or_compile_cannot_run_is_infeasible(adapter, runtime, reason):
    with pytest.raises(InfeasibleError, match=reason):
        adapter.generate(PROMPT, {**PARAMS, **runtime}, seed=0)


@pytest.mark.torchao
def test_every_linear_layer_of_a_quantised_copy_is_checked():
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.GELU(), torch.nn.Linear(32, 8))
    copied = quantised(plain, "int8")
    assert unquantised_linears(copied) == []
    assert unquantised_linears(plain) == [("0", (32, 32)), ("2", (8, 32))]  # the original is untouched


def _dit(depth: int) -> ConcatDiT2MLP:
    torch.manual_seed(0)
    return ConcatDiT2MLP(in_channels=4, context_dim=8, hidden_size=32, num_heads=2, depth=depth, max_len=64)


def test_a_dit_reuses_each_inner_blocks_residual_and_needs_three_blocks():
    dit = _dit(4)
    x, t, context = torch.randn(2, 4, 8), torch.tensor([10, 10]), torch.randn(2, 4, 8)
    with torch.inference_mode():
        eager = [dit(x + k, t, context) for k in range(3)]
        hook, blocks = cached_blocks(dit)
        assert hook == "dit" and blocks == list(dit.blocks)[1:-1]
        calls: list[int] = []
        blocks[0].proj_in.register_forward_hook(lambda *_: calls.append(1))
        cache = StepCache(dit, interval=3)
        cached = [dit(x + k, t, context) for k in range(3)]
        cache.remove()
        assert len(calls) == 1  # recomputed at the first of three calls only
        assert torch.equal(cached[0], eager[0]) and not torch.equal(cached[1], eager[1])
        assert torch.equal(dit(x, t, context), eager[0])  # removed: the blocks compute again
    with pytest.raises(InfeasibleError, match="has 2 transformer block"):
        cached_blocks(_dit(2))
