"""`stable-audio-open`: Stable Audio Open 1.0 through diffusers' StableAudioPipeline."""

from __future__ import annotations

import importlib.util
import json

from t2a_ray.adapters import _components as C
from t2a_ray.adapters import _text
from t2a_ray.adapters._diffusers import PipelineAdapter, plain
from t2a_ray.adapters.cards import SAO_RATE_HZ, SAO_TINY_LATENTS, SAO_TINY_STRIDES, STABLE_AUDIO_OPEN
from t2a_ray.errors import ParameterError


def _have_torchsde() -> bool:
    return importlib.util.find_spec("torchsde") is not None


def sampler():
    """Stable Audio Open's sampler: CosineDPMSolverMultistep (stabilityai/stable-audio-open-1.0
    scheduler_config.json), which draws its SDE noise with torchsde's Brownian tree. Where torchsde is not
    installed (it is not a t2a-ray dependency), `random`/`tiny` use diffusers' EDM DPM-Solver++ (SDE) on the
    same sigma range: the same number of DiT calls per step, so the same cost; only its noise differs."""
    import diffusers

    settings = dict(
        sigma_min=0.3,
        sigma_max=500,
        sigma_data=1.0,
        sigma_schedule="exponential",
        solver_order=2,
        prediction_type="v_prediction",
    )
    with plain():
        if _have_torchsde():
            return diffusers.CosineDPMSolverMultistepScheduler(**settings)
        return diffusers.EDMDPMSolverMultistepScheduler(**settings, algorithm_type="sde-dpmsolver++")


class StableAudioAdapter(PipelineAdapter):
    card = STABLE_AUDIO_OPEN
    pipeline_class = "StableAudioPipeline"
    # The Oobleck VAE decodes latents straight to audio: there is no separate vocoder phase.
    phase_modules = {"denoise": ("transformer",), "decode": ("vae.decoder",)}

    @classmethod
    def _components(cls, size, options):
        from diffusers import AutoencoderOobleck, StableAudioDiTModel
        from diffusers.pipelines.stable_audio import StableAudioProjectionModel

        full = size == "full"
        if full:  # diffusers' defaults are Stable Audio Open 1.0's (scripts/convert_stable_audio.py)
            transformer = StableAudioDiTModel()
            vae = AutoencoderOobleck()
            cond_dim = 768
        else:
            # A short window (the real 47.55 s one takes seconds to decode on a CPU even with 2 channels):
            # its length is the card's tiny limit on duration_s, checked when the sweep is validated.
            cond_dim = 16
            transformer = StableAudioDiTModel(
                sample_size=SAO_TINY_LATENTS,
                in_channels=4,
                num_layers=2,
                attention_head_dim=8,
                num_attention_heads=2,
                num_key_value_attention_heads=1,
                out_channels=4,
                cross_attention_dim=16,
                time_proj_dim=8,
                global_states_input_dim=2 * cond_dim,
                cross_attention_input_dim=cond_dim,
            )
            vae = AutoencoderOobleck(
                encoder_hidden_size=2,
                downsampling_ratios=list(SAO_TINY_STRIDES),
                channel_multiples=[1, 2, 4],
                decoder_channels=2,
                decoder_input_channels=4,
                audio_channels=2,
                sampling_rate=SAO_RATE_HZ,
            )
        text_encoder = C.t5_encoder(size, "t5-base")
        projection_model = StableAudioProjectionModel(
            text_encoder_dim=text_encoder.config.d_model,
            conditioning_dim=cond_dim,
            min_value=0,
            max_value=512,
        )
        return dict(
            vae=vae,
            text_encoder=text_encoder,
            projection_model=projection_model,
            tokenizer=_text.t5_tokenizer(128 if full else C.TINY_TEXT_TOKENS),
            transformer=transformer,
            scheduler=sampler(),
        )

    @classmethod
    def _pretrained_overrides(cls, folder, dtype):
        config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        if config.get("_class_name") == "CosineDPMSolverMultistepScheduler" and not _have_torchsde():
            raise ImportError(
                "stable-audio-open's sampler (CosineDPMSolverMultistepScheduler) needs the torchsde package: "
                "pip install torchsde"
            )
        return {}

    @classmethod
    def load(cls, *, device, dtype, weights, repo=None, revision=None, options=None):
        adapter = super().load(
            device=device, dtype=dtype, weights=weights, repo=repo, revision=revision, options=options
        )
        adapter.sample_rate_hz = int(adapter.model.vae.config.sampling_rate)
        return adapter

    def _use_scheduler(self, name: str) -> None:  # one sampler only (no `scheduler` parameter)
        pass

    def _run(self, prompts, params, generator, negative_prompt, n_samples, hooks):
        window = self.model.transformer.config.sample_size * self.model.vae.hop_length
        if n_samples >= window:  # the half sample of margin below must fit in the window too
            raise ParameterError(
                "grid.duration_s",
                params["duration_s"],
                f"{self.weights} {self.card.id} generates windows of {window / self.sample_rate_hz:.2f} s at most",
            )
        out = self.model(
            prompt=prompts,
            audio_start_in_s=0.0,
            # The pipeline cuts the window at int(end × rate); half a sample of margin gives exactly n_samples.
            audio_end_in_s=(n_samples + 0.5) / self.sample_rate_hz,
            num_inference_steps=params["steps"],
            guidance_scale=params["guidance_scale"],
            negative_prompt=self._negative(prompts, negative_prompt),
            num_waveforms_per_prompt=params["batch_size"],
            generator=generator,
            output_type="pt",
        )
        return out.audios
