"""Building blocks several models share, at full size (`random`) and tiny (`tiny`, tests and the demo).

Call these inside ``_diffusers.building(device, dtype)``: modules are allocated where they will live.
Full-size figures, with their sources:

* CLAP text branch (RoBERTa-base, 512-d projection): transformers' ``ClapTextConfig`` defaults, which are
  ``laion/clap-htsat-unfused``'s, the text encoder of AudioLDM, AudioLDM 2 and MusicLDM (diffusers'
  ``scripts/convert_original_audioldm*_to_diffusers.py`` load that config). 125.3 M parameters.
* CLAP audio branch (HTSAT): ``ClapAudioConfig`` defaults (HTSAT-tiny, AudioLDM 2); MusicLDM's HTSAT-base
  overrides (``patch_embeds_hidden_size`` 128, ``hidden_size`` 1024, ``depths`` [2, 2, 12, 2]) are from
  ``scripts/convert_original_musicldm_to_diffusers.py``.
* T5 encoders: t5-base (Stable Audio Open's conditioner, ``model_config.json``), FLAN-T5-large (AudioLDM 2,
  Tango: ``google/flan-t5-large``), T5-v1.1-large (Make-An-Audio 2): published HF configs.
* GPT-2 base (AudioLDM 2's language model): ``GPT2Config`` defaults = ``gpt2``.
* AudioLDM's mel VAE (ch 128 × [1, 2, 4], 8 latent channels, 2 res-blocks) and 16 kHz HiFi-GAN (upsample
  [5, 4, 2, 2, 2], kernels [16, 16, 8, 4, 4], 1024 initial channels, 64 mels): ``DEFAULT_CONFIG`` of
  ``scripts/convert_original_audioldm_to_diffusers.py``; the same VAE and vocoder serve AudioLDM 2
  (``haoheliu/AudioLDM2 audioldm2/utils.py``), MusicLDM and Tango (``audioldm/hifigan/utilities.py``
  HIFIGAN_16K_64 in declare-lab/tango).
"""

from __future__ import annotations

import math

# The tiny text sizes are CLAP's (`adapters/clap.py`, which the quality scorer uses too), so that every
# tiny tokenizer fits every tiny text encoder.
from t2a_ray.adapters.clap import TINY_TEXT_TOKENS, TINY_VOCAB  # noqa: F401 — the adapters' tiny sizes

# Tiny sizes: small enough for tests and the demo on a CPU (test_adapters_tiny.py bounds their time).
TINY_MELS = 16  # mel bins of the tiny mel VAEs / vocoders (must be divisible by the tiny VAE's factor 2)


T5_FULL = {
    # google-t5/t5-base
    "t5-base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12, feed_forward_proj="relu"),
    # google/flan-t5-large
    "flan-t5-large": dict(
        d_model=1024,
        d_kv=64,
        d_ff=2816,
        num_layers=24,
        num_heads=16,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ),
    # google/t5-v1_1-large
    "t5-v1_1-large": dict(
        d_model=1024,
        d_kv=64,
        d_ff=2816,
        num_layers=24,
        num_heads=16,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ),
}


def t5_encoder(size: str, variant: str):
    from transformers import T5Config, T5EncoderModel

    if size == "full":
        config = T5Config(vocab_size=32128, **T5_FULL[variant])
    else:
        d_model = 32 if variant == "t5-base" else 64  # tiny stand-ins keep the larger/smaller relation
        config = T5Config(
            vocab_size=TINY_VOCAB,
            d_model=d_model,
            d_kv=8,
            d_ff=32,
            num_layers=2,
            num_heads=2,
            feed_forward_proj=T5_FULL[variant]["feed_forward_proj"],
        )
    return T5EncoderModel(config)


def t5_dim(size: str, variant: str) -> int:
    return T5_FULL[variant]["d_model"] if size == "full" else (32 if variant == "t5-base" else 64)


def gpt2_model(size: str):
    """GPT-2 with its LM head (tied to the input embedding, so no extra parameters): diffusers'
    AudioLDM 2 pipeline calls GenerationMixin helpers that transformers ≥ 4.50 keeps off the bare GPT2Model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = (
        GPT2Config()
        if size == "full"
        else GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=TINY_VOCAB, n_positions=128)
    )
    config.max_new_tokens = 8  # AudioLDM 2 generates 8 tokens (audioldm2 `sequence_gen_length`)
    return GPT2LMHeadModel(config)


def audioldm_vae(size: str, scaling_factor: float = 0.4110932946205139):
    """AudioLDM's mel VAE (scaling factor: cvssp/audioldm2's vae/config.json)."""
    from diffusers import AutoencoderKL

    if size == "full":
        return AutoencoderKL(
            in_channels=1,
            out_channels=1,
            down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3,
            block_out_channels=(128, 256, 512),
            latent_channels=8,
            layers_per_block=2,
            sample_size=256,
            scaling_factor=scaling_factor,
        )
    return AutoencoderKL(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=scaling_factor,
    )


def hifigan_16k(size: str):
    """AudioLDM's 16 kHz HiFi-GAN (hop 160 = 5·4·2·2·2; tiny keeps the hop, so the same rate)."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    if size == "full":
        config = SpeechT5HifiGanConfig(
            model_in_dim=64,
            sampling_rate=16000,
            upsample_initial_channel=1024,
            upsample_rates=[5, 4, 2, 2, 2],
            upsample_kernel_sizes=[16, 16, 8, 4, 4],
            resblock_kernel_sizes=[3, 7, 11],
            resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            normalize_before=False,
        )
    else:
        config = SpeechT5HifiGanConfig(
            model_in_dim=TINY_MELS,
            sampling_rate=16000,
            upsample_initial_channel=32,
            upsample_rates=[5, 4, 2, 2, 2],
            upsample_kernel_sizes=[10, 8, 4, 4, 4],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1]],
            normalize_before=False,
        )
    vocoder = SpeechT5HifiGan(config)
    slope = config.leaky_relu_slope  # Kaiming's gain, for the leaky ReLU before each convolution
    init_audible(vocoder, gain=math.sqrt(2.0 / (1.0 + slope**2)))
    return vocoder


# Scale of an untrained vocoder's last layer: its output noise has an RMS of this order for a mel of
# unit amplitude, well below the clipping of its final tanh.
UNTRAINED_VOCODER_RMS = 0.1


def init_audible(vocoder, *, gain: float) -> None:
    """Give an untrained vocoder (HiFi-GAN, BigVGAN: `resblocks` of `convs2`, a `conv_post` and the
    `config` they were built from) random weights that keep the signal's scale.

    Why: HiFi-GAN initialises its convolutions with N(0, 0.01) whatever their size (transformers'
    ``SpeechT5HifiGan`` keeps it as ``initializer_range``); trained weights are what make it audible.
    Untrained, each layer scales the signal by about 0.01·√fan-in, so the layers in a row shrink it by
    orders of magnitude: tiny models wrote WAVs of exact zeros, and every configuration scored the same.
    BigVGAN with PyTorch's default initialisation (gain 1/√3 per layer) shrank its noise below the
    constant offset its snake activations add: a nearly constant output.

    How: every 1-D convolution of `vocoder` draws its weights from N(0, gain² / fan-in) — fan-in the inputs
    one output sums (in_channels × kernel / stride for the transposed convolutions that upsample), `gain` the
    activation's Kaiming gain — so each layer keeps the signal's variance; the last convolution of each
    residual branch (`convs2`) is scaled by 1/√(the branches one signal passes through: upsamplings ×
    dilations per block), as GPT-2 scales its residual projections, so the residual sums do not grow into a
    saturated tanh; `conv_post` is scaled by UNTRAINED_VOCODER_RMS. Biases are zero. Pretrained weights
    replace all of this.
    """
    import torch

    config = vocoder.config
    residual_ends = {id(conv) for block in vocoder.resblocks for conv in block.convs2}
    in_series = len(config.upsample_rates) * len(config.resblock_dilation_sizes[0])
    for conv in vocoder.modules():
        if isinstance(conv, torch.nn.ConvTranspose1d):
            fan_in = conv.in_channels * conv.kernel_size[0] / conv.stride[0]
        elif isinstance(conv, torch.nn.Conv1d):
            fan_in = conv.in_channels // conv.groups * conv.kernel_size[0]
        else:
            continue
        std = gain / math.sqrt(fan_in)
        if id(conv) in residual_ends:
            std /= math.sqrt(in_series)
        if conv is vocoder.conv_post:
            std *= UNTRAINED_VOCODER_RMS
        with torch.no_grad():
            conv.weight.normal_(0.0, std)
            if conv.bias is not None:
                conv.bias.zero_()


def ldm_ddim_scheduler(beta_start: float, beta_end: float, prediction_type: str = "epsilon"):
    """The DDIM scheduler of an LDM trained with a (sqrt-)linear beta schedule of 1000 steps."""
    from diffusers import DDIMScheduler

    from t2a_ray.adapters._diffusers import plain  # torch, as diffusers: imported where a model is built

    with plain():
        return DDIMScheduler(
            num_train_timesteps=1000,
            beta_start=beta_start,
            beta_end=beta_end,
            beta_schedule="scaled_linear",
            steps_offset=1,
            clip_sample=False,
            set_alpha_to_one=False,
            prediction_type=prediction_type,
        )
