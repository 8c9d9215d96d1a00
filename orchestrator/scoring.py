"""Quality of a configuration, scored on the worker after its energy windows (CLAP score, FAD, FAD∞).

The models come from `t2a_ray.adapters.clap`, the math from `t2a_ray.analysis.quality`; this module
ties them together with the protocol the sweep names (`quality.clap.protocol`, `quality.fad.embedding`,
see the README's energy-and-quality section), the reference set and its cache.

The scorer follows the sweep's weight mode: `tiny` and `random` CLAP models are built locally (their
scores mean nothing, their cost is real); `pretrained` loads `quality.clap.checkpoint` or the study's
checkpoints. A failure of one metric is written in its `*_error` column and never costs another metric.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2a_ray.adapters.base import quality_from_trained_weights
from t2a_ray.adapters.clap import CLAP_SAMPLE_RATE_HZ, Clap, QualityError, check_texts, load_clap
from t2a_ray.analysis import quality as Q
from t2a_ray.analysis.audio import as_batch, audio_suffixes, read_audio, resample, to_mono
from t2a_ray.analysis.stats import ci95_halfwidth
from t2a_ray.analysis.tables import iter_files
from t2a_ray.config import CLAP_PROTOCOLS, FAD_EMBEDDINGS, QualityConfig
from t2a_ray.runfolder import atomic_write

log = logging.getLogger(__name__)
# The protocols implemented here: a second one in the sweep file's list fails at import until it is.
(STABLE_AUDIO_METRICS,) = CLAP_PROTOCOLS
(FADTK,) = FAD_EMBEDDINGS


def clap_inputs(waveforms: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """stable-audio-metrics' audio path: mono, 48 kHz, −1 dBFS peak, int16 round trip: float32 (n, s)."""
    mono = resample(to_mono(waveforms), int(sample_rate_hz), CLAP_SAMPLE_RATE_HZ)
    return Q.quantise_int16(Q.peak_normalise(mono))


def clap_scores(clap: Clap, texts: Sequence[str], waveforms: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """CLAP score of each (text, waveform) pair under the stable-audio-metrics protocol: float64 (n,)."""
    batch, texts = as_batch(waveforms), check_texts(texts)
    if len(texts) != batch.shape[0]:
        raise ValueError(f"{len(texts)} texts for {batch.shape[0]} waveforms: give one text per waveform")
    audio = clap.embed_audio(list(clap_inputs(batch, sample_rate_hz)))
    return Q.clap_scores(clap.embed_text(texts), audio)


# ---------------------------------------------------------------------------------------------------------
# FAD embeddings


class AudioEmbedder(abc.ABC):
    """Turns waveforms into embedding rows (one or more per waveform). Any model for FAD sits behind this.

    `cache_key` must change whenever the embeddings would (weights, preprocessing): reference
    embeddings are cached under it.
    """

    name: str = "audio-embedder"
    protocol: str = "custom"

    @property
    @abc.abstractmethod
    def cache_key(self) -> str:
        """A short stable string identifying the model, its weights and its preprocessing."""

    @abc.abstractmethod
    def embed(self, waveforms: np.ndarray, sample_rate_hz: int) -> list[np.ndarray]:
        """Float32 waveforms (n, channels, samples) → n float64 arrays of rows (k_i, d)."""


class FadtkEmbedder(AudioEmbedder):
    """fadtk's ``clap-laion-audio`` rows: mono, 48 kHz, 10-s windows every 1 s (zero-padded), each
    quantised through int16 and embedded by an unfused CLAP; rows rounded to float16 as fadtk stores
    them."""

    protocol = FADTK

    def __init__(self, clap: Clap):
        if clap.fusion:
            raise QualityError(f"fadtk's embedding is an unfused CLAP; {clap.name} is fused")
        self.clap = clap
        self.name = clap.name

    @property
    def cache_key(self) -> str:
        return f"fadtk-kaiser-{self.clap.fingerprint()}"  # the resampler is part of the embedding

    def embed(self, waveforms: np.ndarray, sample_rate_hz: int) -> list[np.ndarray]:
        mono = resample(to_mono(waveforms), int(sample_rate_hz), CLAP_SAMPLE_RATE_HZ)
        windows = [Q.quantise_int16(Q.fadtk_windows(clip, CLAP_SAMPLE_RATE_HZ)) for clip in mono]
        rows = self.clap.embed_audio([w for ws in windows for w in ws])
        rows = rows.astype(np.float16).astype(np.float64)
        bounds = np.cumsum([0] + [len(ws) for ws in windows])
        return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# ---------------------------------------------------------------------------------------------------------
# Reference sets, cached by content


@dataclass(frozen=True)
class ReferenceSet:
    """Embedding rows of a folder of reference audio (files sorted by path, each its rows in order)."""

    folder: Path
    files: tuple[Path, ...]
    embeddings: np.ndarray
    embedder_key: str
    cached: int = 0  # files whose embedding came from the cache

    @functools.cached_property
    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the reference rows."""
        return Q.gaussian_stats(self.embeddings)


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
        if i not in rows:
            audio, rate = read_audio(f)
            pending.setdefault((rate, *audio.shape), []).append((i, audio))
    for (rate, _ch, _n), items in pending.items():
        for start in range(0, len(items), batch_size):
            part = items[start : start + batch_size]
            embedded = embedder.embed(np.stack([a for _, a in part]), rate)
            for (i, _), e in zip(part, embedded, strict=True):
                rows[i] = np.asarray(e, dtype=np.float64)
                if cache is not None:
                    cache.mkdir(parents=True, exist_ok=True)
                    atomic_write(cache / f"{digests[i]}.npy", lambda f, e=rows[i]: np.save(f, e))
    embeddings = np.concatenate([rows[i] for i in range(len(files))])
    Q.check_finite(embeddings, f"FAD reference {str(root)!r} embeddings")
    return ReferenceSet(root, files, embeddings, embedder.cache_key, cached=cached)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# One configuration's row of quality.parquet


def score_configuration(
    trial_id: str,
    texts: Sequence[str] | None,
    waveforms: np.ndarray,
    sample_rate_hz: int,
    *,
    clap: Clap | None = None,
    fad_embedder: AudioEmbedder | None = None,
    reference: ReferenceSet | None = None,
    fad_inf_min_n: int = Q.FAD_INF_MIN_N,
    seed: int = 0,
    trained_weights: bool | None = None,
) -> dict[str, Any]:
    """Score all generations of one configuration; returns a row of `t2a_ray.schema.quality_schema`.

    `texts[i]` is the prompt of `waveforms[i]`. CLAP needs `clap`; FAD needs `fad_embedder` and a
    `reference` embedded by it. Each metric that fails leaves its values null and its error in
    `clap_error` / `fad_error`; FAD needs ≥ 2 embedding rows, FAD∞ ≥ 2·`fad_inf_min_n` (else null with
    `fad_inf_note`). `trained_weights`: `quality_from_trained_weights` of the audio and the scorer (null
    when not given). The caller meters this call and adds `scoring_energy_j` / `scoring_energy_method`.
    """
    t0 = time.perf_counter()
    batch = as_batch(waveforms)
    row: dict[str, Any] = {
        "trial_id": trial_id,
        "n_generations": int(batch.shape[0]),
        "trained_weights": trained_weights,
    }
    if clap is not None:
        row |= {"clap_model": clap.name, "clap_protocol": STABLE_AUDIO_METRICS}
        try:
            if texts is None:
                raise ValueError("CLAP score needs the texts of the generations")
            scores = clap_scores(clap, texts, batch, sample_rate_hz)
            row |= {
                "clap_mean": float(scores.mean()),
                "clap_std": float(scores.std(ddof=1)) if scores.size > 1 else None,
                "clap_ci95": Q.none_if_nan(ci95_halfwidth(scores)),
            }
        except Exception as e:  # noqa: BLE001 — recorded in the row; FAD still runs
            log.warning("CLAP score of %s failed: %s", trial_id, e)
            row["clap_error"] = f"{type(e).__name__}: {e}"
    if reference is not None:
        if fad_embedder is None or fad_embedder.cache_key != reference.embedder_key:
            raise ValueError("the reference set must be embedded by the fad_embedder given")
        row |= {
            "fad_reference": str(reference.folder),
            "fad_model": fad_embedder.name,
            "fad_embedding": fad_embedder.protocol,
            "fad_n_reference": int(reference.embeddings.shape[0]),
        }
        try:
            emb = np.concatenate(fad_embedder.embed(batch, sample_rate_hz))
            emb = Q.check_finite(emb, "FAD generated embeddings")
            row["fad_n_generated"] = int(emb.shape[0])
            row["fad"] = Q.fad(emb, reference.stats)
            inf = Q.fad_inf(emb, reference.stats, min_n=fad_inf_min_n, rng=np.random.default_rng(seed))
            row |= {
                "fad_inf": inf.score,
                "fad_inf_slope": inf.slope,
                "fad_inf_r2": inf.r2,
                "fad_inf_sizes": list(inf.ns) or None,
                "fad_inf_note": inf.note,
            }
        except Exception as e:  # noqa: BLE001 — recorded in the row; CLAP's values stay
            log.warning("FAD of %s failed: %s", trial_id, e)
            row["fad_error"] = f"{type(e).__name__}: {e}"
    row["scoring_s"] = time.perf_counter() - t0
    return row


class QualityScorer:
    """What the worker holds: the sweep's CLAP and FAD models and its reference set, loaded once."""

    def __init__(self, quality: QualityConfig, weights: str, device: str, cache_dir: Path):
        # The sweep's weight mode makes both the audio scored here and the scorer.
        self.trained_weights = quality_from_trained_weights(weights, weights)
        source = quality.clap_checkpoint if weights == "pretrained" else None
        self.clap = load_clap(weights, source, device) if quality.clap else None
        self.embedder = self.reference = None
        if quality.fad_reference:
            self.embedder = FadtkEmbedder(load_clap(weights, None, device, fusion=False))
            self.reference = load_reference(quality.fad_reference, self.embedder, cache_dir=cache_dir)

    def score(
        self, trial_id: str, texts: list[str], waveforms: np.ndarray, sample_rate_hz: int
    ) -> dict[str, Any]:
        return score_configuration(
            trial_id,
            texts,
            waveforms,
            sample_rate_hz,
            clap=self.clap,
            fad_embedder=self.embedder,
            reference=self.reference,
            trained_weights=self.trained_weights,
        )
