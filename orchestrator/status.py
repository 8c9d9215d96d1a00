"""`t2a-ray status`: what a run folder says — trials by outcome, energy so far, an ETA. No Ray needed."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

import pyarrow.parquet as pq

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator.progress import format_duration, format_energy
from t2a_ray.runfolder import RunFolder
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
        if self.unreadable:
            lines.append(
                f"warning   {self.unreadable} shard(s) cannot be read; `t2a-ray resume` moves them aside and reruns their trials"
            )
        return "\n".join(lines)


def run_status(run: RunFolder) -> RunStatus:
    sweep = load_sweep(run.sweep_yaml)
    ids = {t.trial_id for t in sweep.trials()}
    counts = {"ok": 0, "infeasible": 0, "failed": 0}
    energy, walls, unreadable, finished = [], [], 0, 0
    for path in run.shard_paths():
        try:
            shard = pq.ParquetFile(path)
            table = shard.read(columns=["status", "gpu_energy_j", "cpu_energy_j"])
            meta = shard_metadata(shard.schema_arrow)
        except Exception:  # noqa: BLE001 — a damaged shard is counted, not fatal
            unreadable += 1
            continue
        if path.name[: -len(".parquet")] not in ids:
            continue
        finished += 1
        counts[trial_status(table.column("status").to_pylist())] += 1
        for gpu, cpu in zip(
            table.column("gpu_energy_j").to_pylist(), table.column("cpu_energy_j").to_pylist(), strict=True
        ):
            value = gpu if gpu is not None else cpu
            if value is not None:
                energy.append(value)
        if meta.get("wall_s"):
            walls.append(meta["wall_s"])
    pending = len(ids) - finished
    eta = statistics.median(walls) * pending / _workers(run) if walls else None
    return RunStatus(
        sweep.name,
        len(ids),
        counts["ok"],
        counts["infeasible"],
        counts["failed"],
        pending,
        unreadable,
        sum(energy) if energy else None,
        eta,
        run.running_driver(),
    )


def _workers(run: RunFolder) -> int:
    files = sorted(run.logs_dir.glob("gpus-attempt-*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        return 1
    try:
        return max(1, len(json.loads(files[-1].read_text())))
    except (OSError, ValueError):
        return 1
