"""What the prefetch during the idle baseline saves on a model's first load, on this machine's CPU.

For each model, in a fresh process each time (imports are what is measured), with and without the
prefetch: a worker's `prepare` (its idle baseline over a fake GPU on real time — no GPU here — with the
model's code prefetched beside it, or not), then the model's first `load` (random weights, float32, CPU).
Written to benchmarks/results/prefetch_cpu.{json,md}.

    python benchmarks/prefetch.py --card "CPU dev machine (2 cores)"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ["audioldm", "tango", "make-an-audio-2"]


def one(model: str, prefetch: bool, idle_baseline_s: float) -> dict:
    """In this (fresh) process: a worker's prepare, then the model's first load."""
    from t2a_ray.adapters import adapter_class
    from t2a_ray.config import parse_sweep
    from t2a_ray.metering import Clock, Meter
    from t2a_ray.metering.fakes import FakeGPU
    from t2a_ray.orchestrator.worker import Worker
    from t2a_ray.runfolder import RunFolder

    def open_meter(device, settings):
        clock = Clock()
        return Meter(FakeGPU(clock), None, settings, sync=device.sync, clock=clock)

    with tempfile.TemporaryDirectory() as tmp:
        doc = {
            "name": "prefetch",
            "models": [model],
            "weights": "random",
            "dtype": "float32",
            "prompts": {"text": ["a"]},
            "metering": {"idle_baseline_s": idle_baseline_s},
        }
        run = RunFolder(Path(tmp) / "run")
        run.create(parse_sweep(doc, base_dir=Path(tmp)).to_yaml())
        worker = Worker(str(run.root), 0, open_meter=open_meter)
        try:
            t0 = time.perf_counter()
            prepared = worker.prepare([model] if prefetch else [])
            prepare_s = time.perf_counter() - t0
        finally:
            worker.shutdown()
    t0 = time.perf_counter()
    adapter_class(model).load(device="cpu", dtype="float32", weights="random")
    load_s = time.perf_counter() - t0
    steps = prepared["prepare_steps_s"]
    return {
        "model": model,
        "prefetch": prefetch,
        "prepare_s": prepare_s,
        "prefetch_s": steps["prefetch"][1] - steps["prefetch"][0],
        "prefetch_wait_s": steps["prefetch_wait"][1] - steps["prefetch_wait"][0],
        "idle_baseline_s": idle_baseline_s,
        "first_load_s": load_s,
        "prefetch_errors": prepared["prefetch_errors"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--idle-baseline-s", type=float, default=5.0, help="the GPU scaling benchmark's")
    p.add_argument(
        "--rounds", type=int, default=2, help="each (model, prefetch) this many times, alternating"
    )
    p.add_argument("--card", default=None, help="what the machine is (default: its host name)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--one", nargs=2, metavar=("MODEL", "on|off"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1] == "on", args.idle_baseline_s)))
        return
    runs = []
    for _ in range(args.rounds):  # alternating, so that another job's load falls on both modes alike
        for model in args.models:
            for mode in ("off", "on"):
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    model,
                    mode,
                    "--idle-baseline-s",
                    str(args.idle_baseline_s),
                ]
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(runs[-1]), flush=True)
    card = args.card or platform.node()
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    lines = [
        "| model | prefetch | prepare s | of which waiting for the prefetch s | prefetch s (in its thread) "
        "| first load s |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {r['model']} | {'yes' if r['prefetch'] else 'no'} | {r['prepare_s']:.1f} | "
            f"{r['prefetch_wait_s']:.1f} | {r['prefetch_s']:.1f} | {r['first_load_s']:.1f} |"
            for r in runs
        ),
    ]
    lines += [
        "",
        "| model | first load s without (mean) | with (mean) | saved s | prepare s without | with |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for model in args.models:
        off, on = ([r for r in runs if r["model"] == model and r["prefetch"] == m] for m in (False, True))
        load_off, load_on = (statistics.mean(r["first_load_s"] for r in rs) for rs in (off, on))
        prep_off, prep_on = (statistics.mean(r["prepare_s"] for r in rs) for rs in (off, on))
        lines.append(
            f"| {model} | {load_off:.1f} | {load_on:.1f} | {load_off - load_on:.1f} | "
            f"{prep_off:.1f} | {prep_on:.1f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prefetch_cpu.json").write_text(
        json.dumps(
            {"card": card, "date": dt.date.today().isoformat(), "command": command, "runs": runs}, indent=2
        )
    )
    (args.out / "prefetch_cpu.md").write_text(
        f"# A model's first load with and without the prefetch during the idle baseline (CPU)\n\n"
        f"- card: {card}\n- date: {dt.date.today().isoformat()}\n- command: `{command}`\n"
        f"- each row a fresh process: a worker's prepare (idle baseline {args.idle_baseline_s:g} s over a "
        f"fake GPU on real time, the model's code prefetched beside it or not), then the model's first "
        f"load (random weights, float32, CPU)\n\n" + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    main()
