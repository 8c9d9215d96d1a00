"""How a sweep scales with workers: the same sweep on 1, 2, 4, … GPUs (or logical GPUs on a CPU), in
`pack` and in `spread` placement, each run in its own run folder.

Every run is recorded as {"placement", "gpus", "wall_s", "trials", "ok", "card"} plus what explains it:
the sweep phase (first unit start to last unit end over all workers) and the fixed costs around it
(Ray, workers, Tune, merge: the launch's timeline cut into segments, `breakdown_s`), speed-ups of both
over the one-GPU run, loads per (worker, model), warm-ups, time inside metered windows, units taken
by an idle worker, and — on real GPUs, in `spread` — each GPU's energy ratio to the configurations'
GPU-balanced means (`analysis/gpu_effect.py`).

    # the 2-GPU measurement, one command (results/scaling_gpu.md says how long it took; `--gpus 1` and
    # `--gpus 2` may also be run as two commands with --append)
    python benchmarks/scaling.py --gpu --gpus 1 2 --placement pack spread --card "2× H200 (host …)"
    # CPU, logical GPUs, the noop adapter (a fixed host latency per step; 2 cores are not the bottleneck)
    python benchmarks/scaling.py --gpus 1 2 4 8 --placement pack --card "CPU dev machine"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from keep_runs import keep_run, runs_dir

from t2a_ray.analysis.gpu_effect import WARN_FRACTION, gpu_effect
from t2a_ray.config import parse_sweep
from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep
from t2a_ray.runfolder import RunFolder

GPU_MODELS = ["audioldm", "make-an-audio-2", "tango"]  # three costs: small UNet, DiT, large UNet
# The launch's wall time cut at its timeline's phases (logs/timeline-attempt-N.json): segment → the
# phase that ends it (None: the launch's end); each segment starts where the one before it ends.
SEGMENTS = {
    "ray_start_s": "ray_up",
    "workers_start_s": "workers_started",
    "first_prepare_s": "first_worker_prepared",
    "to_first_unit_s": "first_unit_started",
    "sweep_phase_s": "last_unit_ended",
    "tune_end_s": "tune_finished",
    "workers_shutdown_s": "workers_shut_down",
    "ray_shutdown_s": "ray_down",
    "merge_s": "merge_done",
    "rest_s": None,
}


def breakdown(phases: dict, wall_s: float) -> dict:
    """`SEGMENTS` of a launch of `wall_s` from its timeline's `phases_s`: they sum to `wall_s`."""
    out, before = {}, 0.0
    for segment, phase in SEGMENTS.items():
        end = wall_s if phase is None else phases.get(phase)
        out[segment] = None if end is None else end - before
        before = before if end is None else end
    return out


def sweep_doc(args) -> dict:
    if not args.gpu:  # noop: one configuration per trial, each `steps × step_time_s` long
        grid = {"steps": list(range(100, 100 + args.trials)), "step_time_s": args.step_time_s / 100}
        models = ["noop"]
    else:
        grid = {"steps": args.steps}
        models = args.models
    return {
        "models": models,
        "weights": args.weights,
        "dtype": "float16" if args.gpu else "float32",
        "grid": {**grid, "duration_s": args.duration_s},
        "prompts": {
            "text": [
                "Water running out of a faucet, some hitting a sink bottom, and some water filling a cup"
            ]
        },
        "repeats": args.repeats,
        "warmup": 1 if args.gpu else 0,
        "metering": {"idle_baseline_s": args.idle_baseline_s, "min_window_s": args.min_window_s},
    }


def one(root: Path, n: int, placement: str, doc: dict, args) -> dict:
    name = f"{placement}-g{n}"
    run = RunFolder(root / name)
    run.create(parse_sweep({**doc, "placement": placement}, root, name=name).to_yaml())
    t0 = time.perf_counter()
    outcome = run_sweep(run, LaunchOptions(gpus=n, progress=False))
    wall = time.perf_counter() - t0
    rows = pd.read_parquet(run.results)
    stats = [s for s in outcome.worker_stats if "error" not in s]
    starts = [s["first_start_unix_s"] for s in stats if s.get("first_start_unix_s")]
    ends = [s["last_end_unix_s"] for s in stats if s.get("last_end_unix_s")]
    sweep_s = max(ends) - min(starts) if starts and ends else None
    # the longest worker's span from its first unit to its last: the sweep phase without the stagger
    # of the worker processes' own start (they import torch and open their meter at different times)
    span_s = max(
        (s["last_end_unix_s"] - s["first_start_unix_s"] for s in stats if s.get("first_start_unix_s")),
        default=None,
    )
    plan, timeline = run.latest_log("plan"), run.latest_log("timeline")
    result = {
        "placement": placement,
        "gpus": n,
        "wall_s": wall,
        "trials": outcome.total,
        "ok": outcome.statuses.get("ok", 0),
        "card": args.card,
        "rows": len(rows),
        "rows_ok": int((rows["status"] == "ok").sum()),
        "sweep_s": sweep_s,
        "longest_worker_span_s": span_s,
        "fixed_s": None if sweep_s is None else wall - sweep_s,
        "predicted_sweep_s": plan.get("makespan_s"),
        "units": plan.get("units_pending"),
        "units_taken_by_an_idle_worker": plan.get("dispatch", {}).get("stolen"),
        "loads": {s["worker"]: s.get("loads") for s in stats},
        "max_loads_per_worker_model": max((c for s in stats for c in s["loads"].values()), default=None),
        "warmups": sum(s.get("warmups", 0) for s in stats),
        "busy_s": {s["worker"]: s.get("busy_s") for s in stats},
        "window_fraction_of_wall": sum(s.get("window_s", 0.0) for s in stats) / (wall * n),
        "gap_s_total": sum(sum(s.get("gaps_s", [])) for s in stats),
        "timeline_s": timeline["phases_s"],
        "breakdown_s": breakdown(timeline["phases_s"], wall),
        "prepare_steps_s": {w["worker"]: w.get("prepare_steps_s") for w in run.latest_log("gpus")},
    }
    if args.gpu and placement == "spread":
        energy = "gpu_energy_j" if "energy_per_waveform_j" not in rows else "energy_per_waveform_j"
        result["gpu_effect"] = gpu_effect(rows[rows["status"] == "ok"], energy).to_dict("records")
    return result


def reading(runs: list[dict]) -> str:
    base = {r["placement"]: r for r in runs if r["gpus"] == 1}
    any_base = next((r for r in runs if r["gpus"] == 1), None)
    lines = [
        "| placement | GPUs | wall s | speed-up (wall) | sweep phase s | speed-up (sweep phase) | longest "
        "worker span s | speed-up (span) | fixed s (share) | ok / trials | rows ok | max loads per "
        "(worker, model) | warm-ups | taken by idle |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        b = base.get(r["placement"], any_base)
        up_wall = b["wall_s"] / r["wall_s"] if b else float("nan")
        up_sweep = b["sweep_s"] / r["sweep_s"] if b and b["sweep_s"] and r["sweep_s"] else float("nan")
        span, b_span = r.get("longest_worker_span_s"), b.get("longest_worker_span_s") if b else None
        up_span = b_span / span if b_span and span else float("nan")
        r["speedup_wall"], r["speedup_sweep"], r["speedup_span"] = up_wall, up_sweep, up_span
        fixed = "–" if r["fixed_s"] is None else f"{r['fixed_s']:.1f} ({r['fixed_s'] / r['wall_s']:.0%})"
        sweep_s = f"{r['sweep_s']:.1f}" if r["sweep_s"] is not None else "–"
        lines.append(
            f"| {r['placement']} | {r['gpus']} | {r['wall_s']:.1f} | {up_wall:.2f}× | {sweep_s} | "
            f"{up_sweep:.2f}× (ideal {r['gpus']}×) | {span or float('nan'):.1f} | {up_span:.2f}× | "
            f"{fixed} | {r['ok']} / {r['trials']} | "
            f"{r['rows_ok']} / {r['rows']} | {r['max_loads_per_worker_model']} | {r['warmups']} | "
            f"{r['units_taken_by_an_idle_worker']} |"
        )
    lines += [
        "",
        "Where the wall time goes (s, from each run's logs/timeline-attempt-1.json):",
        "",
        "| placement | GPUs | " + " | ".join(k.removesuffix("_s").replace("_", " ") for k in SEGMENTS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in SEGMENTS) + " |",
    ]
    for r in runs:
        parts = r.get("breakdown_s") or dict.fromkeys(SEGMENTS)  # runs recorded before the timeline: –
        cells = ["–" if v is None else f"{v:.1f}" for v in parts.values()]
        lines.append(f"| {r['placement']} | {r['gpus']} | " + " | ".join(cells) + " |")
    for r in runs:
        for g in r.get("gpu_effect") or []:
            lines.append(
                f"\nGPU effect ({r['placement']}, {r['gpus']} GPUs): {g['gpu_uuid']} {g['gpu_name']} — "
                f"energy ratio {g['energy_ratio']:.4f} ± {g['energy_ratio_ci95']:.4f} over "
                f"{g['configurations']} configurations{f' — WARNING: > {WARN_FRACTION * 100:g} % off' if g['warning'] else ''}"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 4, 8], help="worker counts, in order")
    p.add_argument("--placement", nargs="+", default=["pack", "spread"], choices=["pack", "spread"])
    p.add_argument("--gpu", action="store_true", help="real GPUs (default: logical GPUs on the CPU, noop)")
    p.add_argument("--models", nargs="+", default=GPU_MODELS, help="with --gpu")
    p.add_argument("--weights", default=None, help="default: random with --gpu, tiny without")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100, 200], help="with --gpu")
    p.add_argument("--trials", type=int, default=64, help="noop: configurations (steps 100, 101, …)")
    p.add_argument("--step-time-s", type=float, default=1.0, help="noop: seconds per configuration")
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=None, help="default: 6 with --gpu, 1 without")
    p.add_argument("--min-window-s", type=float, default=None, help="default: 3 with --gpu, 0 without")
    p.add_argument("--idle-baseline-s", type=float, default=None, help="default: 5 with --gpu, 0 without")
    p.add_argument("--card", default=None, help="what the machine is (default: its host name)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--append", action="store_true", help="add these runs to an existing result file")
    args = p.parse_args()
    args.weights = args.weights or ("random" if args.gpu else "tiny")
    args.repeats = args.repeats or (6 if args.gpu else 1)
    args.min_window_s = args.min_window_s if args.min_window_s is not None else (3.0 if args.gpu else 0.0)
    args.idle_baseline_s = (
        args.idle_baseline_s if args.idle_baseline_s is not None else (5.0 if args.gpu else 0.0)
    )
    args.card = args.card or platform.node()
    if not args.gpu:
        os.environ["T2A_RAY_LOGICAL_GPUS"] = "1"

    doc = sweep_doc(args)
    stem = args.out / f"scaling_{'gpu' if args.gpu else 'cpu'}"
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.gpus:
            # one GPU: both placements run the same work on the same card; once is enough
            for placement in args.placement if n > 1 else args.placement[:1]:
                runs.append(one(Path(tmp), n, placement, doc, args))
                # the rows behind the figures, kept beside them (the temporary folder is deleted)
                kept = keep_run(RunFolder(Path(tmp) / f"{placement}-g{n}"), runs_dir(args.out, stem.name))
                runs[-1]["run_folder"] = str(kept.relative_to(args.out))
                print(json.dumps({k: runs[-1][k] for k in ("placement", "gpus", "wall_s", "sweep_s")}))
    command = " ".join([Path(sys.executable).name, *sys.argv])
    if args.append and stem.with_suffix(".json").exists():
        old = json.loads(stem.with_suffix(".json").read_text())
        runs[:0] = [
            r for r in old if (r["placement"], r["gpus"]) not in {(x["placement"], x["gpus"]) for x in runs}
        ]
    for r in runs:
        r.setdefault("date", dt.date.today().isoformat())
        r.setdefault("command", command)
        r.setdefault("sweep", doc)
    table = reading(runs)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(runs, indent=2, default=str))
    stem.with_suffix(".md").write_text(
        f"# Scaling: {', '.join(doc['models'])} ({args.weights}), "
        f"{'GPUs' if args.gpu else 'logical GPUs'}\n\n"
        f"- card: {args.card}\n- date: {dt.date.today().isoformat()}\n- command: `{command}`\n"
        f"- sweep: `{json.dumps(doc)}`\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
