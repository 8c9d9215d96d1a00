"""The one denoising loop t2a-ray writes itself, for the models that have no diffusers pipeline.

Tango (declare-lab ``models.py`` ``AudioDiffusion.inference``) and Make-An-Audio 1/2 (an LDM
``DDIMSampler.sample`` driven by ``gen_wav.py``) all do the same thing: encode the prompt and an
unconditional (or negative) prompt, denoise latents with classifier-free guidance, decode the latents to a
mel spectrogram and vocode it. This is that loop, written once; each model supplies its encoders, denoiser,
latent shape and decoders. **It is a copy of those loops: keep it in sync with them.** The pipelines that
diffusers provides (AudioLDM, AudioLDM 2, MusicLDM, Stable Audio) are never looped here.
"""

from __future__ import annotations

import abc
import inspect
from typing import Any

import torch

from t2a_ray.adapters._diffusers import TorchAdapter, make_scheduler


class LoopAdapter(TorchAdapter):
    """A model whose generation loop is ``_run`` below. ``self.model`` holds its parts, among them
    ``scheduler`` and ``scheduler_config`` (the model's own noise schedule).

    Abstract hooks: ``_encode``, ``_latent_shape``, ``_denoise``, ``_decode``, ``_vocode`` (the
    model's parts of the loop), with ``_build`` and ``_load_pretrained`` (``TorchAdapter``).
    Optional: ``_repeat`` and ``_concat`` where the conditioning is not one tensor.
    """

    def _use_scheduler(self, name: str) -> None:
        self.model.scheduler = make_scheduler(name, self.model.scheduler_config)

    # -- what each model supplies -----------------------------------------------------------------

    @abc.abstractmethod
    def _encode(self, texts: list[str], like: Any = None) -> Any:
        """Text conditioning for `texts`. `like` is the prompts' conditioning when encoding the
        unconditional side (to pad it to the same length)."""

    def _repeat(self, cond: Any, n: int) -> Any:
        """Each prompt's conditioning repeated `n` times (batch_size waveforms per prompt)."""
        return cond.repeat_interleave(n, 0)

    def _concat(self, uncond: Any, cond: Any) -> Any:
        return torch.cat([uncond, cond])

    @abc.abstractmethod
    def _latent_shape(self, n_samples: int, batch: int) -> tuple[int, ...]:
        """The initial noise's shape for `batch` waveforms of at least `n_samples` samples."""

    @abc.abstractmethod
    def _denoise(self, latents: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        """The denoiser's prediction at timestep `t`."""

    @abc.abstractmethod
    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents → the vocoder's input."""

    @abc.abstractmethod
    def _vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel spectrogram → waveforms (batch, samples)."""

    # -- the loop ---------------------------------------------------------------------------------

    def _run(self, prompts, params, generator, negative_prompt, n_samples, hooks):
        from diffusers.utils.torch_utils import randn_tensor

        scheduler, per_prompt = self.model.scheduler, params["batch_size"]
        guidance = params["guidance_scale"]
        cfg = guidance > 1.0
        # 1. Encode the prompts, and the negative prompt (or "") for classifier-free guidance
        cond = self._encode(prompts)
        if cfg:
            uncond = self._encode([negative_prompt or ""] * len(prompts), like=cond)
            cond = self._concat(self._repeat(uncond, per_prompt), self._repeat(cond, per_prompt))
        else:
            cond = self._repeat(cond, per_prompt)
        # 2. Timesteps and the initial noise
        scheduler.set_timesteps(params["steps"], device=self.torch_device)
        shape = self._latent_shape(n_samples, len(prompts) * per_prompt)
        latents = randn_tensor(shape, generator=generator, device=self.torch_device, dtype=self.torch_dtype)
        latents = latents * scheduler.init_noise_sigma
        step_kwargs = (
            {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
        )
        # 3. Denoise, with classifier-free guidance
        for t in scheduler.timesteps:
            model_input = torch.cat([latents] * 2) if cfg else latents
            model_input = scheduler.scale_model_input(model_input, t)
            noise_pred = self._denoise(model_input, t, cond)
            if cfg:
                uncond_pred, cond_pred = noise_pred.chunk(2)
                noise_pred = uncond_pred + guidance * (cond_pred - uncond_pred)
            latents = scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
        # 4. Decode to a mel spectrogram, then vocode
        return self._vocode(self._decode(latents))
