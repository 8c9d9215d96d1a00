"""How far a runtime moves the audio, next to how far half precision does: the yardstick of the
equivalence flag (`adapters/runtime_axes.py` EQUIVALENT_MIN_SNR_DB).

For each model, from one seed: the waveform of the eager float32 run, of the eager run in `--half`
(float16 on a GPU; bfloat16 is what the CPU computes fast), and of each `--runtime` in that same half
precision. It prints and records the SNR (dB) of each against its reference: half vs float32 is the
rounding noise a half-precision study lives with; a runtime vs eager (same dtype) is what the flag
compares with the threshold.

    python benchmarks/runtime_equivalence.py --weights tiny --device cpu --half bfloat16 \\
        --runtime compile=default --out benchmarks/results/runtime_equivalence_cpu.json
    python benchmarks/runtime_equivalence.py --weights random --device cuda --half float16 \\
        --runtime compile=reduce-overhead --runtime attention=flash
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import torch

from t2a_ray.adapters import adapter_class
from t2a_ray.adapters.runtime_axes import EQUIVALENT_MIN_SNR_DB, output_equivalence
from t2a_ray.errors import InfeasibleError

PROMPT = ["Water running out of a faucet, some hitting a sink bottom, and some water filling a cup"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["audioldm", "tango", "make-an-audio-2"])
    p.add_argument("--weights", default="tiny", choices=["tiny", "random"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--half", default="bfloat16", choices=["float16", "bfloat16"])
    p.add_argument("--runtime", action="append", default=[], help="AXIS=VALUE, e.g. compile=default")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--duration-s", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    runtimes = [dict([r.split("=", 1)]) for r in args.runtime]
    params = {"steps": args.steps, "duration_s": args.duration_s, "batch_size": 1}
    rows = []
    for model in args.models:
        waves = {}
        for dtype in ("float32", args.half):
            adapter = adapter_class(model).load(device=args.device, dtype=dtype, weights=args.weights)
            waves[dtype] = adapter.generate(PROMPT, params, args.seed).waveforms
            if dtype == args.half:
                for runtime in runtimes:
                    start = time.perf_counter()
                    try:
                        wave = adapter.generate(PROMPT, {**params, **runtime}, args.seed).waveforms
                    except InfeasibleError as e:
                        rows.append({"model": model, "compared": runtime, "infeasible": str(e)})
                        continue
                    rel, snr = output_equivalence(wave, waves[dtype])
                    rows.append(
                        {
                            "model": model,
                            "compared": {**runtime, "dtype": dtype},
                            "reference": f"eager {dtype}",
                            "rel_l2_error": rel,
                            "snr_db": snr,
                            "first_call_s": time.perf_counter() - start,
                        }
                    )
            adapter.unload()
        rel, snr = output_equivalence(waves[args.half], waves["float32"])
        rows.append(
            {
                "model": model,
                "compared": {"dtype": args.half},
                "reference": "eager float32",
                "rel_l2_error": rel,
                "snr_db": snr,
            }
        )
    for r in rows:
        print(json.dumps(r))
    if args.out:
        record = {
            "benchmark": "runtime_equivalence",
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
            "host": platform.node(),
            "device": torch.cuda.get_device_name()
            if args.device.startswith("cuda")
            else platform.processor(),
            "torch": torch.__version__,
            "weights": args.weights,
            "params": params,
            "threshold_snr_db": EQUIVALENT_MIN_SNR_DB,
            "rows": rows,
        }
        args.out.write_text(json.dumps(record, indent=1) + "\n")


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
