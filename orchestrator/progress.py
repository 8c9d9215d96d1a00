"""The live progress line of a sweep: trials done/total, energy so far, ETA (a Ray Tune callback)."""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback

from t2a_ray.wording import format_duration, format_energy


class ProgressLine(Callback):
    # Tune pickles its callbacks with the experiment state: hold no stream, look it up when printing.
    def __init__(self, total: int, workers: int, enabled: bool = True):
        self.total, self.workers, self.enabled = total, workers, enabled
        self.done = 0
        self.failed = 0
        self.energy_j = 0.0
        self.t0 = time.monotonic()
        self._tty = sys.stderr.isatty()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info) -> None:
        self.done += 1
        self.failed += result.get("status") != "ok"
        self.energy_j += result.get("energy_j") or 0.0
        self._print()

    def _print(self) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.t0
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} trials"
            f"{f' ({self.failed} not ok)' if self.failed else ''} · {format_energy(self.energy_j)} · "
            f"elapsed {format_duration(elapsed)} · ETA {format_duration(eta)}"
        )
        end = "\r" if self._tty and self.done < self.total else "\n"
        print(line, end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self._tty:
            print(file=sys.stderr)
