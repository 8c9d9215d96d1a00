"""Shares of one sweep's units, for independent drivers writing to one run folder (the tasks of a Slurm
job array, each a single-node job with its own Ray).

Share `i/K` holds the units whose key is ≡ i (mod K). The key is the unit's index in the frozen sweep's
unit list (`plan.make_units`) under `spread`, so a configuration's repeats go to different tasks, as
they go to different GPUs within one; and the trial's index under `pack` or where a configuration is one
unit, so its repeats stay together. Both depend on the frozen sweep alone: a requeued or resubmitted
task finds the same share, whatever the others have finished, and no unit is in two shares. Each
driver runs its share as a resume restricted to it (`runner.LaunchOptions.share`), with its own locks
(`RunFolder.lock_file`) and attempt logs; a unit of another share counts, for it, as not its to run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from t2a_ray.config import FROZEN_PLACEMENTS, Placement, Sweep
from t2a_ray.errors import ConfigError
from t2a_ray.orchestrator.models import ModelCache
from t2a_ray.orchestrator.plan import make_units

_SHARE_RE = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Share:
    index: int  # 0-based, as SLURM_ARRAY_TASK_ID of an array `0-(K-1)`
    count: int

    @classmethod
    def parse(cls, text: str) -> Share:
        m = _SHARE_RE.match(text.strip())
        if not m or not int(m[1]) < int(m[2]):
            raise ConfigError(
                "--share", text, "must be I/K with 0 ≤ I < K, e.g. 0/4 (a job array's task I of K)"
            )
        return cls(int(m[1]), int(m[2]))

    @property
    def scope(self) -> str:
        """Its name in the run folder's locks: `share-0-of-4`."""
        return f"share-{self.index}-of-{self.count}"

    def check(self, sweep: Sweep) -> None:
        """A share needs a frozen placement (`auto` is resolved by the first driver, differently by
        GPU count: two tasks would split the units two ways) and a grid (a search asks for the next
        trial from all the finished ones: it cannot be split)."""
        if sweep.placement not in FROZEN_PLACEMENTS:
            raise ConfigError(
                "placement",
                str(sweep.placement),
                f"must be {' or '.join(FROZEN_PLACEMENTS)} in a run folder split into shares; `t2a-ray slurm --array` freezes it",
            )
        if sweep.search.strategy != "grid":
            raise ConfigError(
                "search.strategy",
                sweep.search.strategy,
                "must be grid to split a sweep into shares (--array)",
            )

    def others(self, sweep: Sweep) -> set[str]:
        """The unit ids of `sweep` in the other shares."""
        trials = sweep.trials()
        units = make_units(trials, sweep, ModelCache.key_of)
        trial_index = {t.trial_id: i for i, t in enumerate(trials)}
        by_unit = sweep.placement == Placement.SPREAD
        return {
            u.unit_id
            for i, u in enumerate(units)
            if (i if by_unit and u.unit_id != u.trial_id else trial_index[u.trial_id]) % self.count
            != self.index
        }
