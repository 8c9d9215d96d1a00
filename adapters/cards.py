"""The catalog: one ModelCard per model, pure data (no torch), and where each is implemented.

Figures come from the public model configs and conversion scripts named in each card's notes.
"""

from __future__ import annotations

from t2a_ray.adapters.base import ModelCard, ParamSpec


def steps(default: int) -> ParamSpec:
    return ParamSpec("steps", int, default, "denoising steps", minimum=1, maximum=1000)


def guidance(default: float) -> ParamSpec:
    return ParamSpec("guidance_scale", float, default, "classifier-free guidance scale (0 or 1: off)", minimum=0.0, maximum=100.0)


def duration(default: float, low: float, high: float) -> ParamSpec:
    return ParamSpec("duration_s", float, default, "length of the generated audio", unit="s", minimum=low, maximum=high)


BATCH = ParamSpec("batch_size", int, 1, "waveforms generated per prompt in one call", minimum=1, maximum=256)


NOOP = ModelCard(
    id="noop",
    summary="Calibration adapter: sleeps steps × step_time_s, no math; can inject a failure",
    pipeline="t2a_ray calibration",
    repo=None,
    revision=None,
    sample_rate_hz=16_000,
    channels=1,
    params=(
        steps(10),
        guidance(1.0),
        duration(1.0, 0.1, 600.0),
        BATCH,
        ParamSpec("step_time_s", float, 0.005, "host time spent per denoising step", unit="s", minimum=0.0, maximum=60.0),
    ),
    weight_modes=("pretrained", "random", "tiny"),
    phases=("text_encoder", "denoise", "decode"),
    notes="Measures the orchestrator's own overhead; no model is loaded in any weight mode.",
    options={
        "fault": "none | error | oom | crash: what to inject",
        "fault_when": "mapping of grid values that selects the trials to fault, e.g. {steps: 25}",
        "fault_marker": "crash only: a file path; crash only while it does not exist (then create it)",
        "load_time_s": "seconds `load` takes (default 0)",
    },
)

CARDS: dict[str, ModelCard] = {card.id: card for card in (NOOP,)}

IMPLEMENTATIONS: dict[str, str] = {
    "noop": "t2a_ray.adapters.noop:NoopAdapter",
}
