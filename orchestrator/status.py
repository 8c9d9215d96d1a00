"""`t2a-ray status`: what a run folder says — trials by outcome, energy so far, an ETA, the plan and
each worker's loads, busy time and idle gaps. No Ray needed.

A trial's shards are its units (`plan.py`): the whole trial, or one repeat each; a trial counts as
finished once its shards cover every repeat.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from t2a_ray.frozen import load_run_sweep
from t2a_ray.orchestrator.progress import format_duration, format_energy
from t2a_ray.runfolder import RunFolder, parse_unit_id
from t2a_ray.schema import shard_metadata, trial_status


@dataclass
class RunStatus:
    name: str
    total: int
    ok: int
    infeasible: int
    failed: int
    pending: int
    unreadable: int
    energy_j: float | None
    eta_s: float | None
    driver: str | None = None  # "PID HOST" of the driver running the sweep now; None: none runs
    plan: dict[str, Any] | None = None  # the latest attempt's plan (logs/plan-attempt-N.json)
    workers: list[dict[str, Any]] = field(default_factory=list)  # its workers' statistics

    def text(self) -> str:
        eta = (
            "done"
            if self.pending == 0
            else (format_duration(self.eta_s) if self.eta_s is not None else "unknown")
        )
        lines = [
            f"run       {self.name}",
            f"trials    {self.total}: {self.ok} ok, {self.infeasible} infeasible, {self.failed} failed, {self.pending} pending",
            f"energy    {format_energy(self.energy_j)} so far (GPU where metered, else CPU estimate)",
            f"ETA       {eta}",
            "driver    "
            + (
                "none running" + (" (`t2a-ray resume` continues the sweep)" if self.pending else "")
                if self.driver is None
                else f"running now ({self.driver or 'pid unknown'})"
            ),
        ]
        if self.plan:
            lines.append(
                f"plan      {self.plan.get('placement')} over {len(self.plan.get('workers', []))} worker(s), "
                f"{self.plan.get('units_pending')} unit(s) predicted to take "
                f"{format_duration(self.plan.get('makespan_s') or 0.0)}"
                + (
                    f"; {self.plan['dispatch']['stolen']} taken by an idle worker"
                    if "dispatch" in self.plan
                    else ""
                )
            )
        for w in self.workers:
            if "error" in w:
                lines.append(f"worker {w.get('worker', '?')}  {w['error']}")
                continue
            gaps = w.get("gaps_s") or []
            lines.append(
                f"worker {w['worker']}  {w.get('gpu_name') or w.get('device') or ''}@{w.get('node')}: "
                f"{sum((w.get('loads') or {}).values())} load(s), {w.get('warmups', 0)} warm-up(s), "
                f"busy {format_duration(w.get('busy_s') or 0.0)}, "
                f"in windows {format_duration(w.get('window_s') or 0.0)}, {len(gaps)} gap(s) between units "
                f"{sum(gaps):.1f} s (longest {max(gaps, default=0.0):.1f} s)"
            )
        if self.unreadable:
            lines.append(
                f"warning   {self.unreadable} shard(s) cannot be read; `t2a-ray resume` moves them aside and reruns their trials"
            )
        return "\n".join(lines)


def run_status(run: RunFolder) -> RunStatus:
    sweep = load_run_sweep(run)  # the trials frozen at launch, never expanded again
    ids = {t.trial_id for t in sweep.trials()}
    covered: dict[str, set[int]] = {}
    statuses: dict[str, list[str]] = {}
    energy, walls_per_repeat, unreadable = [], [], 0
    for path in run.shard_paths():
        if path.is_symlink():  # never one of the run's shards (`schema.ShardOwner`): resume moves it aside
            continue
        trial_id, repeats = parse_unit_id(path.name[: -len(".parquet")], sweep.repeats)
        try:
            shard = pq.ParquetFile(path)
            table = shard.read(columns=["status", "gpu_energy_j", "cpu_energy_j"])
            meta = shard_metadata(shard.schema_arrow)
        except Exception:  # noqa: BLE001 — a damaged shard is counted, not fatal
            unreadable += 1
            continue
        if trial_id not in ids:
            continue
        covered.setdefault(trial_id, set()).update(repeats)
        statuses.setdefault(trial_id, []).extend(table.column("status").to_pylist())
        for gpu, cpu in zip(
            table.column("gpu_energy_j").to_pylist(), table.column("cpu_energy_j").to_pylist(), strict=True
        ):
            value = gpu if gpu is not None else cpu
            if value is not None:
                energy.append(value)
        if meta.get("wall_s"):
            walls_per_repeat.append(meta["wall_s"] / len(repeats))
    counts = {"ok": 0, "infeasible": 0, "failed": 0}
    for trial_id, repeats in covered.items():
        if len(repeats) == sweep.repeats:
            counts[trial_status(statuses[trial_id])] += 1
    finished = sum(counts.values())
    repeats_left = sweep.repeats * len(ids) - sum(len(r) for r in covered.values())
    workers = run.latest_log("workers") or []
    n_workers = len(run.latest_log("gpus") or []) or 1
    # the mean, not the median: the units that loaded a model or compiled a runtime are few but long,
    # and the units left have theirs to come too
    eta = statistics.fmean(walls_per_repeat) * repeats_left / n_workers if walls_per_repeat else None
    return RunStatus(
        sweep.name,
        len(ids),
        counts["ok"],
        counts["infeasible"],
        counts["failed"],
        len(ids) - finished,
        unreadable,
        sum(energy) if energy else None,
        eta,
        run.running_driver(),
        run.latest_log("plan"),
        workers,
    )
