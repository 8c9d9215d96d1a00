"""Quality of a configuration, scored on the worker after its energy windows (CLAP, FAD, FAD∞).

The scorer follows the sweep's weight mode: `tiny` and `random` CLAP models are built locally (their
scores mean nothing, their cost is real); `pretrained` loads `quality.clap` (a hub id or folder) or the
paper's checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from t2a_ray.config import QualityConfig


class QualityScorer:
    def __init__(self, quality: QualityConfig, weights: str, device: str, cache_dir: Path):
        from t2a_ray.analysis.quality import ClapAudioEmbedder, load_clap, load_reference

        source = quality.clap if isinstance(quality.clap, str) and weights == "pretrained" else None
        self.clap = load_clap(weights, source, device) if quality.clap else None
        self.embedder = self.reference = None
        if quality.fad_reference:
            # FAD as fadtk computes it: the unfused CLAP (630k-audioset) audio embedding
            self.embedder = ClapAudioEmbedder(load_clap(weights, None, device, fusion=False))
            self.reference = load_reference(quality.fad_reference, self.embedder, cache_dir=cache_dir)

    def score(
        self, trial_id: str, texts: list[str], waveforms: np.ndarray, sample_rate_hz: int
    ) -> dict[str, Any]:
        from t2a_ray.analysis.quality import score_configuration

        return score_configuration(
            trial_id,
            texts,
            waveforms,
            sample_rate_hz,
            clap=self.clap,
            fad_embedder=self.embedder,
            reference=self.reference,
        )
