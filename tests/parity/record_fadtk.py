"""Record what fadtk's own code computes, for `test_fadtk_parity.py` to compare against.

fadtk cannot be a test dependency (an 82 MB wheel pinning numpy < 2 and transformers < 5), so its outputs
on seeded inputs are recorded here, by its own functions:

* ``calc_frechet_distance`` on the statistics of two embedding sets (and of a rank-deficient set);
* ``FrechetAudioDistance.score_inf`` (FAD∞) with the baseline statistics handed in and the eval embeddings
  in a .npy file, after ``np.random.seed(SEED)`` (it draws with numpy's global generator);
* ``CLAPLaionModel._get_embedding``'s windows of three clips (2.5 s, 10 s, 10.5 s at 48 kHz), captured by a
  stand-in for the LAION-CLAP model: their count and the SHA-256 of each window's float32 bytes;
* torchaudio's ``Resample`` with the parameters fadtk's ``load_audio`` gives it, 16 kHz and 44.1 kHz to
  48 kHz (torchaudio's compiled ops are built for one torch version; its resampler is plain torch, so
  the .so files may be deleted where they do not load).

Only fadtk's code runs; the imports it needs for other models (torchaudio, librosa, hypy_utils, …) are
stubbed when absent. Re-record with:

    python -m pip install --no-deps --target /tmp/fadtk fadtk==1.1.0 torchaudio==2.11.1
    rm /tmp/fadtk/torchaudio/lib/*.so
    PYTHONPATH=/tmp/fadtk python tests/parity/record_fadtk.py
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("fadtk_1.1.0.npz")
SEED = 7
CLIP_S = (2.5, 10.0, 10.5)


def inputs() -> dict[str, np.ndarray]:
    """The seeded inputs, made the same way by the test."""
    rng = np.random.default_rng(2026)
    d = 16
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return {
        "reference": rng.normal(size=(2000, d)) @ mix,
        "generated": rng.normal(size=(1200, d)) @ (1.3 * mix) + 0.2,
        "few": rng.normal(size=(9, d)),  # fewer rows than dimensions: a singular covariance
    }


def resample_input(rate_hz: int) -> np.ndarray:
    return (0.3 * np.random.default_rng(rate_hz).standard_normal(rate_hz // 4)).astype(np.float32)


RESAMPLE_RATES_HZ = (16_000, 44_100)


def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [np.clip(0.3 * rng.standard_normal(int(s * 48_000)), -1.2, 1.2) for s in CLIP_S]


def window_hash(window: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(window, dtype=np.float32).tobytes()).hexdigest()


def _stub_missing(names: list[str]) -> None:
    for name in names:
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__path__ = []  # a package, so that its stubbed submodules import

            def anything(attr: str):  # any name fadtk imports from it: a no-op
                if attr.startswith("__"):
                    raise AttributeError(attr)
                return lambda *a, **k: None

            module.__getattr__ = anything
            sys.modules[name] = module


def main() -> None:
    _stub_missing(
        [
            "librosa",
            "soundfile",
            "resampy",
            "hypy_utils",
            "hypy_utils.tqdm_utils",
            "hypy_utils.logging_utils",
            "hypy_utils.downloader",
            "hypy_utils.nlp_utils",
        ]
    )
    sys.modules["hypy_utils.tqdm_utils"].tq = lambda it, **_: it
    sys.modules["hypy_utils.logging_utils"].setup_logger = lambda: __import__("logging").getLogger("fadtk")
    import torch
    from fadtk.fad import FrechetAudioDistance, calc_embd_statistics, calc_frechet_distance
    from fadtk.model_loader import CLAPLaionModel

    x = inputs()
    ref_stats = calc_embd_statistics(x["reference"])
    out: dict[str, np.ndarray] = {"fadtk_version": np.array(importlib.metadata.version("fadtk"))}
    out["fad"] = np.array(calc_frechet_distance(*ref_stats, *calc_embd_statistics(x["generated"])))
    out["fad_few"] = np.array(calc_frechet_distance(*ref_stats, *calc_embd_statistics(x["few"])))

    fad = FrechetAudioDistance.__new__(FrechetAudioDistance)
    fad.ml = types.SimpleNamespace(name="parity")
    fad.load_stats = lambda _baseline: ref_stats
    with tempfile.TemporaryDirectory() as tmp:
        eval_file = Path(tmp) / "eval.npy"
        np.save(eval_file, x["generated"])
        np.random.seed(SEED)
        inf = fad.score_inf("baseline", [eval_file])
    out["fad_inf"] = np.array([inf.score, inf.slope, inf.r2])
    out["fad_inf_points"] = np.array(inf.points, dtype=np.float64)

    class Recorder:
        windows: list[np.ndarray] = []

        def get_audio_embedding_from_data(self, x, use_tensor):
            self.windows.append(x.numpy()[0].copy())
            return torch.zeros((1, 4))

    model = CLAPLaionModel.__new__(CLAPLaionModel)
    model.sr, model.device, model.model = 48_000, torch.device("cpu"), Recorder()
    for i, clip in enumerate(clips()):
        Recorder.windows = []
        model._get_embedding(clip)
        out[f"windows_{i}"] = np.array([window_hash(w) for w in Recorder.windows])

    import torchaudio

    for rate in RESAMPLE_RATES_HZ:  # fadtk's FrechetAudioDistance.load_audio: these parameters
        resampler = torchaudio.transforms.Resample(
            rate,
            48_000,
            lowpass_filter_width=64,
            rolloff=0.9475937167399596,
            resampling_method="sinc_interp_kaiser",
            beta=14.769656459379492,
        )
        out[f"resampled_{rate}"] = resampler(torch.from_numpy(resample_input(rate))[None])[0].numpy()
    np.savez(OUT, **out)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
