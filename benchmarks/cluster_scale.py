"""A sweep of many tiny `noop` trials on logical GPUs: what the orchestrator itself costs at scale.

Records, for N trials (default 10,000) on W logical GPUs of this machine:
* the sweep's wall time and the driver's overhead per trial (wall time and CPU time of the driver
  process, per trial, beyond the trials' own latency);
* the time to merge the shards into results.parquet, from the shards (as a launch does) and again on
  the finished run (`merge_results` then reads the merged file alone);
* peak memory (RSS) of the driver and of its whole process tree (Ray's processes included), sampled;
* the time a `resume` of the finished run takes (footer checks of every shard, nothing to run).

    python benchmarks/cluster_scale.py --trials 10000 --workers 2 --card "CPU dev machine"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

from t2a_ray.config import parse_sweep
from t2a_ray.orchestrator.reaper import descendants
from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import merge_results

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss_bytes(root_pid: int) -> tuple[int, int]:
    """(RSS of `root_pid`, RSS of it and all its descendants), from /proc."""
    rss = {pid: _rss_bytes(pid) for pid in [root_pid, *(p for p, _ in descendants(root_pid))]}
    return rss[root_pid], sum(rss.values())


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:  # it ended meanwhile
        return 0


class PeakMemory(threading.Thread):
    def __init__(self, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.every_s, self.driver, self.tree = every_s, 0, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            d, t = tree_rss_bytes(os.getpid())
            self.driver, self.tree = max(self.driver, d), max(self.tree, t)
            self._done.wait(self.every_s)

    def stop(self) -> None:
        self._done.set()
        self.join()


def sweep_doc(n_trials: int, step_time_s: float) -> dict:
    steps = list(range(1, 101))
    guidance = [round(1.0 + 0.01 * i, 2) for i in range(-(-n_trials // len(steps)))]
    return {
        "name": "scale",
        "models": ["noop"],
        "weights": "tiny",
        "dtype": "float32",
        "placement": "pack",
        "grid": {"steps": steps, "guidance_scale": guidance, "step_time_s": step_time_s, "duration_s": 0.1},
        "prompts": {"text": ["a"]},
        "repeats": 1,
        "warmup": 0,
        "metering": {"idle_baseline_s": 0},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=10_000, help="rounded up to a multiple of 100")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--step-time-s", type=float, default=0.0001, help="noop: per step (steps 1–100)")
    p.add_argument("--card", default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()
    os.environ["T2A_RAY_LOGICAL_GPUS"] = "1"
    doc = sweep_doc(args.trials, args.step_time_s)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = parse_sweep(doc, Path(tmp), default_name="scale")
        trials = sweep.trials()
        latency_s = sum(t.params["steps"] * t.params["step_time_s"] for t in trials)
        run = RunFolder(Path(tmp) / "scale")
        run.create(sweep.to_yaml())
        memory = PeakMemory()
        memory.start()
        cpu0, t0 = time.process_time(), time.perf_counter()
        outcome = run_sweep(run, LaunchOptions(gpus=args.workers, progress=False))
        wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        memory.stop()
        t = time.perf_counter()
        merge_results(run)  # the merged file holds them all already
        merge_again_s = time.perf_counter() - t
        t = time.perf_counter()
        resumed = run_sweep(run, LaunchOptions(gpus=args.workers, progress=False))
        resume_s = time.perf_counter() - t
        plan = run.latest_log("plan")
    record = {
        "date": dt.date.today().isoformat(),
        "card": args.card or platform.node(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "trials": len(trials),
        "workers": args.workers,
        "statuses": outcome.statuses,
        "tune_trials": plan.get("tune_trials"),
        "wall_s": wall_s,
        "trial_latency_total_s": latency_s,
        "driver_overhead_per_trial_s": (wall_s - latency_s / args.workers) / len(trials),
        "driver_cpu_per_trial_s": cpu_s / len(trials),
        "merge_from_shards_s": outcome.merge_s,  # the launch's own merge
        "merge_finished_run_s": merge_again_s,
        "resume_finished_run_s": resume_s,
        "resume_ran": resumed.ran,
        "peak_rss_driver_bytes": memory.driver,
        "peak_rss_tree_bytes": memory.tree,
        "driver_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "sweep": doc,
    }
    print(json.dumps({k: v for k, v in record.items() if k != "sweep"}, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cluster_scale_noop_cpu.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
