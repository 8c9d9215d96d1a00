"""When each phase of a launch happened, in seconds from its start: what the fixed cost around the
sweep phase is made of (Ray's start, the workers' start and preparation, Tune's end, the merge).

The driver marks its own phases as they end; the workers' (prepared, first unit started, last unit
ended) come from their own clocks, as unix seconds, so one host's or a synchronised cluster's. Written
to `logs/timeline-attempt-N.json`:

    {"launch_unix_s": …, "phases_s": {"ray_up": 2.1, …, "merge_done": 41.0},
     "workers": [{"worker": 0, "prepared_s": …, "first_unit_started_s": …, "last_unit_ended_s": …}, …]}

(The steps of each worker's preparation are in its own record, `logs/gpus-attempt-N.json`.)

`phases_s` follow one another in `PHASES` order (a phase missing where it did not happen: no unit ran).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t2a_ray.runfolder import atomic_write_text

PHASES = (
    "ray_up",
    "workers_started",  # every worker answers a ping (its process is up, its meter open)
    "first_worker_prepared",
    "first_unit_started",
    "last_unit_ended",
    "tune_finished",
    "workers_shut_down",
    "ray_down",
    "merge_done",
)


class LaunchTimeline:
    def __init__(self) -> None:
        self.launch_unix_s = time.time()
        self.phases_s: dict[str, float] = {}
        self.workers: list[dict[str, Any]] = []

    def mark(self, phase: str, at_unix_s: float | None = None) -> None:
        """`phase` (one of `PHASES`) ended now, or at `at_unix_s`."""
        if phase not in PHASES:
            raise ValueError(f"unknown launch phase {phase!r} (known: {', '.join(PHASES)})")
        self.phases_s[phase] = (time.time() if at_unix_s is None else at_unix_s) - self.launch_unix_s

    def add_workers(self, prepared: Sequence[Any], stats: Sequence[Any]) -> None:
        """Each worker's own times, from its `prepare` result and its `stats` (an exception where the
        worker could not answer); the first prepared, first unit started and last unit ended of all."""
        for i, (p, s) in enumerate(zip(prepared, stats, strict=True)):
            p = p if isinstance(p, dict) else {}
            s = s if isinstance(s, dict) else {}
            self.workers.append(
                {
                    "worker": i,
                    "prepared_s": self._since(p.get("prepared_unix_s")),
                    "first_unit_started_s": self._since(s.get("first_start_unix_s")),
                    "last_unit_ended_s": self._since(s.get("last_end_unix_s")),
                }
            )
        for phase, key, pick in (
            ("first_worker_prepared", "prepared_s", min),
            ("first_unit_started", "first_unit_started_s", min),
            ("last_unit_ended", "last_unit_ended_s", max),
        ):
            times = [w[key] for w in self.workers if w[key] is not None]
            if times:
                self.phases_s[phase] = pick(times)

    def _since(self, unix_s: float | None) -> float | None:
        return None if unix_s is None else unix_s - self.launch_unix_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "launch_unix_s": self.launch_unix_s,
            "phases_s": {p: self.phases_s[p] for p in PHASES if p in self.phases_s},
            "workers": self.workers,
        }

    def write(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.as_dict(), indent=2))
