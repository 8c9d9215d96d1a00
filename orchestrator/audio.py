"""Generated audio to disk (optional, outside the energy windows): 16-bit PCM WAV, stdlib only."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from t2a_ray.runfolder import atomic_write


def write_wav(path: Path, waveform: np.ndarray, sample_rate_hz: int) -> None:
    """`waveform` is float32 shaped (channels, samples) in [-1, 1]; values beyond are clipped."""
    pcm = (np.clip(waveform, -1.0, 1.0) * 32767.0).astype("<i2")

    def write(f) -> None:
        with wave.open(f, "wb") as w:
            w.setnchannels(pcm.shape[0])
            w.setsampwidth(2)
            w.setframerate(int(sample_rate_hz))
            w.writeframes(np.ascontiguousarray(pcm.T).tobytes())

    atomic_write(path, write)
