"""`audioldm2`, `audioldm2-large`, `audioldm2-music`: AudioLDM 2 through diffusers' AudioLDM2Pipeline."""

from __future__ import annotations

import json
from typing import ClassVar

from t2a_ray.adapters import _components as C
from t2a_ray.adapters import _text, clap
from t2a_ray.adapters._diffusers import MelPipelineAdapter
from t2a_ray.adapters.cards import AUDIOLDM2, AUDIOLDM2_LARGE, AUDIOLDM2_MUSIC


def audioldm2_unet(size: str, large: bool):
    """AudioLDM 2's UNet: per attention block, one self-attention transformer, then cross-attention to the
    GPT-2 tokens (768-d) and to the FLAN-T5 states (1024-d); the large checkpoint adds a fourth
    (self-attention) transformer and doubles the depth of each (haoheliu/AudioLDM2 audioldm2/utils.py)."""
    from diffusers import AudioLDM2UNet2DConditionModel

    full = size == "full"
    channels = (128, 256, 384, 640) if full else (16, 32)
    contexts = [None, 768, 1024] if full else [None, 16, C.t5_dim(size, "flan-t5-large")]
    if large:
        contexts = [*contexts, None]
    return AudioLDM2UNet2DConditionModel(
        sample_size=256 if full else 32,
        in_channels=8 if full else 4,
        out_channels=8 if full else 4,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (len(channels) - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (len(channels) - 1) + ("UpBlock2D",),
        block_out_channels=channels,
        layers_per_block=2 if full else 1,
        cross_attention_dim=[contexts] * len(channels),
        transformer_layers_per_block=2 if large else 1,
        attention_head_dim=8 if full else 2,
        norm_num_groups=32 if full else 8,
    )


class AudioLDM2Adapter(MelPipelineAdapter):
    card = AUDIOLDM2
    pipeline_class = "AudioLDM2Pipeline"
    large: ClassVar[bool] = False

    @classmethod
    def _components(cls, size, options):
        from diffusers import AudioLDM2ProjectionModel

        full = size == "full"
        text_encoder = clap.clap_model(size)
        language_model = C.gpt2_model(size)
        return dict(
            vae=C.audioldm_vae(size),
            text_encoder=text_encoder,
            text_encoder_2=C.t5_encoder(size, "flan-t5-large"),
            projection_model=AudioLDM2ProjectionModel(
                text_encoder_dim=text_encoder.config.projection_dim,
                text_encoder_1_dim=C.t5_dim(size, "flan-t5-large"),
                langauge_model_dim=language_model.config.n_embd,
            ),
            language_model=language_model,
            tokenizer=_text.roberta_tokenizer(512 if full else C.TINY_TEXT_TOKENS),
            # FLAN-T5 reads 128 tokens: hard-coded in the original (convert_original_audioldm2_to_diffusers.py)
            tokenizer_2=_text.t5_tokenizer(128 if full else C.TINY_TEXT_TOKENS),
            feature_extractor=clap.clap_feature_extractor(),
            unet=audioldm2_unet(size, cls.large),
            scheduler=C.ldm_ddim_scheduler(0.0015, 0.0195),
            vocoder=C.hifigan_16k(size),
        )

    @classmethod
    def _pretrained_overrides(cls, folder, dtype):
        """The published repos name `GPT2Model` as the language model; the pipeline needs GenerationMixin
        helpers that transformers ≥ 4.50 keeps off it, so load the same weights into GPT2LMHeadModel
        (its head is tied to the embedding: no new parameters)."""
        index = json.loads((folder / "model_index.json").read_text())
        if index.get("language_model", [None, None])[1] != "GPT2Model":
            return {}
        from transformers import GPT2LMHeadModel

        return {"language_model": GPT2LMHeadModel.from_pretrained(folder / "language_model", dtype=dtype)}


class AudioLDM2LargeAdapter(AudioLDM2Adapter):
    card = AUDIOLDM2_LARGE
    large = True


class AudioLDM2MusicAdapter(AudioLDM2Adapter):
    card = AUDIOLDM2_MUSIC
