"""The plan of one run folder: the units left to run, a cost model primed from what the folder already
holds (seconds per generation in finished shards' footers, load times in earlier workers' logs), and
the plan, written to `logs/plan-attempt-N.json` for `t2a-ray status` and the report."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from t2a_ray.config import Placement, Sweep
from t2a_ray.orchestrator.models import ModelCache
from t2a_ray.orchestrator.plan import CostModel, Plan, Unit, make_plan, make_units
from t2a_ray.runfolder import RunFolder, atomic_write_text
from t2a_ray.schema import read_metadata

log = logging.getLogger(__name__)
PRIOR_SHARDS_PER_MODEL = 20  # finished shards whose footers prime a model's cost (bounded: 10,000 exist)


@dataclass
class RunPlan:
    placement: Placement
    pending: list[Unit]
    plan: Plan
    cost: CostModel
    model_ids: dict[str, str]  # model key → model id

    def models_of(self, worker: int) -> list[str]:
        """The ids of the models the plan has `worker` load, in its running order."""
        return list(dict.fromkeys(self.model_ids[u.model_key] for u in self.plan.queues[worker]))

    def as_dict(self) -> dict[str, Any]:
        return {"placement": self.placement, "units_pending": len(self.pending), **self.plan.summary()}


model_key = ModelCache.key_of


def plan_run(run: RunFolder, sweep: Sweep, n_workers: int, placement: Placement, done: set[str]) -> RunPlan:
    """Units of `sweep` not covered by `done` (finished shards: unit ids, or trial ids of shards that
    hold a whole trial), planned over `n_workers`."""
    trials = sweep.trials()
    units = make_units(trials, sweep, model_key)
    cost = CostModel(min_window_s=sweep.metering.min_window_s, warmup=sweep.warmup)
    cost.prior_load(units)
    shard_of = {u.unit_id: u.unit_id if u.unit_id in done else u.trial_id for u in units}
    finished = [u for u in units if shard_of[u.unit_id] in done]
    _prime(cost, run, {shard_of[u.unit_id]: u for u in finished})
    pending = [u for u in units if shard_of[u.unit_id] not in done]
    plan = make_plan(pending, n_workers, cost, placement, seed=sweep.seed)
    return RunPlan(placement, pending, plan, cost, {model_key(t): t.model.id for t in trials})


def resolve_frozen_placement(run: RunFolder, placement: Placement, n_workers: int) -> tuple[Placement, str]:
    """(placement, how it was decided): the one the run's first plan recorded (the first attempt that
    planned units froze it there), else `placement` resolved for `n_workers` now."""
    for _, path in run.attempt_logs("plan"):
        try:
            frozen = json.loads(path.read_text()).get("placement")
        except (OSError, ValueError, AttributeError):
            continue
        if frozen is not None:
            return Placement(frozen), f"frozen by the run's first plan, {path.name}"
    if placement == Placement.AUTO:
        return placement.resolve(n_workers), f"auto with {n_workers} worker(s)"
    return placement, "as the sweep file says"


def write_plan(run: RunFolder, attempt: int, run_plan: RunPlan, extra: dict[str, Any] | None = None) -> None:
    doc = {**run_plan.as_dict(), **(extra or {})}
    atomic_write_text(run.attempt_log("plan", attempt), json.dumps(doc, indent=2, default=str))


def _prime(cost: CostModel, run: RunFolder, finished: dict[str, Unit]) -> None:
    """Costs from finished shards (shard id → one of its units): seconds per generation and setup."""
    per_model: dict[str, int] = defaultdict(int)
    for shard_id, u in finished.items():
        if per_model[u.cost_key] >= PRIOR_SHARDS_PER_MODEL:
            continue
        try:
            meta = read_metadata(run.shard(shard_id))
        except (OSError, ValueError) as e:  # noqa: PERF203 — a prior is a hint: skip what cannot be read
            log.debug("no prior from %s: %s", shard_id, e)
            continue
        if cost.observe_unit(u, meta):
            per_model[u.cost_key] += 1
    for _, path in run.attempt_logs("workers"):
        try:
            stats = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for s in stats:
            for key, seconds in (s.get("load_s") or {}).items():
                cost.observe_load(key, seconds)
