"""Audio quality: CLAP score, FAD and FAD∞, behind one small embedding interface.

What the paper measured, and how it maps here:

* **CLAP score** — cosine of the text and audio embeddings of each generation, averaged per
  configuration. The paper used LAION-CLAP *630k-audioset-fusion* through Stable Audio's metrics; its
  transformers port is **``laion/clap-htsat-fused``** (HTSAT audio tower with feature fusion, RoBERTa text
  tower, trained on LAION-Audio-630K + AudioSet), the default here.
* **FAD / FAD∞** — Fréchet distance between Gaussians fitted to audio embeddings of the generations and of
  a reference set. The paper used fadtk's ``clap-laion-audio`` embedding, LAION-CLAP *630k-audioset*
  (no fusion), at 48 kHz; its transformers port is **``laion/clap-htsat-unfused``**, the default for FAD.
  FAD∞ follows fadtk's ``score_inf``: FAD of bootstrap subsets of N generated embeddings for several N,
  a straight line in 1/N, and its intercept (N → ∞) — FAD is biased upwards for small N, and FAD∞ is not.

Audio is mixed to mono, resampled to the CLAP rate (48 kHz) and quantised to 16 bits and back, as
LAION-CLAP's own README (and so fadtk and Stable Audio's metrics) do. Each clip gets its own features
with a fixed seed for CLAP's random crops, so a clip's score never depends on which batch it was in
(LAION-CLAP marks one random clip per batch as "longer" for the fusion branch; scoring clips one by one,
as Stable Audio's metrics do, marks each short clip as such, and so do we).

torch and transformers are imported inside functions: importing `t2a_ray.analysis` stays light.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2a_ray.analysis.audio import as_batch, audio_suffixes, read_audio, resample, to_mono
from t2a_ray.analysis.stats import ci95_halfwidth
from t2a_ray.analysis.tables import iter_files
from t2a_ray.errors import T2ARayError
from t2a_ray.runfolder import atomic_write

CLAP_SAMPLE_RATE_HZ = 48_000
# Closest transformers ports of the paper's checkpoints (see the module docstring).
CLAP_SCORE_CHECKPOINT = "laion/clap-htsat-fused"  # LAION-CLAP 630k-audioset-fusion
FAD_CHECKPOINT = "laion/clap-htsat-unfused"  # LAION-CLAP 630k-audioset (fadtk's clap-laion-audio)
WEIGHT_MODES = ("pretrained", "random", "tiny")
MAX_TEXT_TOKENS = 77  # LAION-CLAP's text length


class QualityError(T2ARayError):
    """A quality model or a reference set cannot be had (no weights offline, no audio files)."""


# ---------------------------------------------------------------------------------------------------------
# 1. The embedding interface


class AudioEmbedder(abc.ABC):
    """Turns waveforms into one embedding each. Any model for FAD sits behind this.

    `cache_key` must change whenever the embeddings would (weights, preprocessing): reference
    embeddings are cached under it.
    """

    name: str = "audio-embedder"

    @property
    @abc.abstractmethod
    def cache_key(self) -> str:
        """A short stable string identifying the model, its weights and its preprocessing."""

    @abc.abstractmethod
    def embed(self, waveforms: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """Float32 waveforms (n, channels, samples) at `sample_rate_hz` → float64 embeddings (n, d)."""


# ---------------------------------------------------------------------------------------------------------
# 2. CLAP


class ClapScorer:
    """A CLAP model with its feature extractor and tokenizer: text and audio embeddings, and scores.

    Build one with `load_clap`. `batch_size` bounds how many clips go through the model at once.
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

    @property
    def sample_rate_hz(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    @property
    def clip_s(self) -> float:
        """Audio seconds the audio tower sees at once (10 s for LAION-CLAP)."""
        return float(self.feature_extractor.max_length_s)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm text embeddings, float64 (n, d)."""
        import torch

        texts = _check_texts(texts)
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=MAX_TEXT_TOKENS,
                return_tensors="pt",
            )
            with torch.inference_mode():
                feats = self.model.get_text_features(
                    input_ids=enc["input_ids"].to(self.device),
                    attention_mask=enc["attention_mask"].to(self.device),
                ).pooler_output
            out.append(feats.double().cpu().numpy())
        return np.concatenate(out, axis=0)

    def embed_audio(self, waveforms: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """Unit-norm audio embeddings of whole clips, float64 (n, d). See the module docstring."""
        mono = self.prepare(waveforms, sample_rate_hz)
        return self._embed_prepared(list(mono))

    def score(self, texts: Sequence[str], waveforms: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """CLAP score of each (text, waveform) pair: the cosine of their embeddings, float64 (n,)."""
        batch = as_batch(waveforms)
        texts = _check_texts(texts)
        if len(texts) != batch.shape[0]:
            raise ValueError(f"{len(texts)} texts for {batch.shape[0]} waveforms: give one text per waveform")
        t = self.embed_text(texts)
        a = self.embed_audio(batch, sample_rate_hz)
        return _cosine(t, a)

    def prepare(self, waveforms: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """Mono, at the CLAP rate, quantised to 16 bits and back: float32 (n, samples)."""
        mono = resample(to_mono(waveforms), int(sample_rate_hz), self.sample_rate_hz)
        return (np.round(np.clip(mono, -1.0, 1.0) * 32767.0) / 32767.0).astype(np.float32)

    def _embed_prepared(self, clips: list[np.ndarray]) -> np.ndarray:
        import torch

        truncation = "fusion" if self.fusion else "rand_trunc"
        out = []
        for start in range(0, len(clips), self.batch_size):
            mels, longer = [], []
            for clip in clips[start : start + self.batch_size]:
                with _numpy_seed(self.seed):  # the extractor's random crops use numpy's global RNG
                    f = self.feature_extractor(
                        [clip.astype(np.float64)],
                        sampling_rate=self.sample_rate_hz,
                        truncation=truncation,
                        padding="repeatpad",
                        return_tensors="np",
                    )
                mels.append(np.asarray(f["input_features"][0], dtype=np.float32))
                longer.append(bool(np.asarray(f["is_longer"]).reshape(-1)[0]))
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
            h.update(f"seed={self.seed};quantise=int16".encode())
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(key.encode())
                h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


class ClapAudioEmbedder(AudioEmbedder):
    """CLAP audio embeddings for FAD, the way fadtk's ``clap-laion-audio`` makes them.

    fadtk splits a file into 10 s chunks and keeps every chunk as an embedding; this interface gives one
    embedding per waveform, the mean of its chunk embeddings (identical for clips of ≤ 10 s, the
    paper's length). A last chunk shorter than 1 s is dropped unless it is the whole clip.
    """

    def __init__(self, scorer: ClapScorer, min_chunk_s: float = 1.0):
        self.scorer = scorer
        self.min_chunk_s = min_chunk_s
        self.name = scorer.name

    @property
    def cache_key(self) -> str:
        return f"clap-{self.scorer.fingerprint()}-chunk{self.min_chunk_s:g}"

    def embed(self, waveforms: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        mono = self.scorer.prepare(waveforms, sample_rate_hz)
        chunk = int(round(self.scorer.clip_s * self.scorer.sample_rate_hz))
        min_len = int(round(self.min_chunk_s * self.scorer.sample_rate_hz))
        pieces, owner = [], []
        for i, clip in enumerate(mono):
            starts = range(0, clip.shape[0], chunk)
            parts = [clip[s : s + chunk] for s in starts]
            parts = [p for j, p in enumerate(parts) if j == 0 or p.shape[0] >= min_len]
            pieces.extend(parts)
            owner.extend([i] * len(parts))
        emb = self.scorer._embed_prepared(pieces)
        owner_arr = np.asarray(owner)
        return np.stack([emb[owner_arr == i].mean(axis=0) for i in range(mono.shape[0])])


def load_clap(
    weights: str = "pretrained",
    source: str | os.PathLike | None = None,
    device: str = "cpu",
    *,
    fusion: bool = True,
    seed: int = 0,
    batch_size: int = 16,
    local_files_only: bool = False,
) -> ClapScorer:
    """Build a CLAP scorer in one of the product's weight modes.

    * ``pretrained`` — `source` (a hub id or a local folder); default ``laion/clap-htsat-fused`` with
      `fusion=True` (CLAP score, as the paper) and ``laion/clap-htsat-unfused`` with `fusion=False`
      (FAD, as fadtk). Needs the weights in the local Hugging Face cache or a folder: nothing is
      downloaded on machines without network.
    * ``random`` — the full-size architecture of those checkpoints with random weights (seeded): the
      cost of scoring without a download; the scores mean nothing.
    * ``tiny`` — a ~50 k-parameter CLAP built locally (tests, demos on a laptop CPU).

    random and tiny use a byte-level tokenizer built locally (RoBERTa's is a download).
    `local_files_only=True` skips the hub's retries on a machine known to be offline.
    """
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights = {weights!r}: must be one of {', '.join(WEIGHT_MODES)}")
    if weights == "pretrained":
        return _load_pretrained(source, device, fusion, seed, batch_size, local_files_only)
    if source is not None:
        raise ValueError(f"source = {str(source)!r}: only weights='pretrained' reads a checkpoint")
    import torch
    from transformers import ClapModel

    config = tiny_clap_config(fusion) if weights == "tiny" else full_clap_config(fusion)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ClapModel(config)
    fe = clap_feature_extractor(fusion, tiny=weights == "tiny")
    name = f"clap-{'fused' if fusion else 'unfused'}-{weights}-seed{seed}"
    return ClapScorer(
        model, fe, local_tokenizer(), name=name, device=device, batch_size=batch_size, seed=seed
    )


def _load_pretrained(source, device, fusion, seed, batch_size, local_files_only) -> ClapScorer:
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
    return ClapScorer(
        model,
        processor.feature_extractor,
        processor.tokenizer,
        name=src,
        device=device,
        batch_size=batch_size,
        seed=seed,
    )


def full_clap_config(fusion: bool = True):
    """The architecture of laion/clap-htsat-(un)fused: RoBERTa-base text tower, HTSAT-tiny audio tower."""
    from transformers import ClapConfig

    return ClapConfig(audio_config={"enable_fusion": fusion}, projection_dim=512)


def tiny_clap_config(fusion: bool = True):
    """A few-hundred-kB CLAP for tests: 2 text layers of 32, a 2-stage HTSAT of 16/32, 16-d embeddings.

    The audio tower takes 128×128 "images": 256 mel frames × 64 bins folded by 2, which with the tiny
    feature extractor's 40 ms hop covers the same 10 s as the real 1024-frame model.
    """
    from transformers import ClapConfig

    return ClapConfig(
        text_config={
            "vocab_size": 300,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "max_position_embeddings": MAX_TEXT_TOKENS + 3,
        },
        audio_config={
            "spec_size": 128,
            "num_mel_bins": 64,
            "window_size": 4,
            "patch_size": 4,
            "patch_stride": (4, 4),
            "depths": (1, 1),
            "num_attention_heads": (2, 2),
            "patch_embeds_hidden_size": 16,
            "hidden_size": 32,
            "enable_fusion": fusion,
        },
        projection_dim=16,
    )


def clap_feature_extractor(fusion: bool = True, tiny: bool = False):
    """CLAP's feature extractor: 48 kHz, 64 mel bins, 10 s windows (the tiny one hops 40 ms, not 10 ms)."""
    from transformers import ClapFeatureExtractor

    kwargs = {"hop_length": 1920, "fft_window_size": 2048} if tiny else {}
    return ClapFeatureExtractor(
        truncation="fusion" if fusion else "rand_trunc", padding="repeatpad", **kwargs
    )


def local_tokenizer():
    """A byte-level BPE tokenizer with no merges, built without a download (ids < 260, RoBERTa specials)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {s: i for i, s in enumerate(specials)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=MAX_TEXT_TOKENS,
    )


def clap_scores(
    texts: Sequence[str], waveforms: np.ndarray, sample_rate_hz: int, scorer: ClapScorer
) -> np.ndarray:
    """CLAP score per generation (float64 (n,)): a plain function of texts, waveforms and their rate."""
    return scorer.score(texts, waveforms, sample_rate_hz)


# ---------------------------------------------------------------------------------------------------------
# 3. Fréchet distance, FAD, FAD∞


def gaussian_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and sample covariance (d, d) of embeddings (n, d), n ≥ 2."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"embeddings must be (n, d) with n ≥ 2 to fit a Gaussian; got shape {x.shape}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein²) distance of N(mu1, cov1) and N(mu2, cov2).

    ‖mu1 − mu2‖² + tr(cov1) + tr(cov2) − 2 tr((cov1 cov2)^½), with the trace term computed as
    Σ √λ(√cov1 · cov2 · √cov1): a symmetric PSD matrix, so it stays real and exact for the singular
    covariances of small sets, where `scipy.linalg.sqrtm(cov1 @ cov2)` needs fadtk's ε-offset fallback.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    c1, c2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or c1.shape != c2.shape or c1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} / {mu2.shape}, cov {c1.shape} / {c2.shape}")
    w, v = np.linalg.eigh((c1 + c1.T) / 2.0)
    sqrt_c1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = sqrt_c1 @ ((c2 + c2.T) / 2.0) @ sqrt_c1
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0, None)).sum())
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_covmean)
    return max(d, 0.0)


def fad(generated: np.ndarray, reference: ReferenceSet | np.ndarray) -> float:
    """FAD of generated embeddings (n, d) against a reference set (or its embeddings)."""
    mu_r, cov_r = _reference_stats(reference)
    mu_g, cov_g = gaussian_stats(generated)
    return frechet_distance(mu_g, cov_g, mu_r, cov_r)


@dataclass(frozen=True)
class FadInfResult:
    """FAD∞ and the fit behind it: FAD(N) ≈ score + slope / N."""

    score: float
    slope: float
    r2: float
    ns: tuple[int, ...]
    fads: tuple[float, ...]


def fad_inf(
    generated: np.ndarray,
    reference: ReferenceSet | np.ndarray,
    *,
    ns: Sequence[int] | None = None,
    steps: int = 25,
    min_n: int = 500,
    seed: int = 0,
) -> FadInfResult:
    """FAD∞ as fadtk's `score_inf`: FAD of N embeddings drawn with replacement from `generated`, for
    each N in `ns`, fitted by a line in 1/N; the intercept is FAD∞.

    Default `ns`: `steps` sizes evenly spaced from `min_n` to the number of generated embeddings (fadtk's
    500 … all); with fewer than 2·`min_n` embeddings, from half of them instead, so that no subset is far
    larger than the set it is drawn from.
    """
    gen = np.asarray(generated, dtype=np.float64)
    mu_r, cov_r = _reference_stats(reference)
    max_n = gen.shape[0]
    if ns is None:
        lo = min_n if max_n >= 2 * min_n else max(2, max_n // 2)
        ns = sorted({int(round(x)) for x in np.linspace(lo, max_n, steps)})
    ns = sorted({int(n) for n in ns})
    if len(ns) < 2 or ns[0] < 2:
        raise ValueError(
            f"FAD∞ needs at least two subset sizes ≥ 2; got {ns} from {max_n} generated embeddings "
            "(score at least 3 generations)"
        )
    rng = np.random.default_rng(seed)
    fads = []
    for n in ns:
        idx = rng.choice(max_n, size=n, replace=True)
        mu, cov = gaussian_stats(gen[idx])
        fads.append(frechet_distance(mu, cov, mu_r, cov_r))
    xs, ys = 1.0 / np.asarray(ns, dtype=np.float64), np.asarray(fads)
    slope, intercept = np.polyfit(xs, ys, 1)
    ss_tot = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ys - (slope * xs + intercept)) ** 2)) / ss_tot if ss_tot > 0 else math.nan
    return FadInfResult(float(intercept), float(slope), r2, tuple(ns), tuple(float(f) for f in fads))


# ---------------------------------------------------------------------------------------------------------
# 4. Reference sets, cached by content


@dataclass(frozen=True)
class ReferenceSet:
    """Embeddings of a folder of reference audio, one row per file (sorted by path)."""

    folder: Path
    files: tuple[Path, ...]
    embeddings: np.ndarray
    embedder_key: str
    cached: int = 0  # files whose embedding came from the cache

    @functools.cached_property
    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the reference embeddings."""
        return gaussian_stats(self.embeddings)


def load_reference(
    folder: str | os.PathLike,
    embedder: AudioEmbedder,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 16,
) -> ReferenceSet:
    """Embed every audio file under `folder`, reusing embeddings cached in `cache_dir`.

    The cache key of a file is the hash of its bytes (renaming or moving files keeps the cache; editing
    one re-embeds it) under the embedder's `cache_key` (other weights never reuse these embeddings).
    Files of the same rate, channels and length are embedded together, `batch_size` at a time.
    """
    root = Path(folder)
    if not root.is_dir():
        raise QualityError(f"FAD reference {str(root)!r}: not a folder")
    files = tuple(iter_files(root, audio_suffixes()))
    if len(files) < 2:
        raise QualityError(
            f"FAD reference {str(root)!r}: needs at least 2 audio files ({', '.join(audio_suffixes())}); "
            f"found {len(files)}"
        )
    cache = Path(cache_dir) / embedder.cache_key if cache_dir is not None else None
    digests = [_file_digest(f) for f in files]
    rows: dict[int, np.ndarray] = {}
    if cache is not None:
        for i, d in enumerate(digests):
            hit = cache / f"{d}.npy"
            if hit.is_file():
                rows[i] = np.load(hit)
    cached = len(rows)
    pending: dict[tuple[int, int, int], list[tuple[int, np.ndarray]]] = {}
    for i, f in enumerate(files):
        if i in rows:
            continue
        audio, rate = read_audio(f)
        pending.setdefault((rate, *audio.shape), []).append((i, audio))
    for (rate, _ch, _n), items in pending.items():
        for start in range(0, len(items), batch_size):
            part = items[start : start + batch_size]
            emb = np.asarray(embedder.embed(np.stack([a for _, a in part]), rate), dtype=np.float64)
            for (i, _), e in zip(part, emb, strict=True):
                rows[i] = e
                if cache is not None:
                    atomic_write(cache / f"{digests[i]}.npy", lambda f, e=e: np.save(f, e))
    embeddings = np.stack([rows[i] for i in range(len(files))])
    return ReferenceSet(root, files, embeddings, embedder.cache_key, cached=cached)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _reference_stats(reference: ReferenceSet | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return reference.stats if isinstance(reference, ReferenceSet) else gaussian_stats(reference)


# ---------------------------------------------------------------------------------------------------------
# 5. One configuration's row of quality.parquet


def score_configuration(
    trial_id: str,
    texts: Sequence[str] | None,
    waveforms: np.ndarray,
    sample_rate_hz: int,
    *,
    clap: ClapScorer | None = None,
    fad_embedder: AudioEmbedder | None = None,
    reference: ReferenceSet | None = None,
    fad_inf_ns: Sequence[int] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score all generations of one configuration; returns a row for `write_quality_table`.

    `texts[i]` is the prompt of `waveforms[i]` (repeat a prompt for each waveform of its batch). CLAP
    needs `clap`; FAD needs `fad_embedder` and a `reference` embedded by the same embedder. FAD needs ≥ 2
    generations and FAD∞ ≥ 3; with fewer they are null. The caller meters the energy of this call and
    may add `scoring_energy_j` / `scoring_energy_method` to the row.
    """
    t0 = time.perf_counter()
    batch = as_batch(waveforms)
    row: dict[str, Any] = {"trial_id": trial_id, "n_generations": int(batch.shape[0])}
    if clap is not None:
        if texts is None:
            raise ValueError("CLAP score needs the texts of the generations")
        scores = clap.score(texts, batch, sample_rate_hz)
        row |= {
            "clap_mean": float(scores.mean()),
            "clap_std": float(scores.std(ddof=1)) if scores.size > 1 else None,
            "clap_ci95": _none_if_nan(ci95_halfwidth(scores)),
            "clap_model": clap.name,
        }
    if reference is not None:
        if fad_embedder is None:
            raise ValueError("FAD needs the fad_embedder that embedded the reference set")
        if fad_embedder.cache_key != reference.embedder_key:
            raise ValueError("the reference set was embedded by another model than fad_embedder")
        row |= {"fad_reference": str(reference.folder), "fad_model": fad_embedder.name}
        row["fad_n_reference"] = len(reference.files)
        row["fad_n_generated"] = int(batch.shape[0])
        if batch.shape[0] >= 2:
            emb = fad_embedder.embed(batch, sample_rate_hz)
            row["fad"] = fad(emb, reference)
            if batch.shape[0] >= 3:
                inf = fad_inf(emb, reference, ns=fad_inf_ns, seed=seed)
                row |= {"fad_inf": inf.score, "fad_inf_slope": inf.slope, "fad_inf_r2": _none_if_nan(inf.r2)}
    row["scoring_s"] = time.perf_counter() - t0
    return row


# ---------------------------------------------------------------------------------------------------------
# helpers


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of strings")
    return texts


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(na * nb, 1e-12)


def _none_if_nan(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@contextlib.contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for the block and put the caller's state back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
