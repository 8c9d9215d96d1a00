"""Audio quality math on arrays: the study's preprocessing, CLAP score, Fréchet distance, FAD and FAD∞.

No model lives here (CLAP is built and run in `t2a_ray.adapters.clap`; the worker's scorer in
`t2a_ray.orchestrator.scoring` ties the two together), and numpy is the only import.

* **CLAP score** — the cosine of a generation's text and audio embeddings, averaged per configuration: no
  clipping at 0, no ×100, as LAION-CLAP and stable-audio-metrics compute it.
* **FAD** — the Fréchet distance of Gaussians fitted to the embedding rows of the generations and of a
  reference set, fadtk's ``calc_frechet_distance``.
* **FAD∞** — fadtk's ``score_inf``: FAD of N rows drawn with replacement, for sizes
  ``[int(n) for n in linspace(min_n, N, 25)]``, a straight line in 1/N, its intercept. It removes the
  1/N part of FAD's small-sample bias; it is not unbiased (two sets from one distribution still give a
  FAD∞ above 0), and it is only as good as the line through its points, so its R² and sizes go with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PEAK_DBFS = -1.0  # stable-audio-metrics peak-normalises every clip to −1 dBFS before CLAP
FADTK_WINDOW_S = 10.0  # fadtk's clap-laion-audio: 10-s windows …
FADTK_HOP_S = 1.0  # … every second
FAD_INF_STEPS = 25  # fadtk's score_inf defaults
FAD_INF_MIN_N = 500  # fadtk's smallest subset: about the 512 dimensions of a CLAP embedding


# ---------------------------------------------------------------------------------------------------------
# 1. Preprocessing of the study's tools (mono float arrays at the model's rate)


def peak_normalise(clips: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    """Scale each clip (row of (n, samples)) so its largest |sample| is `peak_dbfs`, float32.

    pyloudnorm's ``normalize.peak`` as stable-audio-metrics calls it, once per mono clip: each row has
    its own gain (pyloudnorm given a 2-D array would share one, its overall peak), computed in float64
    and rounded to float32 (`tests/parity/test_pyloudnorm_parity.py`). A clip above 0 dBFS is scaled
    down like any other; at a target below full scale nothing clips. A silent clip stays silent, where
    pyloudnorm divides by zero and returns NaN: silence is a valid generation, to be scored as such.
    """
    x = np.asarray(clips, dtype=np.float64)
    peak = np.max(np.abs(x), axis=-1, keepdims=True)
    gain = np.where(peak > 0, 10.0 ** (peak_dbfs / 20.0) / np.where(peak > 0, peak, 1.0), 1.0)
    return (x * gain).astype(np.float32)


def quantise_int16(x: np.ndarray) -> np.ndarray:
    """LAION-CLAP's int16 round trip: clip to ±1, ``(x · 32767).astype(int16) / 32767`` (truncating, in
    float64 as numpy computes it there: float32 products would truncate some samples differently)."""
    pcm = (np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)
    return (pcm / 32767.0).astype(np.float32)


def fadtk_windows(clip: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """fadtk's windows of one mono clip: (k, 10 s) starting every 1 s from 0 while inside the clip,
    each zero-padded to 10 s — a 10-s clip gives 10 rows, a 2.5-s clip 3."""
    x = np.asarray(clip).reshape(-1)
    window, hop = int(round(FADTK_WINDOW_S * sample_rate_hz)), int(round(FADTK_HOP_S * sample_rate_hz))
    out = np.zeros((len(range(0, x.shape[0], hop)), window), dtype=x.dtype)
    for row, start in enumerate(range(0, x.shape[0], hop)):
        piece = x[start : start + window]
        out[row, : piece.shape[0]] = piece
    return out


# ---------------------------------------------------------------------------------------------------------
# 2. CLAP score


def clap_scores(text_embeddings: np.ndarray, audio_embeddings: np.ndarray) -> np.ndarray:
    """Cosine of each (text, audio) pair of embeddings (n, d): float64 (n,)."""
    t = check_finite(text_embeddings, "CLAP text embeddings")
    a = check_finite(audio_embeddings, "CLAP audio embeddings")
    if t.shape != a.shape:
        raise ValueError(f"text embeddings {t.shape} and audio embeddings {a.shape} must pair up")
    norms = np.linalg.norm(t, axis=1) * np.linalg.norm(a, axis=1)
    return np.sum(t * a, axis=1) / np.maximum(norms, 1e-8)  # torch's cosine_similarity eps


# ---------------------------------------------------------------------------------------------------------
# 3. Fréchet distance, FAD, FAD∞


def check_finite(x: np.ndarray, what: str) -> np.ndarray:
    """`x` as float64, or a ValueError naming the rows of `x` that hold a NaN or an infinity."""
    arr = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1) if arr.ndim else ~np.isfinite(arr)
    if np.any(bad):
        rows = np.flatnonzero(bad)
        shown = ", ".join(map(str, rows[:10])) + (", …" if rows.size > 10 else "")
        raise ValueError(f"{what}: {rows.size} row(s) hold NaN or inf (rows {shown})")
    return arr


def gaussian_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and sample covariance (d, d) of embeddings (n, d), n ≥ 2 finite rows."""
    x = check_finite(embeddings, "embeddings")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"embeddings must be (n, d) with n ≥ 2 to fit a Gaussian; got shape {x.shape}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein²) distance of N(mu1, cov1) and N(mu2, cov2).

    ‖mu1 − mu2‖² + tr(cov1) + tr(cov2) − 2 tr((cov1 cov2)^½), with the trace term computed as
    Σ √λ(√cov1 · cov2 · √cov1): a symmetric PSD matrix, so it stays real for the singular covariances of
    small sets, where fadtk's eigen-decomposition of cov1 · cov2 needs its ε-offset fallback. Tiny
    negative results of round-off are clamped to 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    c1, c2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or c1.shape != c2.shape or c1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} / {mu2.shape}, cov {c1.shape} / {c2.shape}")
    for name, value in (("mu1", mu1), ("cov1", c1), ("mu2", mu2), ("cov2", c2)):
        check_finite(value, f"Fréchet distance {name}")
    w, v = np.linalg.eigh((c1 + c1.T) / 2.0)
    sqrt_c1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = sqrt_c1 @ ((c2 + c2.T) / 2.0) @ sqrt_c1
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0, None)).sum())
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_covmean)
    return max(d, 0.0)


def fad(generated: np.ndarray, reference_stats: tuple[np.ndarray, np.ndarray]) -> float:
    """FAD of generated embedding rows (n, d) against the reference's (mean, covariance)."""
    return frechet_distance(*gaussian_stats(generated), *reference_stats)


@dataclass(frozen=True)
class FadInf:
    """FAD∞ and the fit behind it: FAD(N) ≈ score + slope / N. `score` is None (and `note` says why)
    when there are too few rows for a fit worth reporting."""

    score: float | None
    slope: float | None
    r2: float | None
    ns: tuple[int, ...]
    fads: tuple[float, ...]
    note: str | None = None


def fad_inf_sizes(n_rows: int, min_n: int = FAD_INF_MIN_N, steps: int = FAD_INF_STEPS) -> list[int]:
    """fadtk's subset sizes: ``[int(n) for n in np.linspace(min_n, n_rows, steps)]`` (repeats kept)."""
    return [int(n) for n in np.linspace(min_n, n_rows, steps)]


def fad_inf(
    generated: np.ndarray,
    reference_stats: tuple[np.ndarray, np.ndarray],
    *,
    ns: Sequence[int] | None = None,
    min_n: int = FAD_INF_MIN_N,
    steps: int = FAD_INF_STEPS,
    rng: np.random.Generator | None = None,
) -> FadInf:
    """FAD∞ as fadtk's `score_inf`: for each N in `ns` (default `fad_inf_sizes`), FAD of N rows drawn
    with replacement from `generated` (``rng.choice``, in the order of `ns`); a line in 1/N by
    ``np.polyfit``; its intercept, slope and R².

    Without `ns`, FAD∞ needs at least 2·`min_n` rows, or it is None with a note: below about as many rows
    as the embedding has dimensions a subset's covariance is singular and FAD(N) leaves the 1/N law it
    is fitted with, and below 2·`min_n` the extrapolation from 1/N_max to 0 is longer than the stretch of
    1/N the line was fitted on. `rng` defaults to a fresh `default_rng(0)`.
    """
    gen = check_finite(generated, "FAD∞ generated embeddings")
    n_rows = gen.shape[0]
    if ns is None:
        if n_rows < 2 * min_n:
            note = (
                f"FAD∞ needs ≥ {2 * min_n} embedding rows (2 × fadtk's smallest subset of {min_n}); "
                f"got {n_rows}"
            )
            return FadInf(None, None, None, (), (), note)
        ns = fad_inf_sizes(n_rows, min_n, steps)
    ns = [int(n) for n in ns]
    if len(set(ns)) < 2 or min(ns) < 2:
        raise ValueError(f"FAD∞ needs at least two different subset sizes ≥ 2; got {ns}")
    rng = np.random.default_rng(0) if rng is None else rng
    fads = [fad(gen[rng.choice(n_rows, size=n, replace=True)], reference_stats) for n in ns]
    xs, ys = 1.0 / np.asarray(ns, dtype=np.float64), np.asarray(fads)
    slope, intercept = np.polyfit(xs, ys, 1)
    ss_tot = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ys - (slope * xs + intercept)) ** 2)) / ss_tot if ss_tot > 0 else None
    return FadInf(float(intercept), float(slope), r2, tuple(ns), tuple(float(f) for f in fads))


def none_if_nan(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
