"""CLAP, the one home of the model: built (full size, tiny, or pretrained), and embedding text and audio.

Two users: the quality scorer (CLAP score and the FAD embedding) and the adapters whose pipelines carry a
CLAP (AudioLDM's text encoder, AudioLDM 2's and MusicLDM's ranking model).

The quality protocols follow the study's tools, the reference code of the numbers we compare against:

* **CLAP score, ``stable-audio-metrics``** (LAION-CLAP *630k-audioset-fusion*, whose transformers port is
  ``laion/clap-htsat-fused``): each clip mono at 48 kHz, peak-normalised to −1 dBFS, quantised through
  int16 (``(x · 32767).astype(int16) / 32767``, truncating as LAION-CLAP does), embedded alone. In eval
  mode LAION-CLAP runs the fusion branch only for clips whose mel has more frames than a 10-s window's
  (from 10 s plus one hop); transformers' feature extractor would mark a lone shorter clip "longer" at
  random, so `Clap.is_longer` sets the flag with LAION-CLAP's rule.
* **FAD embedding, ``fadtk``** (fadtk's ``clap-laion-audio``: LAION-CLAP *630k-audioset-best*, no fusion;
  port ``laion/clap-htsat-unfused``): 10-s windows every 1 s from each clip's start, the last ones
  zero-padded, every window a row, each window quantised through int16, embeddings rounded to float16
  (fadtk stores them so). The windowing is `analysis.quality.fadtk_windows`.

Embeddings of clips up to 10 s, and at the window's edge up to the first fused length (10 s plus one
hop), equal laion_clap's `CLAP_Module` with the same weights (`tests/parity/test_laion_clap_parity.py`).
What still differs from the reference code: resampling for CLAP (stable-audio-metrics loads through
librosa's soxr; here `analysis.audio.resample`, designed as fadtk's torchaudio Kaiser sinc), fadtk's
16-bit WAV file between resampling and its int16 round trip (here the round trip alone), fadtk's mean of
the float16 rows, taken in float16 (here float64), and the fusion input of longer clips (LAION-CLAP
shrinks their whole mel with torchvision's `Resize`, transformers with `interpolate`; not recorded).

torch and transformers are imported inside functions: importing this module stays light.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2a_ray.adapters._text import roberta_tokenizer
from t2a_ray.adapters.base import TINY_TEXT_TOKENS, WEIGHT_MODES
from t2a_ray.errors import T2ARayError

CLAP_SAMPLE_RATE_HZ = 48_000
CLAP_WINDOW_S = 10.0  # the audio tower sees 10 s at once
# Closest transformers ports of the study's checkpoints (see the module docstring).
CLAP_SCORE_CHECKPOINT = "laion/clap-htsat-fused"  # LAION-CLAP 630k-audioset-fusion
FAD_CHECKPOINT = "laion/clap-htsat-unfused"  # LAION-CLAP 630k-audioset (fadtk's clap-laion-audio)
MAX_TEXT_TOKENS = 77  # LAION-CLAP's text length
# Tiny sizes: a few-hundred-kB CLAP that embeds a 10-s clip in milliseconds on a laptop CPU.
TINY_VOCAB = 1000  # embedding rows of the tiny text models (the local tokenizers use fewer ids)


class QualityError(T2ARayError):
    """A quality model or a reference set cannot be had (no weights offline, no audio files)."""


# ---------------------------------------------------------------------------------------------------------
# 1. Building: configurations, model, feature extractor, tokenizer


def clap_text_config(size: str):
    """CLAP's text branch: RoBERTa-base with a 512-d projection (``laion/clap-htsat-*``) or tiny."""
    from transformers import ClapTextConfig

    if size == "full":
        return ClapTextConfig()
    return ClapTextConfig(
        vocab_size=TINY_VOCAB,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=TINY_TEXT_TOKENS + 8,
        projection_dim=16,
    )


def clap_config(size: str, fusion: bool = False, audio: str = "htsat-tiny"):
    """The whole CLAP: full size (HTSAT-tiny as in ``laion/clap-htsat-*`` and AudioLDM 2, or MusicLDM's
    HTSAT-base from diffusers' ``scripts/convert_original_musicldm_to_diffusers.py``), or tiny.

    The tiny audio tower takes 128×128 "images": 256 mel frames × 64 bins folded by 2, which with the tiny
    feature extractor's 40 ms hop covers the same 10 s as the real 1024-frame model.
    """
    from transformers import ClapAudioConfig, ClapConfig

    if size == "full":
        extra = {"patch_embeds_hidden_size": 128, "hidden_size": 1024, "depths": [2, 2, 12, 2]}
        audio_config = ClapAudioConfig(enable_fusion=fusion, **(extra if audio == "htsat-base" else {}))
        projection_dim = 512
    else:
        audio_config = ClapAudioConfig(
            spec_size=128,
            num_mel_bins=64,
            window_size=4,
            patch_size=4,
            patch_stride=(4, 4),
            depths=(1, 1),
            num_attention_heads=(2, 2),
            patch_embeds_hidden_size=16,
            hidden_size=32,
            projection_dim=16,
            enable_fusion=fusion,
        )
        projection_dim = 16
    return ClapConfig(
        text_config=clap_text_config(size).to_dict(),
        audio_config=audio_config.to_dict(),
        projection_dim=projection_dim,
    )


def clap_model(size: str, audio: str = "htsat-tiny", fusion: bool = False):
    """CLAP with both branches (AudioLDM 2 and MusicLDM keep the audio branch to rank their outputs)."""
    from transformers import ClapModel

    return ClapModel(clap_config(size, fusion, audio))


def clap_text_model(size: str):
    """CLAP's text branch with its projection (AudioLDM's text encoder)."""
    from transformers import ClapTextModelWithProjection

    return ClapTextModelWithProjection(clap_text_config(size))


def clap_feature_extractor(fusion: bool = True, tiny: bool = False):
    """CLAP's feature extractor: 48 kHz, 64 mel bins from 50 Hz to 14 kHz, 10-s windows, repeat-padded
    (the tiny one hops 40 ms, not 10 ms)."""
    from transformers import ClapFeatureExtractor

    kwargs = {"hop_length": 1920, "fft_window_size": 2048} if tiny else {}
    return ClapFeatureExtractor(
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
        frequency_min=50,  # LAION-CLAP's fmin (the class default is 0)
        **kwargs,
    )


def clap_tokenizer(size: str):
    """The real RoBERTa tokenizer lives in the hub repo; without it, `_text`'s locally trained one."""
    return roberta_tokenizer(MAX_TEXT_TOKENS if size == "full" else TINY_TEXT_TOKENS)


# ---------------------------------------------------------------------------------------------------------
# 2. Embedding


class Clap:
    """A CLAP model with its feature extractor and tokenizer: unit-norm text and audio embeddings.

    Build one with `load_clap`. `batch_size` bounds how many clips go through the model at once; a
    clip's embedding never depends on its batch (each clip gets its own features and `is_longer`).
    """

    def __init__(
        self,
        model: Any,
        feature_extractor: Any,
        tokenizer: Any,
        *,
        name: str,
        device: str = "cpu",
        batch_size: int = 16,
        seed: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size = {batch_size}: must be ≥ 1")
        self.model = model.eval().to(device)
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.seed = seed
        self._fingerprint: str | None = None

    @property
    def fusion(self) -> bool:
        return bool(self.model.config.audio_config.enable_fusion)

    def is_longer(self, n_samples: int) -> bool:
        """Whether a clip of `n_samples` goes through the fusion branch: LAION-CLAP's rule, in frames.

        LAION-CLAP (``training/data.py``, ``get_audio_features``) fuses a clip only when its mel
        spectrogram has more frames than one window's, ``max_len // hop + 1``. A centred STFT gives
        ``n // hop + 1`` frames, so a clip less than one hop longer than the window keeps its whole mel,
        stacked four times, with ``longer = False`` (at 48 kHz and a 480-sample hop: fusion from 480,480
        samples, not 480,001). transformers' extractor builds the same features, but in a call where no
        clip is longer it marks one at random — for a lone clip, always that clip — so this rule, not
        the extractor's flag, is passed to the model. Unfused models ignore the flag.
        """
        hop = int(self.feature_extractor.hop_length)
        window = int(self.feature_extractor.nb_max_samples)
        return n_samples // hop + 1 > window // hop + 1

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm text embeddings, float64 (n, d)."""
        import torch

        texts = check_texts(texts)
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.tokenizer.model_max_length,
                return_tensors="pt",
            )
            with torch.inference_mode():
                feats = self.model.get_text_features(
                    input_ids=enc["input_ids"].to(self.device),
                    attention_mask=enc["attention_mask"].to(self.device),
                ).pooler_output
            out.append(feats.double().cpu().numpy())
        return np.concatenate(out, axis=0)

    def embed_audio(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-norm embeddings (n, d) float64 of mono 48-kHz clips, already prepared (quantised).

        A clip longer than the 10-s window goes through the fusion branch (fused models, from one hop
        past the window: `is_longer`) or a random 10-s crop (unfused), seeded by `seed`; a clip up to
        10 s is repeat-padded and, as LAION-CLAP does in eval mode, never marked "longer".
        """
        import torch

        truncation = "fusion" if self.fusion else "rand_trunc"
        out = []
        for start in range(0, len(clips), self.batch_size):
            mels, longer = [], []
            for clip in clips[start : start + self.batch_size]:
                state = np.random.get_state()  # the extractor's random crops use numpy's global RNG
                np.random.seed(self.seed)
                try:
                    f = self.feature_extractor(
                        [np.asarray(clip, np.float64)],
                        sampling_rate=CLAP_SAMPLE_RATE_HZ,
                        truncation=truncation,
                        padding="repeatpad",
                        return_tensors="np",
                    )
                finally:
                    np.random.set_state(state)
                mels.append(np.asarray(f["input_features"][0], dtype=np.float32))
                longer.append(self.is_longer(len(clip)))
            features = torch.from_numpy(np.stack(mels)).to(self.device)
            is_longer = torch.tensor(longer, dtype=torch.bool).reshape(-1, 1).to(self.device)
            with torch.inference_mode():
                feats = self.model.get_audio_features(input_features=features, is_longer=is_longer)
            out.append(feats.pooler_output.double().cpu().numpy())
        return np.concatenate(out, axis=0)

    def fingerprint(self) -> str:
        """Hash of the config, the preprocessing and every weight: what the embeddings depend on."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(self.model.config.to_json_string().encode())
            fe = {k: v for k, v in self.feature_extractor.to_dict().items() if not k.startswith("_")}
            h.update(json.dumps(fe, sort_keys=True, default=str).encode())
            h.update(f"seed={self.seed}".encode())
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(key.encode())
                h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


def load_clap(
    weights: str = "pretrained",
    source: str | os.PathLike | None = None,
    device: str = "cpu",
    *,
    fusion: bool = True,
    seed: int = 0,
    batch_size: int = 16,
    local_files_only: bool = False,
) -> Clap:
    """Build a CLAP in one of the product's weight modes.

    * ``pretrained`` — `source` (a hub id or a local folder); default ``laion/clap-htsat-fused`` with
      `fusion=True` (CLAP score) and ``laion/clap-htsat-unfused`` with `fusion=False` (FAD). Needs the
      weights in the local Hugging Face cache or a folder: nothing is downloaded on machines without
      network.
    * ``random`` — the full-size architecture of those checkpoints with random weights (seeded): the cost
      of scoring without a download; the scores mean nothing.
    * ``tiny`` — a few-hundred-kB CLAP built locally (tests, demos on a laptop CPU).

    random and tiny use `_text`'s locally trained RoBERTa-style tokenizer (RoBERTa's is a download).
    `local_files_only=True` skips the hub's retries on a machine known to be offline.
    """
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights = {weights!r}: must be one of {', '.join(WEIGHT_MODES)}")
    if weights == "pretrained":
        return _load_pretrained(source, device, fusion, seed, batch_size, local_files_only)
    if source is not None:
        raise ValueError(f"source = {str(source)!r}: only weights='pretrained' reads a checkpoint")
    import torch

    size = "tiny" if weights == "tiny" else "full"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = clap_model(size, fusion=fusion)
    fe = clap_feature_extractor(fusion, tiny=size == "tiny")
    name = f"clap-{'fused' if fusion else 'unfused'}-{weights}-seed{seed}"
    return Clap(model, fe, clap_tokenizer(size), name=name, device=device, batch_size=batch_size, seed=seed)


def _load_pretrained(source, device, fusion, seed, batch_size, local_files_only) -> Clap:
    from transformers import ClapModel, ClapProcessor

    src = str(source) if source is not None else (CLAP_SCORE_CHECKPOINT if fusion else FAD_CHECKPOINT)
    if src.startswith(("/", ".", "~")) and not Path(src).expanduser().is_dir():
        raise QualityError(f"CLAP checkpoint folder {src!r} does not exist")
    try:
        model = ClapModel.from_pretrained(src, local_files_only=local_files_only)
        processor = ClapProcessor.from_pretrained(src, local_files_only=local_files_only)
    except (OSError, ValueError) as e:
        raise QualityError(
            f"cannot load CLAP checkpoint {src!r} ({type(e).__name__}: {str(e).splitlines()[0]}); "
            f"fetch it once where there is network (huggingface-cli download {src}) or pass a local "
            "folder as source, or use weights='random' or 'tiny'"
        ) from e
    if bool(model.config.audio_config.enable_fusion) != fusion:
        kind = "fused" if model.config.audio_config.enable_fusion else "unfused"
        raise QualityError(f"CLAP checkpoint {src!r} is {kind}, but fusion={fusion} was asked for")
    return Clap(
        model,
        processor.feature_extractor,
        processor.tokenizer,
        name=src,
        device=device,
        batch_size=batch_size,
        seed=seed,
    )


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of strings")
    return texts
