"""`t2a-ray status`: what a run folder says — trials by outcome, energy so far, an ETA, the plan and
each worker's loads, busy time and idle gaps. No Ray needed.

A trial's shards are its units (`plan.py`): the whole trial, or one repeat each; a trial counts as
finished once its shards cover every repeat.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from t2a_ray.analysis.failures import Failures, find_failures
from t2a_ray.frozen import load_run_sweep
from t2a_ray.orchestrator.slurm import submitted_jobs
from t2a_ray.runfolder import RunFolder, parse_unit_id
from t2a_ray.schema import shard_metadata, trial_status
from t2a_ray.wording import format_duration, format_energy


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
    failures: Failures | None = None  # the finished trials that failed or are infeasible, by error
    root: str = "RUN"  # the run folder, for the commands the text suggests
    shares: dict[str, str] = field(default_factory=dict)  # share → "PID HOST" of its driver (job arrays)
    slurm_submitted: list[str] = field(default_factory=list)  # job ids `t2a-ray slurm --submit` gave
    slurm_ran: dict[int, list[str]] = field(
        default_factory=dict
    )  # attempt → the Slurm job(s) its workers ran in

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
        for share, holder in self.shares.items():
            lines.append(f"driver    {share}: running now ({holder or 'pid unknown'})")
        if self.slurm_submitted or self.slurm_ran:
            ran = ", ".join(f"attempt {a}: {'+'.join(jobs)}" for a, jobs in self.slurm_ran.items())
            lines.append(
                "slurm     "
                + (f"job(s) submitted {', '.join(self.slurm_submitted)}" if self.slurm_submitted else "")
                + ("; " if self.slurm_submitted and ran else "")
                + (f"ran in {ran}" if ran else "")
                + " (`squeue -j ID` for a job's state)"
            )
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
        if self.failures is not None:
            lines.append(self.failures.text())
            if self.failed:
                lines.append(
                    f"          `t2a-ray resume {self.root} --retry-failed` runs the {self.failed} failed again"
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
    errors: dict[str, list[tuple[str, str]]] = {}  # per trial, each shard's (status, error) (footer)
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
        errors.setdefault(trial_id, []).append((meta.get("status"), meta.get("error")))
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
    outcomes: dict[str, str] = {}
    for trial_id, repeats in covered.items():
        if len(repeats) == sweep.repeats:
            outcomes[trial_id] = trial_status(statuses[trial_id])
            counts[outcomes[trial_id]] += 1
    finished = sum(counts.values())
    repeats_left = sweep.repeats * len(ids) - sum(len(r) for r in covered.values())
    workers = run.latest_log("workers") or []
    n_workers = len(run.latest_log("gpus") or []) or 1
    # the mean, not the median: the units that loaded a model or compiled a runtime are few but long,
    # and the units left have theirs to come too
    eta = statistics.fmean(walls_per_repeat) * repeats_left / n_workers if walls_per_repeat else None
    slurm_ran = {}
    for attempt, path in run.attempt_logs("gpus"):
        try:
            places = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        jobs = sorted({_job_label(p) for p in places if p.get("slurm_job_id")})
        if jobs:
            slurm_ran[attempt] = jobs
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
        _failures(sweep, outcomes, errors),
        str(run.root),
        run.running_scoped_drivers(),
        [str(j.get("job_id")) for j in submitted_jobs(run)],
        slurm_ran,
    )


def _failures(sweep: Any, outcomes: dict[str, str], errors: dict[str, list[tuple[str, str]]]) -> Failures:
    """The finished trials' failures, from their footers: one row per trial, its settings and outcome."""
    trials = [t for t in sweep.trials() if t.trial_id in outcomes]
    if not trials:
        return Failures((), 0)
    rows = pd.DataFrame(
        [
            {
                "trial_id": t.trial_id,
                "model": t.model.id,
                **t.params,
                "status": outcomes[t.trial_id],
                # the error of a shard with the trial's outcome (a trial of several units may have others)
                "error": next((e for s, e in errors[t.trial_id] if s == outcomes[t.trial_id] and e), None),
            }
            for t in trials
        ]
    )
    return find_failures(rows, ["trial_id"], list(dict.fromkeys(k for t in trials for k in t.params)))


def _job_label(place: dict[str, Any]) -> str:
    """A worker's Slurm job, as squeue names it: `ID`, or `ID (task K)` for an array's task."""
    task = place.get("slurm_array_task_id")
    return f"{place['slurm_job_id']}" + (f" (task {task})" if task is not None else "")
