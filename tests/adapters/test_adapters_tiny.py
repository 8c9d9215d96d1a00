"""Every model adapter in `tiny` mode, on the CPU: shapes, rates, lengths, phases, seeds, checks, errors.

Tiny models are the real classes with few-kB configs (diffusers' get_dummy_components idea), built
locally: nothing is downloaded. Each model is loaded once per module and generated with once for the
shared assertions (2 prompts × batch 2, 1 s, 10 steps).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2a_ray.adapters import adapter_class, get_card, model_ids
from t2a_ray.adapters._diffusers import oom_as_infeasible, output_samples
from t2a_ray.errors import ConfigError, InfeasibleError, ParameterError

MODELS = [m for m in model_ids() if m != "noop"]
PROMPTS = ["A dog barks while cars pass by", "Water running into a sink"]
PARAMS = {"steps": 10, "duration_s": 1.0, "batch_size": 2}
TINY_MAX_PARAMETERS = 2_000_000


@pytest.fixture(scope="module")
def loaded():
    cache: dict[str, object] = {}

    def get(model_id: str):
        if model_id not in cache:
            cache[model_id] = adapter_class(model_id).load(device="cpu", dtype="float32", weights="tiny")
        return cache[model_id]

    yield get
    for adapter in cache.values():
        adapter.unload()


@pytest.fixture(scope="module")
def generated(loaded):
    """One generation per model, with the phases it marked."""
    cache: dict[str, tuple] = {}

    def get(model_id: str):
        if model_id not in cache:
            marks: list[str] = []
            gen = loaded(model_id).generate(
                PROMPTS, PARAMS, seed=0, phases=marks.append, negative_prompt="Low quality."
            )
            cache[model_id] = (gen, marks)
        return cache[model_id]

    return get


@pytest.mark.parametrize("model_id", MODELS)
def test_two_prompts_batch_two_give_four_waveforms_of_the_card_shape(model_id, generated):
    card = get_card(model_id)
    gen, _ = generated(model_id)
    assert gen.sample_rate_hz == card.sample_rate_hz
    assert gen.waveforms.dtype == np.float32
    assert gen.waveforms.shape == (4, card.channels, card.sample_rate_hz)  # 1 s
    assert np.isfinite(gen.waveforms).all()


@pytest.mark.parametrize("model_id", MODELS)
def test_tiny_output_is_audible_noise_neither_silent_nor_clipped(model_id, generated):
    """Untrained vocoders once shrank the signal to nothing: WAVs of zeros, one CLAP score for all."""
    gen, _ = generated(model_id)
    peak = float(np.abs(gen.waveforms).max())
    assert 1e-3 <= peak <= 1.0, f"tiny {model_id}: peak {peak:.3g}"
    assert (np.abs(gen.waveforms) >= 0.99).mean() < 0.01, f"tiny {model_id}: saturated"


@pytest.mark.parametrize("model_id", MODELS)
def test_steps_change_the_audio(model_id, loaded):
    """A sweep over steps must compare different audio (else every configuration scores the same)."""
    adapter = loaded(model_id)
    few, more = (
        adapter.generate(PROMPTS[:1], {"steps": steps, "duration_s": 0.5}, seed=0).waveforms
        for steps in (2, 8)
    )
    assert np.sqrt(np.mean((few - more) ** 2)) > 1e-3 * np.sqrt(np.mean(few**2)) > 0


@pytest.mark.parametrize("model_id", MODELS)
def test_phases_are_marked_in_order(model_id, generated):
    _, marks = generated(model_id)
    assert marks == list(get_card(model_id).phases)


@pytest.mark.parametrize("model_id", MODELS)
def test_a_tiny_model_stays_tiny(model_id, loaded):
    # What keeps a tiny generation quick, and the suite short, is the model's size, which no load on the
    # machine changes (full-size models have hundreds of times more parameters)
    assert loaded(model_id).parameter_count < TINY_MAX_PARAMETERS


@pytest.mark.parametrize("model_id", MODELS)
def test_length_is_round_duration_times_rate(model_id, loaded):
    """The rule every adapter implements: round(duration_s × rate) samples, whatever the model's grid."""
    adapter = loaded(model_id)
    rate = get_card(model_id).sample_rate_hz
    for duration_s in (0.37, 1.001):
        gen = adapter.generate(PROMPTS[:1], {"steps": 2, "duration_s": duration_s}, seed=1)
        assert gen.waveforms.shape[-1] == output_samples(duration_s, rate) == round(duration_s * rate)


@pytest.mark.parametrize("model_id", MODELS)
def test_same_seed_same_audio_other_seed_other_audio(model_id, loaded):
    adapter = loaded(model_id)
    params = {"steps": 3, "duration_s": 0.5, "guidance_scale": 1.0}
    a = adapter.generate(PROMPTS[:1], params, seed=7).waveforms
    b = adapter.generate(PROMPTS[:1], params, seed=7).waveforms
    c = adapter.generate(PROMPTS[:1], params, seed=8).waveforms
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("model_id", ["audioldm", "tango", "make-an-audio"])
def test_schedulers_are_swappable(model_id, loaded):
    adapter = loaded(model_id)
    for name in get_card(model_id).param("scheduler").choices:
        gen = adapter.generate(PROMPTS[:1], {"steps": 4, "duration_s": 0.25, "scheduler": name}, seed=0)
        assert gen.waveforms.shape == (1, 1, 4000), name


def test_long_prompts_are_counted_as_truncated(loaded):
    adapter = loaded("audioldm")  # tiny tokenizers read 32 tokens
    long_prompt = " ".join(["a dog barks loudly while the rain falls on a tin roof"] * 5)
    gen = adapter.generate([long_prompt, "a cat"], {"steps": 2, "duration_s": 0.1}, seed=0)
    assert gen.prompts_truncated == 1


# -- check: clear messages before any GPU work ----------------------------------------------------------


def test_check_rejects_60_s_for_audioldm_with_the_allowed_range():
    with pytest.raises(ParameterError) as e:
        adapter_class("audioldm").check({"duration_s": 60})
    assert str(e.value) == "grid.duration_s = 60: must be a number from 0.1 to 30 s"


@pytest.mark.parametrize("model_id", MODELS)
def test_check_rejects_zero_steps(model_id):
    with pytest.raises(ParameterError) as e:
        get_card(model_id).check({"steps": 0})
    assert str(e.value) == "grid.steps = 0: must be an integer from 1 to 1000"


def test_check_fills_defaults_and_names_unknown_parameters():
    card = get_card("tango")
    assert card.check({}) == {
        "steps": 100,
        "guidance_scale": 3.0,
        "duration_s": 10.0,
        "batch_size": 1,
        "scheduler": "ddpm",
        "compile": "none",
        "attention": "default",
        "precision": "none",
        "cache": "none",
    }
    assert card.check({"scheduler": "default"})["scheduler"] == "ddpm"
    with pytest.raises(ParameterError, match=r"grid.scheduler = 'heun': must be one of 'ddim', 'ddpm'"):
        card.check({"scheduler": "heun"})
    with pytest.raises(ParameterError, match="did you mean 'steps'"):
        card.check({"step": 10})


def test_generate_checks_its_own_inputs(loaded):
    adapter = loaded("audioldm")
    with pytest.raises(ParameterError, match="grid.duration_s = 31"):
        adapter.generate(PROMPTS, {"duration_s": 31}, seed=0)
    with pytest.raises(ParameterError, match="prompts = \\[\\]: must be a non-empty list of strings"):
        adapter.generate([], {}, seed=0)


def test_stable_audio_tiny_window_is_enforced_with_a_message(loaded):
    with pytest.raises(ParameterError, match="tiny stable-audio-open generates windows of 2.97 s at most"):
        loaded("stable-audio-open").generate(PROMPTS[:1], {"duration_s": 10.0, "steps": 1}, seed=0)


@pytest.mark.parametrize("model_id", MODELS)
def test_the_cards_tiny_limits_are_the_tiny_models_own(model_id, loaded):
    """What validation refuses from the card alone is what the built model can do: the text tokens its
    tokenizers read, and stable-audio-open's window (its DiT's latents × its VAE's hop)."""
    adapter, limits = loaded(model_id), get_card(model_id).limits("tiny")
    assert limits.text_max_tokens == min(t.model_max_length for t in adapter._tokenizers())
    if model_id == "stable-audio-open":
        window = adapter.model.transformer.config.sample_size * adapter.model.vae.hop_length
        assert limits.maximum["duration_s"] == (window - 1) / adapter.sample_rate_hz
        longest = adapter.generate(
            PROMPTS[:1], {"duration_s": limits.maximum["duration_s"], "steps": 1}, seed=0
        )
        assert longest.waveforms.shape[-1] == window - 1


# -- load: modes, dtype, device, options ----------------------------------------------------------------


def test_load_reports_parameters_memory_and_revision(loaded):
    adapter = loaded("audioldm")
    assert adapter.parameter_count == sum(p.numel() for m in adapter.modules() for p in m.parameters())
    assert adapter.memory_bytes == 0  # CPU
    assert adapter.revision == "tiny"
    assert {p.dtype for m in adapter.modules() for p in m.parameters()} == {torch.float32}


def test_load_builds_in_the_requested_dtype():
    adapter = adapter_class("audioldm").load(device="cpu", dtype="bfloat16", weights="tiny")
    assert {p.dtype for m in adapter.modules() for p in m.parameters()} == {torch.bfloat16}
    gen = adapter.generate(PROMPTS[:1], {"steps": 2, "duration_s": 0.25}, seed=0)
    assert gen.waveforms.dtype == np.float32


def test_load_rejects_bad_arguments_before_building():
    cls = adapter_class("audioldm")
    with pytest.raises(
        ConfigError, match="weights = 'huge': model 'audioldm' supports pretrained, random, tiny"
    ):
        cls.load(device="cpu", dtype="float32", weights="huge")
    with pytest.raises(ConfigError, match="dtype = 'int8': must be one of float16, bfloat16, float32"):
        cls.load(device="cpu", dtype="int8", weights="tiny")
    with pytest.raises(ConfigError, match="options.fault"):
        cls.load(device="cpu", dtype="float32", weights="tiny", options={"fault": "oom"})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no NVIDIA GPU visible; run with --gpus 0"):
            cls.load(device="cuda", dtype="float16", weights="random")


def test_make_an_audio_pretrained_needs_the_original_checkout(tmp_path):
    with pytest.raises(
        ConfigError, match="give the path of a local checkout of github.com/Text-to-Audio/Make-An-Audio"
    ):
        adapter_class("make-an-audio").load(device="cpu", dtype="float32", weights="pretrained", repo=None)
    with pytest.raises(ImportError, match="pip install -r .*requirements.txt"):
        adapter_class("make-an-audio-2").load(
            device="cpu", dtype="float32", weights="pretrained", repo=str(tmp_path)
        )


# -- out of memory: one translation, to InfeasibleError -------------------------------------------------


def test_cuda_out_of_memory_becomes_infeasible():
    with pytest.raises(InfeasibleError, match="out of GPU memory while testing: CUDA out of memory") as e:
        with oom_as_infeasible("while testing"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert isinstance(e.value.__cause__, torch.OutOfMemoryError)


def test_oom_inside_a_generation_is_infeasible(loaded):
    adapter = loaded("tango")

    def out_of_memory(module, args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

    handle = adapter.model.unet.register_forward_pre_hook(out_of_memory)
    try:
        with pytest.raises(InfeasibleError, match="generating with tango \\(batch 2×64, 1.0 s\\)"):
            adapter.generate(PROMPTS, {"steps": 2, "duration_s": 1.0, "batch_size": 64}, seed=0)
    finally:
        handle.remove()


# -- hooks: abstract, so a missing one fails before any generation ---------------------------------------


def test_an_adapter_missing_a_hook_fails_at_instantiation_and_with_a_card_at_definition():
    from t2a_ray.adapters._loop import LoopAdapter
    from t2a_ray.adapters.tango import TangoAdapter

    class NoDenoiser(LoopAdapter):  # a base for models: may leave hooks to its subclasses
        _build = TangoAdapter._build
        _load_pretrained = TangoAdapter._load_pretrained
        _encode, _latent_shape = TangoAdapter._encode, TangoAdapter._latent_shape
        _decode, _vocode = TangoAdapter._decode, TangoAdapter._vocode

    with pytest.raises(TypeError, match="abstract method '?_denoise"):
        NoDenoiser("cpu", "float32", "tiny", model=None, revision=None)
    with pytest.raises(TypeError, match=r"NoDenoiserModel \(tango\) leaves abstract: _denoise"):

        class NoDenoiserModel(NoDenoiser):
            card = get_card("tango")
