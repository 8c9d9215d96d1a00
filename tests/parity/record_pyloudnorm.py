"""Record what pyloudnorm's ``normalize.peak`` computes, for `test_pyloudnorm_parity.py` to compare
`t2a_ray.analysis.quality.peak_normalise` against.

stable-audio-metrics (``src/clap_score.py``) loads each clip mono at 48 kHz with librosa (float32) and
calls ``pyln.normalize.peak(audio, -1.0)`` on it, one clip per call; the clips below are float32 like
librosa's, and each is recorded from its own call. pyloudnorm is not a dependency of the product or the
tests; re-record with:

    python -m pip install --no-deps --target /tmp/pln pyloudnorm==0.2.0
    PYTHONPATH=/tmp/pln python tests/parity/record_pyloudnorm.py
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("pyloudnorm_0.2.0.npz")
TARGET_DBFS = -1.0
N_SAMPLES = 480  # 10 ms at 48 kHz: the gain does not depend on the length


def inputs() -> dict[str, np.ndarray]:
    """The seeded float32 clips, made the same way by the test."""
    rng = np.random.default_rng(11)

    def scaled(peak: float) -> np.ndarray:
        x = rng.standard_normal(N_SAMPLES)
        return (x * (peak / np.max(np.abs(x)))).astype(np.float32)

    negative = scaled(0.5)
    negative[100] = -0.75  # the largest |sample| is negative
    return {
        "noise": scaled(0.3),
        "silence": np.zeros(N_SAMPLES, np.float32),
        "at_minus_1_dbfs": scaled(10.0 ** (TARGET_DBFS / 20.0)),
        "above_0_dbfs": scaled(3.0),
        "quiet": scaled(1e-4),
        "negative_peak": negative,
    }


def main() -> None:
    import pyloudnorm as pyln

    out: dict[str, np.ndarray] = {}
    for name, clip in inputs().items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out[name] = np.asarray(pyln.normalize.peak(clip, TARGET_DBFS))
        out[f"{name}_warnings"] = np.array([str(w.message) for w in caught], dtype=str)
    out["version"] = np.array(importlib.metadata.version("pyloudnorm"))
    np.savez(OUT, **out)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
