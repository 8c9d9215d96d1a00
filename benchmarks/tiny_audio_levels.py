"""How loud each tiny model's audio is: peak, RMS, clipped share, and how much the steps change it.

Writes a Markdown table (stdout) for benchmarks/results/tiny_audio_levels.md. CPU, float32, seed 0, two
prompts, 1 s; "steps change" is the RMS of the difference between 5 and 40 steps, beside the RMS.

    python benchmarks/tiny_audio_levels.py > benchmarks/results/tiny_audio_levels.md
    python benchmarks/tiny_audio_levels.py --without-init-audible   # the vocoders' own initialisation
"""

from __future__ import annotations

import datetime
import platform
import sys

import numpy as np

from t2a_ray.adapters import adapter_class, model_ids

PROMPTS = ["A dog barks", "Rain on a roof"]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def main(args: list[str]) -> None:
    if "--without-init-audible" in args:  # as before _components.init_audible existed
        from t2a_ray.adapters import _bigvgan, _components

        _components.init_audible = _bigvgan.init_audible = lambda *a, **kw: None
    print("# Tiny models' audio levels\n")
    print(f"- machine: {platform.node()}, CPU, float32\n- date: {datetime.date.today()}")
    print(f"- command: `{' '.join(['python benchmarks/tiny_audio_levels.py', *args])}`\n")
    print("| model | peak | RMS | share ≥ 0.99 | RMS of (5 steps − 40 steps) |")
    print("| --- | --- | --- | --- | --- |")
    for model_id in (m for m in model_ids() if m != "noop"):
        adapter = adapter_class(model_id).load(device="cpu", dtype="float32", weights="tiny")
        few, more = (
            adapter.generate(PROMPTS, {"steps": steps, "duration_s": 1.0}, seed=0).waveforms
            for steps in (5, 40)
        )
        print(
            f"| {model_id} | {np.abs(few).max():.3g} | {rms(few):.3g} | {np.mean(np.abs(few) >= 0.99):.3g} "
            f"| {rms(few - more):.3g} |",
            flush=True,
        )
        adapter.unload()


if __name__ == "__main__":
    main(sys.argv[1:])
