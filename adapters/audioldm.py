"""`audioldm`: AudioLDM-S (cvssp/audioldm-s-full-v2) through diffusers' AudioLDMPipeline."""

from __future__ import annotations

from t2a_ray.adapters import _components as C
from t2a_ray.adapters import _text, clap
from t2a_ray.adapters._diffusers import MelPipelineAdapter
from t2a_ray.adapters.cards import AUDIOLDM


def audioldm_unet(size: str):
    """AudioLDM-S's UNet: text enters as a FiLM class embedding (CLAP 512-d), attention is self-attention
    at the three lower resolutions (cross_attention_dim = the block widths; no encoder states)."""
    from diffusers import UNet2DConditionModel

    full = size == "full"
    channels = (128, 256, 384, 640) if full else (16, 32)
    return UNet2DConditionModel(
        sample_size=128 if full else 32,
        in_channels=8 if full else 4,
        out_channels=8 if full else 4,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (len(channels) - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (len(channels) - 1) + ("UpBlock2D",),
        block_out_channels=channels,
        layers_per_block=2 if full else 1,
        cross_attention_dim=channels,
        attention_head_dim=8 if full else 2,
        class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=512 if full else 16,
        class_embeddings_concat=True,
        norm_num_groups=32 if full else 8,
    )


class AudioLDMAdapter(MelPipelineAdapter):
    card = AUDIOLDM
    pipeline_class = "AudioLDMPipeline"

    @classmethod
    def _components(cls, size, options):
        full = size == "full"
        return dict(
            vae=C.audioldm_vae(size),
            text_encoder=clap.clap_text_model(size),
            tokenizer=_text.roberta_tokenizer(512 if full else C.TINY_TEXT_TOKENS),
            unet=audioldm_unet(size),
            scheduler=C.ldm_ddim_scheduler(0.0015, 0.0195),
            vocoder=C.hifigan_16k(size),
        )
