"""The catalog: one ModelCard per model, pure data (no torch), and where each is implemented.

Figures come from the public model configs and conversion scripts named in each card's notes; the
full-size parameter counts are checked against the published ones in tests/adapters/test_adapters_fullsize.py.
"""

from __future__ import annotations

import math

from t2a_ray.adapters.base import ModelCard, ModeLimits, ParamSpec
from t2a_ray.adapters.runtime_axes import runtime_params


def steps_param(default: int) -> ParamSpec:
    return ParamSpec("steps", int, default, "denoising steps", minimum=1, maximum=1000)


def guidance_param(default: float) -> ParamSpec:
    return ParamSpec(
        "guidance_scale",
        float,
        default,
        "classifier-free guidance scale (0 or 1: off)",
        minimum=0.0,
        maximum=100.0,
    )


def duration_param(default: float, low: float, high: float) -> ParamSpec:
    return ParamSpec(
        "duration_s", float, default, "length of the generated audio", unit="s", minimum=low, maximum=high
    )


def scheduler_param(default: str) -> ParamSpec:
    return ParamSpec(
        "scheduler",
        str,
        default,
        "sampler (built from the model's own noise schedule)",
        choices=("ddim", "ddpm", "pndm", "dpmsolver++", "euler", "lms"),
    )


BATCH = ParamSpec("batch_size", int, 1, "waveforms generated per prompt in one call", minimum=1, maximum=256)


def denoiser_params(
    *, steps: int, guidance: float, scheduler: str | None, cache_hook: str, max_duration_s: float = 30.0
) -> tuple[ParamSpec, ...]:
    """A diffusion model's parameters, in the order every such card lists them: its steps and guidance
    defaults, a duration of 0.1 s to `max_duration_s` (default 10 s), the batch, the sampler where the
    card offers a choice (`scheduler`: its default; None: the pipeline's own, fixed), then the runtime
    axes of its denoiser (`cache_hook`: the step-cache hook, `runtime_axes.runtime_params`)."""
    return (
        steps_param(steps),
        guidance_param(guidance),
        duration_param(10.0, 0.1, max_duration_s),
        BATCH,
        *(() if scheduler is None else (scheduler_param(scheduler),)),
        *runtime_params(cache_hook),
    )


RANK_OPTION = {
    "rank_waveforms": "true: re-rank each prompt's batch with CLAP after the vocoder, as the diffusers pipeline "
    "does where librosa is installed (default false: environment-independent cost)",
}

LENGTH_NOTE = (
    "Returns round(duration_s × rate) samples; the model computes that length rounded up to its own grid "
    "({grid}) and the surplus is cut."
)

NOOP = ModelCard(
    id="noop",
    summary="Calibration adapter: sleeps steps × step_time_s, no math; can inject a failure",
    pipeline="t2a_ray calibration",
    repo=None,
    revision=None,
    sample_rate_hz=16_000,
    channels=1,
    params=(
        steps_param(10),
        guidance_param(1.0),
        duration_param(1.0, 0.1, 600.0),
        BATCH,
        ParamSpec(
            "step_time_s",
            float,
            0.005,
            "host time spent per denoising step",
            unit="s",
            minimum=0.0,
            maximum=60.0,
        ),
    ),
    weight_modes=("pretrained", "random", "tiny"),
    phases=("text_encoder", "denoise", "decode"),
    notes="Measures the orchestrator's own overhead; no model is loaded in any weight mode.",
    options={
        "fault": "none | error | oom | crash: what to inject",
        "fault_when": "mapping of grid values that selects the trials to fault, e.g. {steps: 25}",
        "fault_marker": "a file path: fault only while it does not exist (then create it), i.e. once",
        "load_time_s": "seconds `load` takes (default 0)",
    },
)

AUDIOLDM = ModelCard(
    id="audioldm",
    summary="AudioLDM-S full v2: CLAP (FiLM) → mel latent UNet → VAE → HiFi-GAN, 16 kHz mono (421 M parameters)",
    pipeline="diffusers.AudioLDMPipeline",
    repo="cvssp/audioldm-s-full-v2",
    revision=None,
    sample_rate_hz=16_000,
    channels=1,
    params=denoiser_params(steps=200, guidance=2.5, scheduler="ddim", cache_hook="unet"),
    text_max_tokens=512,
    notes=(
        "UNet 128×[1,2,3,5], 2 res-blocks, self-attention at the 3 lower resolutions, text as a 512-d CLAP "
        "embedding via FiLM (class_embed_type simple_projection, concatenated); VAE ch 128×[1,2,4], 8 latents, "
        "64 mels; HiFi-GAN hop 160; DDIM β 0.0015→0.0195 (diffusers scripts/convert_original_audioldm_to_diffusers.py "
        "DEFAULT_CONFIG). 421 M parameters published in the cvssp/audioldm-s-full-v2 model card. Steps default: "
        "the original AudioLDM CLI's 200. Trained on 10.24 s clips; the convolutional UNet takes any length, "
        "limited here to 30 s. " + LENGTH_NOTE.format(grid="4 mel frames = 40 ms")
    ),
)


def _audioldm2(model_id: str, repo: str, summary: str, extra: str) -> ModelCard:
    return ModelCard(
        id=model_id,
        summary=summary,
        pipeline="diffusers.AudioLDM2Pipeline",
        repo=repo,
        revision=None,
        sample_rate_hz=16_000,
        channels=1,
        params=denoiser_params(steps=200, guidance=3.5, scheduler="ddim", cache_hook="unet"),
        text_max_tokens=128,
        notes=(
            "CLAP (HTSAT-tiny + RoBERTa) and FLAN-T5-large encode the text; a projection and GPT-2 base generate "
            "8 'language of audio' tokens; the UNet 128×[1,2,3,5] cross-attends to the GPT-2 tokens (768-d) and "
            "the T5 states (1024-d); VAE and HiFi-GAN as AudioLDM (cvssp/audioldm2 unet/config.json, "
            "haoheliu/AudioLDM2 audioldm2/utils.py). "
            + extra
            + " Prompts: FLAN-T5 reads 128 tokens, CLAP 512. "
            + LENGTH_NOTE.format(grid="4 mel frames = 40 ms")
        ),
        options=RANK_OPTION,
    )


AUDIOLDM2 = _audioldm2(
    "audioldm2",
    "cvssp/audioldm2",
    "AudioLDM 2 (text-to-audio): CLAP + FLAN-T5 + GPT-2 → mel latent UNet, 16 kHz mono (1.1 B parameters)",
    "Transformer depth 1. Published: UNet 350 M, total 1.1 B (cvssp/audioldm2 model card).",
)
AUDIOLDM2_LARGE = _audioldm2(
    "audioldm2-large",
    "cvssp/audioldm2-large",
    "AudioLDM 2 large (text-to-audio): as audioldm2 with a deeper UNet, 16 kHz mono (1.5 B parameters)",
    "Transformer depth 2 and a fourth (self-attention) transformer per block: audioldm2/utils.py sets "
    "context_dim [768, 1024, None] and transformer_depth 2 for '-large-'. Published: UNet 750 M, total 1.5 B.",
)
AUDIOLDM2_MUSIC = _audioldm2(
    "audioldm2-music",
    "cvssp/audioldm2-music",
    "AudioLDM 2 music (text-to-music): the audioldm2 architecture trained on music, 16 kHz mono (1.1 B)",
    "Same architecture as audioldm2. Published: UNet 350 M, total 1.1 B (cvssp/audioldm2 model card).",
)

# Tiny stable-audio-open (adapters/stable_audio.py builds it from these): a DiT window of 256 latents over
# an Oobleck VAE that downsamples by 8 × 8 × 8, so one generation holds 256 × 512 samples at 44.1 kHz.
SAO_TINY_LATENTS = 256
SAO_TINY_STRIDES = (8, 8, 8)
SAO_RATE_HZ = 44_100
_SAO_TINY_HOP = math.prod(SAO_TINY_STRIDES)

STABLE_AUDIO_OPEN = ModelCard(
    id="stable-audio-open",
    summary="Stable Audio Open 1.0: T5-base → DiT (1.06 B) over Oobleck VAE latents, 44.1 kHz stereo",
    pipeline="diffusers.StableAudioPipeline",
    repo="stabilityai/stable-audio-open-1.0",
    revision=None,
    sample_rate_hz=SAO_RATE_HZ,
    channels=2,
    params=denoiser_params(steps=100, guidance=7.0, scheduler=None, max_duration_s=47.0, cache_hook="dit"),
    mode_limits={
        "tiny": ModeLimits(
            # one sample short of the window: the adapter asks the pipeline for half a sample more
            maximum={"duration_s": (SAO_TINY_LATENTS * _SAO_TINY_HOP - 1) / SAO_RATE_HZ},
            why=f"its window: {SAO_TINY_LATENTS} latents × {_SAO_TINY_HOP} samples at {SAO_RATE_HZ} Hz",
        )
    },
    text_max_tokens=128,
    notes=(
        "DiT 24 layers, 24 heads × 64, 12 KV heads, cross-attention 768, global conditioning 1536, 64 latent "
        "channels; Oobleck VAE 128 hidden × [1,2,4,8,16], strides [2,4,4,8,8] (hop 2048), stereo 44.1 kHz; T5-base "
        "(128 tokens); CosineDPMSolverMultistep, v-prediction (diffusers StableAudioDiTModel/AutoencoderOobleck "
        "defaults, scripts/convert_stable_audio.py). Gated repo: accept its licence on the hub first. Like the "
        "pipeline, every call denoises and decodes the full 1024-latent window (47.55 s) and cuts it to "
        "duration_s, so cost does not depend on duration_s. Phases: no vocoder (the VAE decodes to audio)."
    ),
    phases=("text_encoder", "denoise", "decode"),
)


def _tango(model_id: str, repo: str, summary: str, extra: str) -> ModelCard:
    return ModelCard(
        id=model_id,
        summary=summary,
        pipeline="t2a_ray loop over diffusers components (UNet2DConditionModel, AutoencoderKL, SpeechT5HifiGan)",
        repo=repo,
        revision=None,
        sample_rate_hz=16_000,
        channels=1,
        params=denoiser_params(steps=100, guidance=3.0, scheduler="ddpm", cache_hook="unet"),
        text_max_tokens=512,
        notes=(
            "FLAN-T5-large encoder (frozen) → UNet2DConditionModel (320, 640, 1280, 1280), 2 layers/block, heads "
            "[5, 10, 20, 20], cross-attention 1024, upcast attention, 8 latent channels → AudioLDM's VAE and "
            "HiFi-GAN (declare-lab/tango configs/diffusion_model_config.json, models.py, tango.py). Noise schedule "
            "of stabilityai/stable-diffusion-2-1 (scaled-linear 0.00085→0.012, v-prediction); sampler DDPM as "
            "in tango.py. `pretrained` reads the published layout (main_config.json, pytorch_model_main.bin, "
            "vae_config.json, pytorch_model_vae.bin) into those diffusers components; the tokenizer comes from "
            "the folder's tokenizer/ or google/flan-t5-large. The denoising loop is t2a_ray's (Tango has no "
            "diffusers pipeline), written once in adapters/tango.py. "
            + extra
            + " "
            + LENGTH_NOTE.format(grid="4 mel frames = 40 ms")
        ),
    )


TANGO = _tango(
    "tango",
    "declare-lab/tango-full",
    "Tango (full): FLAN-T5-large → latent UNet (866 M) → AudioLDM VAE + HiFi-GAN, 16 kHz mono",
    "Published: 866 M parameters for the diffusion UNet (Tango paper, Table 1); the frozen text encoder, VAE "
    "and vocoder come on top.",
)
TANGO2 = _tango(
    "tango2",
    "declare-lab/tango2-full",
    "Tango 2 (full, DPO-aligned Tango): same architecture and cost as tango, 16 kHz mono",
    "Tango 2 fine-tunes Tango with DPO on Audio-Alpaca; the architecture is unchanged.",
)

MUSICLDM = ModelCard(
    id="musicldm",
    summary="MusicLDM: CLAP (HTSAT-base) → mel latent UNet → VAE → HiFi-GAN, 16 kHz mono",
    pipeline="diffusers.MusicLDMPipeline",
    repo="ucsd-reach/musicldm",
    revision=None,
    sample_rate_hz=16_000,
    channels=1,
    params=denoiser_params(steps=200, guidance=2.0, scheduler="ddim", cache_hook="unet"),
    text_max_tokens=512,
    notes=(
        "AudioLDM-S's UNet (128×[1,2,3,5], FiLM 512), VAE and HiFi-GAN with a full CLAP model whose audio branch "
        "is HTSAT-base (diffusers scripts/convert_original_musicldm_to_diffusers.py). Defaults: diffusers "
        "MusicLDMPipeline (200 steps, guidance 2). " + LENGTH_NOTE.format(grid="4 mel frames = 40 ms")
    ),
    options=RANK_OPTION,
)

MAA_OPTIONS = {
    "ckpt": "pretrained only: the diffusion checkpoint (default: <checkout>/useful_ckpts/{ckpt})",
    "config": "pretrained only: the model YAML (default: <checkout>/{config})",
    "vocoder": "pretrained only: the BigVGAN folder (default: <checkout>/useful_ckpts/bigvgan)",
}

MAKE_AN_AUDIO = ModelCard(
    id="make-an-audio",
    summary="Make-An-Audio: CLAP text encoder → LDM UNet (320×[1,2]) over mel latents → BigVGAN, 16 kHz mono",
    pipeline="t2a_ray re-implementation on diffusers/torch blocks (pretrained: the original project's code)",
    repo=None,
    revision=None,
    sample_rate_hz=16_000,
    channels=1,
    params=denoiser_params(steps=100, guidance=3.0, scheduler="ddim", cache_hook="unet"),
    text_max_tokens=77,
    notes=(
        "random/tiny: a re-implementation on diffusers blocks — UNet 320×[1,2], attention at both levels, 2 "
        "res-blocks, 8 heads, depth 1, context 1024, 4 latent channels; VAE ch 128×[1,2,2,4] with attention at "
        "the two lowest resolutions, 80 mels; DDIM β 0.00085→0.012 (Text-to-Audio/Make-An-Audio configs/"
        "text_to_audio/txt2audio_args.yaml); CLAP text encoder = BERT-base + 1024-d projection, 77 tokens "
        "(ldm/modules/encoders/modules.py FrozenCLAPEmbedder); BigVGAN 80 mels, upsample [4,4,2,2,2,2], 1536 "
        "channels, snake-beta AMP blocks (configs/text_to_audio/bigvgan_args.yaml). pretrained: there is no "
        "pip-installable code, so `repo` must be a local checkout of github.com/Text-to-Audio/Make-An-Audio "
        "with its requirements installed and the published checkpoints downloaded; generation then runs "
        "through that project's own code (DDIM sampler). " + LENGTH_NOTE.format(grid="32 mel frames")
    ),
    options={
        k: v.format(ckpt="maa1_full.ckpt", config="configs/text_to_audio/txt2audio_args.yaml")
        for k, v in MAA_OPTIONS.items()
    },
)

MAKE_AN_AUDIO_2 = ModelCard(
    id="make-an-audio-2",
    summary="Make-An-Audio 2: CLAP + T5-large → concat-DiT over 1-D VAE latents → BigVGAN, 16 kHz mono",
    pipeline="t2a_ray re-implementation on torch blocks (pretrained: the original project's code)",
    repo=None,
    revision=None,
    sample_rate_hz=16_000,
    channels=1,
    params=denoiser_params(steps=100, guidance=3.0, scheduler="ddim", max_duration_s=27.0, cache_hook="dit"),
    text_max_tokens=77,
    notes=(
        "random/tiny: a re-implementation — ConcatDiT2MLP hidden 576, depth 4, 8 heads, context 1024, 20 "
        "latent channels, 1000 positions (bytedance/Make-An-Audio-2 configs/text2audio-ConcatDiT-ae1dnat_"
        "Skl20d2_struct2MLPanylen.yaml, ldm/modules/diffusionmodules/concatDiT.py); 1-D VAE 80 mels, ch "
        "384×[1,2,4], kernel 5, attention at the bottom, time downsampled ×2 (configs/autoencoder1d_kl20_natbig"
        "_r1_down2_disc2.yaml); text = CLAP's BERT-base text branch on the caption and T5-v1.1-large on the "
        "structured caption (FrozenCLAPFLANEmbedder; without the ChatGPT rewriting the structured caption is "
        "'<caption& all>'); BigVGAN as Make-An-Audio. The 1000 positions hold 1 + 2×77 conditioning tokens and "
        "≤ 845 latent frames (27 s). pretrained: as make-an-audio, with a checkout of "
        "github.com/bytedance/Make-An-Audio-2. " + LENGTH_NOTE.format(grid="2 mel frames = 32 ms")
    ),
    options={
        k: v.format(
            ckpt="maa2.ckpt", config="configs/text2audio-ConcatDiT-ae1dnat_Skl20d2_struct2MLPanylen.yaml"
        )
        for k, v in MAA_OPTIONS.items()
    },
)

CARDS: dict[str, ModelCard] = {
    card.id: card
    for card in (
        NOOP,
        AUDIOLDM,
        AUDIOLDM2,
        AUDIOLDM2_LARGE,
        AUDIOLDM2_MUSIC,
        STABLE_AUDIO_OPEN,
        TANGO,
        TANGO2,
        MUSICLDM,
        MAKE_AN_AUDIO,
        MAKE_AN_AUDIO_2,
    )
}

IMPLEMENTATIONS: dict[str, str] = {
    "noop": "t2a_ray.adapters.noop:NoopAdapter",
    "audioldm": "t2a_ray.adapters.audioldm:AudioLDMAdapter",
    "audioldm2": "t2a_ray.adapters.audioldm2:AudioLDM2Adapter",
    "audioldm2-large": "t2a_ray.adapters.audioldm2:AudioLDM2LargeAdapter",
    "audioldm2-music": "t2a_ray.adapters.audioldm2:AudioLDM2MusicAdapter",
    "stable-audio-open": "t2a_ray.adapters.stable_audio:StableAudioAdapter",
    "tango": "t2a_ray.adapters.tango:TangoAdapter",
    "tango2": "t2a_ray.adapters.tango:Tango2Adapter",
    "musicldm": "t2a_ray.adapters.musicldm:MusicLDMAdapter",
    "make-an-audio": "t2a_ray.adapters.make_an_audio:MakeAnAudioAdapter",
    "make-an-audio-2": "t2a_ray.adapters.make_an_audio_2:MakeAnAudio2Adapter",
}
