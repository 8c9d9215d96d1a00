"""`noop`: a calibration adapter with a known cost and injectable faults.

It spends `steps × step_time_s` of host time and does no math, so what a sweep of it costs beyond that
is the orchestrator's own overhead. Options inject a fault at chosen grid points:
``{id: noop, options: {fault: oom, fault_when: {steps: 25}}}``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2a_ray.adapters.base import Adapter, Generation, PhaseMarker, no_phases
from t2a_ray.adapters.cards import NOOP
from t2a_ray.errors import InfeasibleError

FAULTS = ("none", "error", "oom", "crash")


class InjectedFault(RuntimeError):
    """The failure the noop adapter was asked to raise."""


class NoopAdapter(Adapter):
    card = NOOP

    def __init__(self, device: str, dtype: str, weights: str, options: Mapping[str, Any]):
        super().__init__(device, dtype, weights)
        self.options = dict(options)
        self.revision = "noop"
        if self.options.get("fault", "none") not in FAULTS:
            raise ValueError(f"noop option fault must be one of {FAULTS}")

    @classmethod
    def load(cls, *, device, dtype, weights, repo=None, revision=None, options=None) -> NoopAdapter:
        options = options or {}
        time.sleep(float(options.get("load_time_s", 0.0)))
        return cls(device, dtype, weights, options)

    def generate(
        self,
        prompts: Sequence[str],
        params: Mapping[str, Any],
        seed: int,
        phases: PhaseMarker = no_phases,
        negative_prompt: str | None = None,
    ) -> Generation:
        phases("text_encoder")
        phases("denoise")
        self._maybe_fault(params)
        time.sleep(params["steps"] * params["step_time_s"])
        phases("decode")
        n_samples = round(params["duration_s"] * self.card.sample_rate_hz)
        waveforms = np.zeros((len(prompts) * params["batch_size"], 1, n_samples), dtype=np.float32)
        return Generation(waveforms, self.card.sample_rate_hz)

    def _maybe_fault(self, params: Mapping[str, Any]) -> None:
        fault = self.options.get("fault", "none")
        when = self.options.get("fault_when") or {}
        if fault == "none" or any(params.get(k) != v for k, v in when.items()):
            return
        marker = self.options.get("fault_marker")
        if marker is not None:  # a fault that happens once: the marker says it has
            if Path(marker).exists():
                return
            Path(marker).touch()
        if fault == "oom":
            raise InfeasibleError(f"injected out-of-memory at {dict(when)}")
        if fault == "error":
            raise InjectedFault(f"injected error at {dict(when)}")
        os._exit(137)  # the actor's process dies, as it would on a segfault or the OOM killer
