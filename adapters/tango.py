"""`tango`, `tango2`: Tango (declare-lab) on diffusers components, with the one denoising loop it needs.

Tango is not a diffusers pipeline: its code (declare-lab/tango ``models.py`` ``AudioDiffusion.inference``,
``tango.py``) encodes the prompt with FLAN-T5-large, denoises with a diffusers ``UNet2DConditionModel``
and decodes with AudioLDM's VAE and HiFi-GAN. Here those are diffusers/transformers components
(``AutoencoderKL``, ``SpeechT5HifiGan``), and the loop of ``AudioDiffusion.inference`` is written once,
in ``_loop.LoopAdapter._run``, shared with Make-An-Audio. Keep it in sync with that function.

`pretrained` reads the published layout (``declare-lab/tango-full``, ``declare-lab/tango2-full``)::

    main_config.json        AudioDiffusion's arguments (text encoder name, scheduler name, …)
    pytorch_model_main.bin  AudioDiffusion's state dict: unet.*, text_encoder.*
    vae_config.json         AudioLDM AutoencoderKL's arguments (ddconfig, embed_dim, scale_factor)
    pytorch_model_vae.bin   its state dict in AudioLDM's names, with the vocoder under vocoder.*

and maps it onto the diffusers components (the VAE with diffusers' own LDM→diffusers key conversion).
The UNet and T5 configs are not in that folder (Tango takes them from its code repo and the hub); the
published values are used unless the folder has ``unet/config.json`` or ``text_encoder/config.json``, and
the tokenizer is the folder's ``tokenizer/`` or ``google/flan-t5-large``'s. (The tests describe tiny
models with those optional files.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import torch

from t2a_ray.adapters import _components as C
from t2a_ray.adapters import _text
from t2a_ray.adapters._diffusers import local_folder, plain
from t2a_ray.adapters._loop import LoopAdapter
from t2a_ray.adapters.cards import TANGO, TANGO2

HIFIGAN_16K_64 = dict(  # declare-lab/tango audioldm/hifigan/utilities.py
    upsample_rates=[5, 4, 2, 2, 2],
    upsample_kernel_sizes=[16, 16, 8, 4, 4],
    upsample_initial_channel=1024,
    resblock_kernel_sizes=[3, 7, 11],
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    model_in_dim=64,
    sampling_rate=16000,
)


def unet_config(size: str) -> dict:
    """declare-lab/tango configs/diffusion_model_config.json (the tiny one keeps its block pattern)."""
    if size == "full":
        return dict(
            sample_size=[32, 2],
            in_channels=8,
            out_channels=8,
            block_out_channels=[320, 640, 1280, 1280],
            down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
            layers_per_block=2,
            attention_head_dim=[5, 10, 20, 20],
            cross_attention_dim=1024,
            use_linear_projection=True,
            upcast_attention=True,
        )
    return dict(
        sample_size=[32, 2],
        in_channels=4,
        out_channels=4,
        block_out_channels=[16, 32],
        down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
        layers_per_block=1,
        attention_head_dim=[2, 2],
        cross_attention_dim=C.t5_dim(size, "flan-t5-large"),
        use_linear_projection=True,
        upcast_attention=True,
        norm_num_groups=8,
    )


def scheduler():
    """Tango trains and samples with stabilityai/stable-diffusion-2-1's noise schedule (its
    main_config.json `scheduler_name`), loaded into a DDPMScheduler (tango.py)."""
    from diffusers import DDPMScheduler

    with plain():
        return DDPMScheduler(
            num_train_timesteps=1000,
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            prediction_type="v_prediction",
            steps_offset=1,
            clip_sample=False,
        )


class TangoAdapter(LoopAdapter):
    card = TANGO
    phase_modules = {
        "denoise": ("unet",),
        "decode": ("vae.post_quant_conv", "vae.decoder"),
        "vocoder": ("vocoder",),
    }

    # -- building --------------------------------------------------------------------------------

    @classmethod
    def _build(cls, size, options):
        from diffusers import UNet2DConditionModel

        return _model(
            tokenizer=_text.t5_tokenizer(512 if size == "full" else C.TINY_TEXT_TOKENS),
            text_encoder=C.t5_encoder(size, "flan-t5-large"),
            unet=UNet2DConditionModel(**unet_config(size)),
            vae=C.audioldm_vae(size),
            vocoder=C.hifigan_16k(size),
            scheduler=scheduler(),
        )

    @classmethod
    def _load_pretrained(cls, repo, revision, device, dtype, options):
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
        from transformers import (
            AutoTokenizer,
            SpeechT5HifiGan,
            SpeechT5HifiGanConfig,
            T5Config,
            T5EncoderModel,
        )

        folder, loaded = local_folder(repo, revision, _download)
        main_config = json.loads((folder / "main_config.json").read_text())
        main = _state_dict(folder, "pytorch_model_main")
        # 1. UNet and text encoder, from AudioDiffusion's state dict
        unet = UNet2DConditionModel(**_json_or(folder / "unet" / "config.json", unet_config("full")))
        unet.load_state_dict(_strip(main, "unet."))
        t5_config = folder / "text_encoder" / "config.json"
        text_encoder = T5EncoderModel(
            T5Config.from_json_file(t5_config)
            if t5_config.is_file()
            else T5Config(vocab_size=32128, **C.T5_FULL["flan-t5-large"])
        )
        text_encoder.load_state_dict(_strip(main, "text_encoder."), strict=False)  # tied copy may be absent
        tokenizer_dir = folder / "tokenizer"
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_dir if tokenizer_dir.is_dir() else main_config["text_encoder_name"]
        )
        # 2. AudioLDM's VAE and HiFi-GAN, from AudioLDM's names
        vae_args = json.loads((folder / "vae_config.json").read_text())
        dd = vae_args["ddconfig"]
        vae = AutoencoderKL(
            in_channels=dd["in_channels"],
            out_channels=dd["out_ch"],
            latent_channels=dd["z_channels"],
            block_out_channels=[dd["ch"] * m for m in dd["ch_mult"]],
            layers_per_block=dd["num_res_blocks"],
            down_block_types=["DownEncoderBlock2D"] * len(dd["ch_mult"]),
            up_block_types=["UpDecoderBlock2D"] * len(dd["ch_mult"]),
            norm_num_groups=dd.get("norm_num_groups", 32),
            scaling_factor=float(vae_args.get("scale_factor", 1.0)),
        )
        vae_sd = _state_dict(folder, "pytorch_model_vae")
        ldm_vae = {k: v for k, v in vae_sd.items() if not k.startswith("vocoder.")}
        vae.load_state_dict(convert_ldm_vae_checkpoint(ldm_vae, dict(vae.config)))
        vocoder = SpeechT5HifiGan(
            SpeechT5HifiGanConfig(
                **{**HIFIGAN_16K_64, **vae_args.get("vocoder_config", {})}, normalize_before=False
            )
        )
        vocoder.load_state_dict(_hifigan_to_transformers(_strip(vae_sd, "vocoder."), vocoder))
        sched_config = folder / "scheduler" / "scheduler_config.json"
        sched = scheduler()
        if sched_config.is_file():
            with plain():
                sched = type(sched).from_config(json.loads(sched_config.read_text()))
        model = _model(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            unet=unet,
            vae=vae,
            vocoder=vocoder,
            scheduler=sched,
        )
        for module in (text_encoder, unet, vae, vocoder):
            module.to(device=device, dtype=dtype)
        return cls._finish(model, device, dtype), loaded

    # -- generation (the loop is _loop.LoopAdapter._run; these are Tango's parts of it) ----------

    def _encode(self, texts, like=None):
        """FLAN-T5 states and mask (AudioDiffusion.encode_text; the unconditional side is padded to the
        prompts' length, as in encode_text_classifier_free)."""
        tok = self.model.tokenizer
        if like is None:
            batch = tok(
                texts, max_length=tok.model_max_length, padding=True, truncation=True, return_tensors="pt"
            )
        else:
            batch = tok(
                texts, max_length=like[0].shape[1], padding="max_length", truncation=True, return_tensors="pt"
            )
        batch = batch.to(self.torch_device)
        states = self.model.text_encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
        return states, batch.attention_mask == 1

    def _repeat(self, cond, n):
        return tuple(x.repeat_interleave(n, 0) for x in cond)

    def _concat(self, uncond, cond):
        return tuple(torch.cat([u, c]) for u, c in zip(uncond, cond, strict=True))

    def _latent_shape(self, n_samples, batch):
        """(B, C, frames / f, mels / f): Tango fixes 1024 frames (10.24 s); here frames cover the request."""
        m = self.model
        f = 2 ** (len(m.vae.config.block_out_channels) - 1)
        frames = math.ceil(math.ceil(n_samples / math.prod(m.vocoder.config.upsample_rates)) / f) * f
        return (batch, m.unet.config.in_channels, frames // f, m.vocoder.config.model_in_dim // f)

    def _denoise(self, latents, t, cond):
        states, mask = cond
        return self.model.unet(latents, t, encoder_hidden_states=states, encoder_attention_mask=mask).sample

    def _decode(self, latents):
        """vae.decode_first_stage: the mel spectrogram (B, frames, mels)."""
        return self.model.vae.decode(latents / self.model.vae.config.scaling_factor).sample.squeeze(1)

    def _vocode(self, mel):
        return self.model.vocoder(mel)


class Tango2Adapter(TangoAdapter):
    card = TANGO2


def _download(repo: str, revision: str | None) -> str:
    """The files Tango's loader reads (its repos also hold the training-time STFT, not needed here)."""
    from huggingface_hub import snapshot_download

    patterns = [
        "*.json",
        "pytorch_model_main.*",
        "pytorch_model_vae.*",
        "unet/*",
        "text_encoder/*",
        "tokenizer/*",
        "scheduler/*",
    ]
    return snapshot_download(repo, revision=revision, allow_patterns=patterns)


def _model(**parts) -> SimpleNamespace:
    model = SimpleNamespace(**parts)
    model.scheduler_config = dict(parts["scheduler"].config)
    return model


def _json_or(path: Path, default: dict) -> dict:
    if not path.is_file():
        return default
    config = json.loads(path.read_text())
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _state_dict(folder: Path, stem: str) -> dict[str, torch.Tensor]:
    """`stem`.safetensors if published, else `stem`.bin read with weights_only (tensors, no code)."""
    if (folder / f"{stem}.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(folder / f"{stem}.safetensors")
    return torch.load(folder / f"{stem}.bin", map_location="cpu", weights_only=True)


def _strip(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _hifigan_to_transformers(state: dict, vocoder) -> dict:
    """AudioLDM's HiFi-GAN names (ups.N) → SpeechT5HifiGan's (upsampler.N), as diffusers'
    convert_original_audioldm_to_diffusers.py does; mean/scale are unused (normalize_before False)."""
    out = {k.replace("ups.", "upsampler.", 1) if k.startswith("ups.") else k: v for k, v in state.items()}
    out.setdefault("mean", torch.zeros(vocoder.config.model_in_dim))
    out.setdefault("scale", torch.ones(vocoder.config.model_in_dim))
    return out
