"""Full-size adapters on a GPU: build time, parameters, memory and the latency of one generation.

For each model: build it in `random` weights (full-size architecture, random init, on the device, in the
dtype), count its parameters against the published figure (adapters/published.py), then generate one
10 s clip at batch 1 with 100 steps after a short warm-up (same shapes, 2 steps), timing each phase with
a device-synchronised phase marker. Writes a markdown table (and the rows as JSON).

    python benchmarks/adapters_fullsize.py --out benchmarks/results/adapters_fullsize_h100.md   # on the GPU
    python benchmarks/adapters_fullsize.py --weights tiny --device cpu --dtype float32           # CPU smoke test
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import platform
import sys
import time
from pathlib import Path

import torch

from t2a_ray.adapters import adapter_class, get_card, model_ids
from t2a_ray.adapters._diffusers import count_parameters
from t2a_ray.adapters._modules import named_modules_of
from t2a_ray.adapters.published import PUBLISHED
from t2a_ray.errors import InfeasibleError


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PhaseClock:
    """A PhaseMarker that records when each phase starts, after the device has finished the last one."""

    def __init__(self, device: torch.device):
        self.device, self.marks = device, []

    def __call__(self, phase: str) -> None:
        sync(self.device)
        self.marks.append((phase, time.perf_counter()))

    def durations(self, end: float) -> dict[str, float]:
        stamps = [t for _, t in self.marks] + [end]
        return {phase: stamps[i + 1] - stamps[i] for i, (phase, _) in enumerate(self.marks)}


def published_check(model_id: str, modules: dict) -> str:
    """'ours / published (Δ%)' for the first published figure of the model."""
    component, count, _tol, _src = PUBLISHED[model_id][0]
    ours = (
        count_parameters(modules.values()) if component == "total" else count_parameters([modules[component]])
    )
    return f"{component} {ours / 1e6:.0f} / {count / 1e6:.0f} M ({100 * (ours - count) / count:+.1f} %)"


def run_one(model_id: str, args, device: torch.device) -> dict:
    row: dict = {"model": model_id}
    card = get_card(model_id)
    params = {"steps": args.steps, "duration_s": args.duration_s, "batch_size": args.batch_size}
    if args.weights == "tiny" and model_id == "stable-audio-open":
        params["duration_s"] = min(params["duration_s"], 2.0)  # the tiny model's window is 2.97 s
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    adapter = None
    try:
        start = time.perf_counter()
        adapter = adapter_class(model_id).load(device=str(device), dtype=args.dtype, weights=args.weights)
        sync(device)
        row["build_s"] = time.perf_counter() - start
        row["parameters_m"] = adapter.parameter_count / 1e6
        row["published"] = (
            published_check(model_id, named_modules_of(adapter.model)) if args.weights == "random" else ""
        )
        row["weights_gib"] = adapter.memory_bytes / 2**30
        adapter.generate([args.prompt], {**params, "steps": 2}, seed=0)  # warm-up: kernels, allocator, caches
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        clock = PhaseClock(device)
        start = time.perf_counter()
        gen = adapter.generate(
            [args.prompt], params, seed=1, phases=clock, negative_prompt=args.negative_prompt
        )
        sync(device)
        end = time.perf_counter()
        row["latency_s"] = end - start
        row["phases_s"] = clock.durations(end)
        row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
        row["audio"] = (
            f"{gen.waveforms.shape[0]}×{gen.waveforms.shape[1]}×{gen.waveforms.shape[2]} @ {gen.sample_rate_hz} Hz"
        )
        assert gen.waveforms.shape == (
            args.batch_size,
            card.channels,
            round(params["duration_s"] * card.sample_rate_hz),
        )
    except InfeasibleError as e:
        row["error"] = f"infeasible: {e}"
    except Exception as e:  # a benchmark row, not a crash: record and go on to the next model
        row["error"] = f"{type(e).__name__}: {e}"[:300]
    finally:
        if adapter is not None:
            adapter.unload()
        del adapter
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def markdown(rows: list[dict], args, device: torch.device) -> str:
    phases = ("text_encoder", "denoise", "decode", "vocoder")
    head = (
        "| model | build s | parameters M | vs published | weights GiB | peak GiB | latency s | "
        + " | ".join(f"{p} s" for p in phases)
        + " | audio |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['model']} | {r.get('build_s', float('nan')):.1f} | | | | | {r['error']} |" + " |" * 5
            )
            continue
        ph = r["phases_s"]
        lines.append(
            f"| {r['model']} | {r['build_s']:.1f} | {r['parameters_m']:.1f} | {r['published']} | {r['weights_gib']:.2f} | "
            f"{r['peak_gib']:.2f} | {r['latency_s']:.2f} | "
            + " | ".join(f"{ph[p]:.3f}" if p in ph else "–" for p in phases)
            + f" | {r['audio']} |"
        )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    meta = (
        f"Device: {name}; torch {torch.__version__}; weights {args.weights}, {args.dtype}; one generation of "
        f"{args.duration_s} s, {args.steps} steps, batch {args.batch_size}, guidance = each model's default, after a "
        f"2-step warm-up; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.\nCommand: `{' '.join(sys.argv)}`"
    )
    return meta + "\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="random", choices=("random", "tiny"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    parser.add_argument("--models", nargs="*", default=[m for m in model_ids() if m != "noop"])
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--prompt",
        default="Water running out of a faucet, some hitting a sink bottom, and some water filling a cup",
    )
    parser.add_argument("--negative-prompt", default="Low quality.")
    parser.add_argument(
        "--out", type=Path, help="markdown table (the rows also go to the same path with .json)"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    for model_id in args.models:
        row = run_one(model_id, args, device)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:  # written after every model: a run cut short still leaves its rows
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
            args.out.write_text(markdown(rows, args, device))
    print(markdown(rows, args, device))
    return 1 if any("error" in r and not r["error"].startswith("infeasible") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
