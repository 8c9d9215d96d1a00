"""Audio files and sample rates, with numpy and scipy only.

WAV is read by a small RIFF reader (stdlib `struct`): 8/16/24/32-bit PCM and 32/64-bit IEEE float,
plain or WAVE_FORMAT_EXTENSIBLE — the stdlib `wave` module reads PCM only, and generated audio is often
saved as float. Other formats (.flac, .ogg, …) are read through `soundfile` when it is installed.
"""

from __future__ import annotations

import math
import os
import struct
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from t2a_ray.runfolder import atomic_write

WAV_SUFFIXES = (".wav", ".wave")
SOUNDFILE_SUFFIXES = (".flac", ".ogg", ".oga", ".aiff", ".aif")

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def audio_suffixes() -> tuple[str, ...]:
    """The suffixes `read_audio` can read here (soundfile's only when it is installed)."""
    return WAV_SUFFIXES + (SOUNDFILE_SUFFIXES if _soundfile() is not None else ())


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 samples shaped (channels, samples) in [-1, 1], and its rate in Hz."""
    p = Path(path)
    sf = _soundfile()
    if sf is not None:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(rate)
    if p.suffix.lower() not in WAV_SUFFIXES:
        raise ValueError(
            f"{p}: reading {p.suffix} needs the soundfile package (pip install soundfile); "
            "without it only .wav files are read"
        )
    return read_wav(p)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a RIFF/WAVE file: (float32 samples (channels, samples), sample rate in Hz)."""
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    fmt = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(body, path)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError(f"{path}: data chunk before fmt chunk")
            return _decode(body, *fmt, path=path)
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    raise ValueError(f"{path}: no fmt/data chunk")


def _parse_fmt(body: bytes, path) -> tuple[int, int, int, int]:
    if len(body) < 16:
        raise ValueError(f"{path}: truncated fmt chunk")
    code, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if code == _EXTENSIBLE and len(body) >= 26:
        code = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
    if channels < 1 or block_align != channels * ((bits + 7) // 8):
        raise ValueError(f"{path}: inconsistent fmt chunk (channels={channels}, bits={bits})")
    return code, channels, rate, bits


def _decode(body: bytes, code: int, channels: int, rate: int, bits: int, path) -> tuple[np.ndarray, int]:
    width = (bits + 7) // 8
    n = len(body) // (width * channels)
    raw = body[: n * width * channels]
    if code == _FLOAT and bits in (32, 64):
        x = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    elif code == _PCM and width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif code == _PCM and width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif code == _PCM and width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif code == _PCM and width == 4:
        x = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        raise ValueError(f"{path}: unsupported WAV encoding (format code {code}, {bits} bits)")
    return np.ascontiguousarray(x.reshape(n, channels).T), int(rate)


def write_wav(path: str | os.PathLike, waveform: np.ndarray, sample_rate_hz: int) -> Path:
    """Write (channels, samples) or (samples,) float audio in [-1, 1] as 16-bit PCM WAV (stdlib `wave`),
    atomically: values beyond ±1 are clipped, the rest rounded to the nearest of ±32767 steps."""
    x = np.asarray(waveform, dtype=np.float64)
    x = x[None, :] if x.ndim == 1 else x
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")

    def write(f) -> None:
        with wave.open(f, "wb") as w:
            w.setnchannels(pcm.shape[0])
            w.setsampwidth(2)
            w.setframerate(int(sample_rate_hz))
            w.writeframes(np.ascontiguousarray(pcm.T).tobytes())

    p = Path(path)
    atomic_write(p, write)
    return p


def as_batch(waveforms: np.ndarray) -> np.ndarray:
    """Waveforms as float32 (n, channels, samples); (n, samples) is taken as n mono waveforms."""
    x = np.asarray(waveforms, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[-1] == 0:
        raise ValueError(
            f"waveforms must be shaped (n, channels, samples) or (n, samples) with samples > 0; got {x.shape}"
        )
    return x


def to_mono(waveforms: np.ndarray) -> np.ndarray:
    """(n, channels, samples) → (n, samples), the mean over channels."""
    return as_batch(waveforms).mean(axis=1)


# fadtk resamples to the embedding model's rate with torchaudio's Kaiser-windowed sinc, set so:
KAISER_ZERO_CROSSINGS = 64  # torchaudio's lowpass_filter_width
KAISER_ROLLOFF = 0.9475937167399596  # cutoff, as a fraction of the lower rate's Nyquist frequency
KAISER_BETA = 14.769656459379492


def resample(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample along the last axis: scipy's polyphase filter (exact rational ratio, e.g. 16 k → 48 k
    is ×3) with a low-pass designed as torchaudio's ``sinc_interp_kaiser`` with fadtk's parameters (the
    constants above), so the result equals torchaudio's to about 1e-4 of the signal's RMS
    (`tests/parity/test_fadtk_parity.py`)."""
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"sample rates must be positive; got {from_hz} Hz → {to_hz} Hz")
    if from_hz == to_hz:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import firwin, resample_poly

    ratio = Fraction(int(to_hz), int(from_hz))
    up, down = ratio.numerator, ratio.denominator
    half = math.ceil(KAISER_ZERO_CROSSINGS * max(up, down) / KAISER_ROLLOFF)  # taps either side
    taps = firwin(2 * half + 1, KAISER_ROLLOFF / max(up, down), window=("kaiser", KAISER_BETA))
    return resample_poly(np.asarray(x, np.float64), up, down, axis=-1, window=taps).astype(np.float32)


def _soundfile():
    try:
        import soundfile
    except ImportError:  # optional: not one of the project's dependencies
        return None
    return soundfile
