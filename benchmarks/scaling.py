"""How a sweep scales with workers: the same sweep on 1, 2, 4, … GPUs (or logical GPUs on a CPU).

For each worker count it runs the sweep into its own run folder and records wall time, speed-up over
one worker, model loads per (worker, model), the fraction of worker time inside metered windows, and
— on real GPUs — each GPU's idle power and the spread of the same configuration's energy across GPUs.

    # CPU, logical GPUs, the noop adapter (sleeps: 2 cores are not the bottleneck)
    python benchmarks/scaling.py --workers 1 2 4 8 --model noop --trials 32 --step-time-s 0.02
    # real GPUs
    python benchmarks/scaling.py --workers 1 2 --model audioldm tango stable-audio-open make-an-audio --weights random
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

import pyarrow.parquet as pq
import yaml

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep
from t2a_ray.runfolder import RunFolder


def sweep_doc(args) -> dict:
    grid = {"steps": args.steps or list(range(100, 100 + args.trials)), "duration_s": args.duration_s}
    if args.model == ["noop"]:
        grid["step_time_s"] = args.step_time_s
    return {
        "models": args.model,
        "weights": args.weights,
        "dtype": "float16" if args.gpu else "float32",
        "grid": grid,
        "prompts": {
            "text": [
                "Water running out of a faucet, some hitting a sink bottom, and some water filling a cup"
            ]
        },
        "repeats": args.repeats,
        "warmup": 0 if args.model == ["noop"] else 1,
        "metering": {"idle_baseline_s": args.idle_baseline_s},
    }


def one(root: Path, n: int, doc: dict, gpu: bool) -> dict:
    name = f"w{n}"
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump(doc))
    run = RunFolder(root / name)
    run.create(load_sweep(config, name=name).to_yaml())
    t0 = time.perf_counter()
    outcome = run_sweep(run, LaunchOptions(gpus=n, progress=False))
    wall = time.perf_counter() - t0
    rows = pq.read_table(run.results).to_pylist()
    stats = outcome.worker_stats
    loads = [c for s in stats for c in s.get("loads", {}).values()]
    per_gpu = {}
    for r in rows:
        if r["gpu_energy_j"] is not None:
            per_gpu.setdefault(r["gpu_uuid"], []).append(r)
    result = {
        "workers": n,
        "wall_s": wall,
        "statuses": outcome.statuses,
        "max_loads_per_worker_model": max(loads) if loads else None,
        "window_fraction": sum(s.get("window_s", 0) for s in stats) / (wall * n),
        "median_gap_ms": 1e3
        * statistics.median([g for s in stats for g in s.get("gaps_s", [])] or [float("nan")]),
        "idle_power_w": {s.get("gpu_uuid") or f"worker{s['worker']}": s.get("idle_power_w") for s in stats},
    }
    if gpu and len(per_gpu) > 1:
        # The same configuration measured on different GPUs: energy spread across the host's cards
        by_trial: dict[str, dict[str, list[float]]] = {}
        for uuid, rs in per_gpu.items():
            for r in rs:
                by_trial.setdefault(r["trial_id"], {}).setdefault(uuid, []).append(r["gpu_energy_j"])
        result["energy_by_gpu_j"] = {
            tid: {u: statistics.mean(v) for u, v in g.items()} for tid, g in by_trial.items()
        }
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--model", nargs="+", default=["noop"])
    p.add_argument("--weights", default="tiny")
    p.add_argument(
        "--trials", type=int, default=32, help="noop: one configuration per trial (steps 100, 101, …)"
    )
    p.add_argument("--steps", type=int, nargs="*", default=None)
    p.add_argument("--step-time-s", type=float, default=0.02)
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--idle-baseline-s", type=float, default=0.0)
    p.add_argument("--gpu", action="store_true", help="real GPUs (default: logical GPUs on the CPU)")
    p.add_argument("--card", default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()

    doc = sweep_doc(args)
    with tempfile.TemporaryDirectory() as tmp:
        results = [one(Path(tmp), n, doc, args.gpu) for n in args.workers]
    base = results[0]["wall_s"] * results[0]["workers"]
    lines = [
        "| workers | wall s | speed-up | ideal | outcomes | max loads per (worker, model) | time in windows | median gap ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        r["speedup"] = base / r["wall_s"]
        lines.append(
            f"| {r['workers']} | {r['wall_s']:.1f} | {r['speedup']:.2f}× | {r['workers']}× | {r['statuses']} | "
            f"{r['max_loads_per_worker_model']} | {r['window_fraction']:.1%} | {r['median_gap_ms']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    record = {
        "date": dt.date.today().isoformat(),
        "card": args.card or platform.node(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "sweep": doc,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"scaling_{'-'.join(args.model)}_{'gpu' if args.gpu else 'cpu'}"
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=2, default=str))
    (args.out / f"{stem}.md").write_text(
        f"# Scaling: {', '.join(args.model)} ({args.weights})\n\n- card: {record['card']}\n"
        f"- date: {record['date']}\n- command: `{record['command']}`\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
