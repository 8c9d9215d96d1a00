"""`make-an-audio`: Make-An-Audio (Text-to-Audio/Make-An-Audio), re-implemented on diffusers blocks.

Source of every figure: ``configs/text_to_audio/txt2audio_args.yaml`` (UNet, VAE, schedule),
``configs/text_to_audio/bigvgan_args.yaml`` (vocoder), ``ldm/modules/encoders/modules.py``
(``FrozenCLAPEmbedder``: BERT-base + 1024-d projection, 77 tokens), ``gen_wav.py`` (sampling).

* UNet: LDM ``UNetModel`` with model_channels 320, channel_mult [1, 2], attention at both levels, 2
  res-blocks, 8 heads, transformer depth 1, context 1024, 4 in/out channels — a diffusers
  ``UNet2DConditionModel`` with two CrossAttn blocks is the same network, layer for layer.
* VAE: LDM ``AutoencoderKL`` ch 128 × [1, 2, 2, 4], 2 res-blocks, z 4, on (1, 80 mels, frames) images with
  attention at resolutions 156 and 78 of 624, i.e. in the two lowest levels: diffusers ``AutoencoderKL``
  with ``AttnDownEncoderBlock2D``/``AttnUpDecoderBlock2D`` there.
* Latents (4, 80 / 8, frames / 8); ``gen_wav.py`` rounds the latent width up to a multiple of 4, so
  frames to a multiple of 32 (10 s → 640 frames → 10.24 s, cut to 10 s).
"""

from __future__ import annotations

from t2a_ray.adapters import _bigvgan
from t2a_ray.adapters._maa import (
    ClapTextEncoder,
    MakeAnAudioBase,
    OriginalCodeAdapter,
    bert_tokenizer,
    ldm_scheduler,
    parts,
)
from t2a_ray.adapters.cards import MAKE_AN_AUDIO


def unet(size: str):
    from diffusers import UNet2DConditionModel

    full = size == "full"
    return UNet2DConditionModel(
        in_channels=4,
        out_channels=4,
        block_out_channels=(320, 640) if full else (16, 32),
        down_block_types=("CrossAttnDownBlock2D",) * 2,
        up_block_types=("CrossAttnUpBlock2D",) * 2,
        layers_per_block=2 if full else 1,
        cross_attention_dim=1024 if full else 16,
        attention_head_dim=8 if full else 2,
        norm_num_groups=32 if full else 8,
    )


def vae(size: str):
    from diffusers import AutoencoderKL

    if size == "full":
        channels, down, up = (
            (128, 256, 256, 512),
            ("DownEncoderBlock2D",) * 2 + ("AttnDownEncoderBlock2D",) * 2,
            ("AttnUpDecoderBlock2D",) * 2 + ("UpDecoderBlock2D",) * 2,
        )
        return AutoencoderKL(
            in_channels=1,
            out_channels=1,
            block_out_channels=channels,
            down_block_types=down,
            up_block_types=up,
            latent_channels=4,
            layers_per_block=2,
            scaling_factor=1.0,
        )
    return AutoencoderKL(
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "AttnDownEncoderBlock2D"),
        up_block_types=("AttnUpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        scaling_factor=1.0,
    )


class MakeAnAudioOriginal(OriginalCodeAdapter):
    """`pretrained`: the published checkpoint through the original code (``_maa.OriginalCodeAdapter``)."""

    card = MAKE_AN_AUDIO
    checkout_name = "github.com/Text-to-Audio/Make-An-Audio"
    vocoder_module = "vocoder.bigvgan.models"
    default_ckpt = "maa1_full.ckpt"
    default_config = "configs/text_to_audio/txt2audio_args.yaml"

    def _original_shape(self, n_samples):
        """gen_wav.py: (embed_dim, 10, latent_width), latent width a multiple of 4 (8 mel frames each)."""
        width = -(-n_samples // (256 * 8 * 4)) * 4
        return [self.model.ldm.first_stage_model.embed_dim, 10, width]


class MakeAnAudioAdapter(MakeAnAudioBase):
    """`random`/`tiny`: the re-implementation; `pretrained` is :class:`MakeAnAudioOriginal`."""

    card = MAKE_AN_AUDIO
    original_code = MakeAnAudioOriginal

    @classmethod
    def _build(cls, size, options):
        full = size == "full"
        bigvgan = _bigvgan.BigVGANConfig() if full else _bigvgan.TINY_BIGVGAN
        return parts(
            tokenizer=bert_tokenizer(size),
            text_encoder=ClapTextEncoder(size, 1024 if full else 16),
            denoiser=unet(size),
            vae=vae(size),
            vocoder=_bigvgan.BigVGAN(bigvgan),
            scheduler=ldm_scheduler(),
            hop_length=bigvgan.hop_length,
            mels=bigvgan.num_mels,
        )

    # -- the shared loop's parts (_loop.LoopAdapter._run) ------------------------------------------

    def _encode(self, texts, like=None):
        tok = self.model.tokenizer
        ids = tok(
            texts, truncation=True, max_length=tok.model_max_length, padding="max_length", return_tensors="pt"
        ).input_ids
        return self.model.text_encoder(ids.to(self.torch_device))

    def _latent_shape(self, n_samples, batch):
        f = 2 ** (len(self.model.vae.config.block_out_channels) - 1)
        frames = self._frames(n_samples, 4 * f)
        return (batch, self.model.vae.config.latent_channels, self.model.mels // f, frames // f)

    def _denoise(self, latents, t, cond):
        return self.model.denoiser(latents, t, encoder_hidden_states=cond).sample

    def _decode(self, latents):
        """decode_first_stage: (B, 1, mels, frames) → the vocoder's (B, mels, frames)."""
        return self.model.vae.decode(latents / self.model.vae.config.scaling_factor).sample.squeeze(1)

    def _vocode(self, mel):
        return self.model.vocoder(mel)
