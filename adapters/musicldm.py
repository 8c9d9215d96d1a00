"""`musicldm`: MusicLDM (ucsd-reach/musicldm) through diffusers' MusicLDMPipeline."""

from __future__ import annotations

from t2a_ray.adapters import _components as C
from t2a_ray.adapters import _text, clap
from t2a_ray.adapters._diffusers import MelPipelineAdapter
from t2a_ray.adapters.audioldm import audioldm_unet
from t2a_ray.adapters.cards import MUSICLDM


class MusicLDMAdapter(MelPipelineAdapter):
    card = MUSICLDM
    pipeline_class = "MusicLDMPipeline"

    @classmethod
    def _finish(cls, model, device, dtype):
        model = super()._finish(model, device, dtype)
        _text_features_as_tensor(model.text_encoder)
        return model

    @classmethod
    def _components(cls, size, options):
        full = size == "full"
        unet = audioldm_unet(
            size
        )  # AudioLDM-S's UNet (convert_original_musicldm_to_diffusers.py DEFAULT_CONFIG)
        if full:
            unet.register_to_config(sample_size=256)  # image_size 1024 / VAE factor 4
        return dict(
            vae=C.audioldm_vae(size),
            text_encoder=clap.clap_model(size, audio="htsat-base"),
            tokenizer=_text.roberta_tokenizer(512 if full else C.TINY_TEXT_TOKENS),
            feature_extractor=clap.clap_feature_extractor(),
            unet=unet,
            scheduler=C.ldm_ddim_scheduler(0.0015, 0.0195),
            vocoder=C.hifigan_16k(size),
        )


def _text_features_as_tensor(model) -> None:
    """transformers 5 returns a ModelOutput from ClapModel.get_text_features (the features in
    `pooler_output`); diffusers' MusicLDMPipeline, deprecated since 0.33, still expects the tensor. Shim the
    one instance, so saved pipelines keep the plain ClapModel class."""
    import torch

    original = model.get_text_features

    def get_text_features(*args, **kwargs):
        out = original(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    model.get_text_features = get_text_features
