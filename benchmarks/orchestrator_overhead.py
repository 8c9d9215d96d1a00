"""What the orchestration costs: the same trials (a) in a bare loop, (b) through `t2a-ray launch`.

(a) builds one worker in this process (the model loaded once, the same meter, the same trial code,
the same shards) and runs the trials one after another; (b) is the product: a local Ray, a GPU actor,
Ray Tune scheduling one trial per configuration. Both run the same sweep file, into two run folders.

Prints and writes (markdown + JSON): wall time of each, their ratio, the ratio in steady state (first
trial start to last trial end, i.e. without Ray's start-up), the median per-trial overhead (the
worker's idle gap between two trials), and the fraction of wall time spent inside metered windows.

    python benchmarks/orchestrator_overhead.py --model noop --trials 50 --gpus 0           # CPU
    python benchmarks/orchestrator_overhead.py --model audioldm --weights random --gpus 1   # GPU
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from keep_runs import keep_run, runs_dir

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep
from t2a_ray.orchestrator.worker import Worker
from t2a_ray.runfolder import RunFolder


def sweep_doc(args) -> dict:
    steps = list(range(args.first_step, args.first_step + args.trials))  # one configuration per trial
    grid = {"steps": steps, "duration_s": args.duration_s}
    if args.model == "noop":
        grid["step_time_s"] = args.step_time_s
    return {
        "name": "overhead",
        "models": [args.model],
        "weights": args.weights,
        "dtype": "float16" if args.gpus else "float32",
        "grid": grid,
        "prompts": {
            "text": [
                "Water running out of a faucet, some hitting a sink bottom, and some water filling a cup"
            ]
        },
        "repeats": 1,
        "warmup": args.warmup,
        "metering": {"idle_baseline_s": args.idle_baseline_s, "min_window_s": 0.0},
    }


def new_run(root: Path, name: str, doc: dict) -> RunFolder:
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump(doc))
    run = RunFolder(root / name)
    run.create(load_sweep(config, name=name).to_yaml())
    return run


def bare_loop(run: RunFolder) -> dict:
    t0 = time.perf_counter()
    worker = Worker(str(run.root), 0)
    worker.prepare()
    ids = list(worker.trials)
    first = time.perf_counter()
    for tid in ids:
        worker.run_trial(tid)
    last = time.perf_counter()
    stats = worker.stats()
    worker.shutdown()
    return {"wall_s": last - t0, "steady_s": last - first, **_summary(stats)}


def through_launch(run: RunFolder, gpus: int) -> dict:
    t0 = time.perf_counter()
    outcome = run_sweep(run, LaunchOptions(gpus=gpus, progress=False))
    wall = time.perf_counter() - t0
    stats = outcome.worker_stats[0]
    return {
        "wall_s": wall,
        "steady_s": stats["busy_s"] + sum(stats["gaps_s"]),
        "statuses": outcome.statuses,
        **_summary(stats),
    }


def _summary(stats: dict) -> dict:
    gaps = stats["gaps_s"]
    return {
        "window_s": stats["window_s"],
        "busy_s": stats["busy_s"],
        "median_gap_ms": 1e3 * statistics.median(gaps) if gaps else None,
        "p90_gap_ms": 1e3 * sorted(gaps)[int(0.9 * (len(gaps) - 1))] if gaps else None,
        "loads": stats["loads"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="noop")
    p.add_argument("--weights", default="tiny")
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--first-step", type=int, default=40)
    p.add_argument("--step-time-s", type=float, default=0.04, help="noop only: host time per step")
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--warmup", type=int, default=0, help="warm-up generations per trial (both modes alike)")
    p.add_argument("--idle-baseline-s", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--card", default=None, help="what machine this is, for the record")
    args = p.parse_args()

    doc = sweep_doc(args)
    stem = f"orchestrator_overhead_{args.model}_{args.weights}_{'gpu' if args.gpus else 'cpu'}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bare_run, launch_run = new_run(root, "bare", doc), new_run(root, "launch", doc)
        bare = bare_loop(bare_run)
        launched = through_launch(launch_run, args.gpus)
        # the rows behind the figures, kept beside them (the temporary folder is deleted)
        for run in (bare_run, launch_run):
            keep_run(run, runs_dir(args.out, stem))
    result = {
        "date": dt.date.today().isoformat(),
        "card": args.card or platform.node(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "trials": args.trials,
        "model": args.model,
        "weights": args.weights,
        "bare": bare,
        "launch": launched,
        "wall_ratio": launched["wall_s"] / bare["wall_s"],
        "steady_ratio": launched["steady_s"] / bare["steady_s"],
        "launch_window_fraction": launched["window_s"] / launched["wall_s"],
        "bare_window_fraction": bare["window_s"] / bare["wall_s"],
    }
    table = "\n".join(
        [
            "| | bare loop | t2a-ray launch |",
            "| --- | --- | --- |",
            f"| wall time, s | {bare['wall_s']:.1f} | {launched['wall_s']:.1f} (×{result['wall_ratio']:.3f}) |",
            f"| first trial start → last trial end, s | {bare['steady_s']:.1f} | {launched['steady_s']:.1f} (×{result['steady_ratio']:.3f}) |",
            f"| median / p90 idle gap between trials, ms | {bare['median_gap_ms']:.1f} / {bare['p90_gap_ms']:.1f} | {launched['median_gap_ms']:.1f} / {launched['p90_gap_ms']:.1f} |",
            f"| time inside metered windows / wall | {result['bare_window_fraction']:.1%} | {result['launch_window_fraction']:.1%} |",
            f"| model loads | {sum(bare['loads'].values())} | {sum(launched['loads'].values())} |",
        ]
    )
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / f"{stem}.md").write_text(
        f"# Orchestrator overhead: {args.trials} trials of `{args.model}` ({args.weights})\n\n"
        f"- card: {result['card']}\n- date: {result['date']}\n- command: `{result['command']}`\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
