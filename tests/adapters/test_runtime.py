"""The runtime axes (compile mode, attention backend): validated like any axis, applied to a tiny real
model on the CPU with inductor, and a knob that cannot run is infeasible — never eager in disguise."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from t2a_ray.adapters import adapter_class, get_card
from t2a_ray.adapters._runtime_variants import _WithAttention
from t2a_ray.adapters.runtime_axes import EAGER, compiled_graphs, output_equivalence
from t2a_ray.cli import main
from t2a_ray.config import parse_sweep
from t2a_ray.errors import InfeasibleError

MODEL = "make-an-audio-2"  # the tiny model that compiles fastest here (one small DiT)
PARAMS = {"steps": 2, "duration_s": 1.0, "batch_size": 1}
PROMPT = ["a dog barks"]


@pytest.mark.parametrize(
    ("grid", "models", "fragment"),
    [
        ("{compile: [none, fast]}", "[audioldm]", "grid.compile[1] = 'fast'"),
        ("{attention: flash2}", "[tango]", "grid.attention = 'flash2'"),
        ("{compile: default}", "[noop]", "grid.compile = 'default': unknown parameter"),
    ],
)
def test_a_bad_runtime_value_is_one_line_exit_2(tmp_path, grid, models, fragment):
    config = tmp_path / "bad.yaml"
    config.write_text(f"name: r\nmodels: {models}\nweights: tiny\ngrid: {grid}\nprompts: {{text: [a]}}\n")
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["launch", "--config", str(config), "--out", str(out), "--gpus", "0"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert fragment in lines[0]
    if "noop" not in models:
        assert "'none', 'default', 'reduce-overhead', 'max-autotune'" in lines[0] or "'math'" in lines[0]
    assert not out.exists()


def test_models_lists_the_runtime_axes_with_their_choices():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    assert "reduce-overhead" in result.output and "efficient" in result.output
    assert "compile" not in get_card("noop").param_names  # no torch model, no runtime axes


def test_eager_configurations_keep_their_trial_ids(tmp_path):
    base = {"name": "r", "models": ["audioldm"], "weights": "tiny", "prompts": {"text": ["a"]}}
    before = parse_sweep({**base, "grid": {"steps": 10}}, tmp_path).trials()
    swept = parse_sweep({**base, "grid": {"steps": 10, "compile": ["none", "default"]}}, tmp_path).trials()
    assert [t.params["compile"] for t in swept] == ["none", "default"]
    assert swept[0].trial_id == before[0].trial_id  # a run folder from before the axes resumes as is
    assert swept[1].trial_id != swept[0].trial_id


def test_output_equivalence_is_relative_l2_error_and_snr_in_db():
    ref = np.array([[3.0, 4.0]])  # norm 5
    rel, snr = output_equivalence(ref + np.array([[0.05, 0.0]]), ref)
    assert rel == pytest.approx(0.01) and snr == pytest.approx(40.0)
    assert output_equivalence(ref, ref) == (0.0, math.inf)
    assert output_equivalence(ref, np.zeros_like(ref)) == (None, None)  # no reference power: undefined


@pytest.fixture(scope="module")
def adapter():
    a = adapter_class(MODEL).load(device="cpu", dtype="float32", weights="tiny")
    yield a
    a.unload()


def test_compile_default_compiles_the_denoiser_once_per_shape_on_the_cpu(adapter):
    eager = adapter.generate(PROMPT, PARAMS, seed=3).waveforms
    eager_module = adapter.model.denoiser
    before = compiled_graphs()
    compiled = adapter.generate(PROMPT, {**PARAMS, "compile": "default"}, seed=3).waveforms
    assert compiled_graphs() > before  # inductor compiled it: no silent eager
    assert isinstance(adapter.model.denoiser, torch._dynamo.eval_frame.OptimizedModule)
    marks: list[str] = []
    graphs = compiled_graphs()
    again = adapter.generate(PROMPT, {**PARAMS, "compile": "default"}, seed=3, phases=marks.append)
    assert compiled_graphs() == graphs  # same shape: nothing compiled
    assert marks == ["text_encoder", "denoise", "decode", "vocoder"]  # phase hooks see the variant
    rel, _ = output_equivalence(again.waveforms, eager)
    assert rel < 1e-4 and np.array_equal(again.waveforms, compiled)
    back = adapter.generate(PROMPT, {**PARAMS, **EAGER}, seed=3).waveforms
    assert adapter.model.denoiser is eager_module and np.array_equal(back, eager)
    # another attention backend is another graph: dynamo does not guard on the backend in force
    graphs = compiled_graphs()
    adapter.generate(PROMPT, {**PARAMS, "compile": "default", "attention": "math"}, seed=3)
    assert compiled_graphs() > graphs


def test_cuda_graphs_on_the_cpu_are_infeasible_not_eager(adapter):
    with pytest.raises(InfeasibleError, match="compile=reduce-overhead: no CUDA graphs on the cpu"):
        adapter.generate(PROMPT, {**PARAMS, "compile": "reduce-overhead"}, seed=0)


def test_a_skipped_capture_is_infeasible_then_and_for_every_later_instance(adapter):
    """The check behind CUDA graphs on a GPU: inductor's own skip (here of CPU tensors, the device label
    says cuda so that the check before compiling lets it through), then its memory of that skip."""
    from t2a_ray.adapters._runtime_variants import Variants

    runtime = {**PARAMS, "compile": "reduce-overhead", "attention": "math"}
    adapter.generate(PROMPT, PARAMS, seed=0)  # the eager denoiser back in its place
    for _ in range(2):  # the second variant reuses the compiled graph: inductor logs nothing again
        variants = Variants(adapter.model, adapter.model.denoiser, torch.device("cuda"))
        with pytest.raises(InfeasibleError, match="compile=reduce-overhead: inductor skipped CUDA graph"):
            with torch.inference_mode(), variants.use(runtime):
                adapter._run(PROMPT, {**PARAMS, "guidance_scale": 3.0}, torch.Generator(), None, 16000, None)
        parent, name = variants.slot
        setattr(parent, name, variants.eager)


def test_attention_backends_act_on_the_denoiser_and_run_or_are_infeasible(adapter):
    eager = adapter.generate(PROMPT, PARAMS, seed=1).waveforms
    # flash runs: the VAE's strided attention, which flash refuses, keeps torch's choice
    for backend in ("math", "flash"):
        waveforms = adapter.generate(PROMPT, {**PARAMS, "attention": backend}, seed=1).waveforms
        assert output_equivalence(waveforms, eager)[0] < 1e-5
        assert isinstance(adapter.model.denoiser, _WithAttention)
    with pytest.raises(
        InfeasibleError, match="attention=efficient has no kernel for an attention call of the denoiser"
    ):
        adapter.generate(PROMPT, {**PARAMS, "attention": "efficient"}, seed=1)  # none on the CPU
    adapter.generate(PROMPT, PARAMS, seed=1)
    assert not isinstance(adapter.model.denoiser, _WithAttention)  # eager is the module itself again


_log = logging.getLogger("a-denoiser")


class _LoggingDenoiser(torch.nn.Module):
    """Logs inside its forward (to a module's logger), as AudioLDM 2's UNet does when its latent is not
    a multiple of its upsampling factor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _log.info("forward upsample size")
        return x * 2


def test_a_log_call_in_the_denoiser_does_not_make_a_compiled_runtime_infeasible():
    from types import SimpleNamespace

    from t2a_ray.adapters._runtime_variants import Variants

    model = SimpleNamespace(denoiser=_LoggingDenoiser())
    variants = Variants(model, model.denoiser, torch.device("cpu"))
    before = compiled_graphs()
    with variants.use({"compile": "default", "attention": "default"}):
        out = model.denoiser(torch.ones(3))
    assert compiled_graphs() > before  # compiled whole (fullgraph), the log call traced as a no-op
    assert torch.equal(out, torch.full((3,), 2.0))
