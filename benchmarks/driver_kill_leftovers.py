"""How long a local Ray's processes outlive a driver killed with SIGKILL.

    python benchmarks/driver_kill_leftovers.py --repeats 3 --out benchmarks/results/FILE.md

A CPU sweep of the `noop` adapter is launched through the real CLI (two logical GPUs); once two trials
are done the driver gets SIGKILL. Every process that descended from the driver is then watched until it
is gone: the table says, per repeat, how many there were and how long the last one lingered, by name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from t2a_ray.orchestrator.reaper import descendants, kill, start_time
from t2a_ray.runfolder import RunFolder

SWEEP = textwrap.dedent("""
    name: k
    models: [noop]
    weights: tiny
    grid: {steps: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], step_time_s: 0.1}
    prompts: {text: ["a"]}
    warmup: 0
    metering: {idle_baseline_s: 0}
""")


def _name(pid: int) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(w.decode(errors="replace") for w in words if w)
    if "default_worker.py" in text:  # a worker process that has not yet named itself ray::…
        return "worker (starting)"
    for key in ("gcs_server", "raylet", "dashboard/agent.py", "runtime_env/agent", "log_monitor", "ray::"):
        if key in text:
            return key if key != "ray::" else text.split()[0]
    return os.path.basename(text.split()[0]) if text else "?"


def one(tmp: Path) -> tuple[int, float, dict[str, float]]:
    (tmp / "k.yaml").write_text(SWEEP)
    run = RunFolder(tmp / "runs" / "k")
    env = {**os.environ, "T2A_RAY_LOGICAL_GPUS": "1"}
    cmd = [sys.executable, "-m", "t2a_ray.cli", "launch", "--config", str(tmp / "k.yaml")]
    cmd += ["--out", str(tmp / "runs"), "--gpus", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(run.finished_trial_ids()) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    tree = {p: _name(p[0]) for p in descendants(proc.pid)}
    os.kill(proc.pid, signal.SIGKILL)
    t_kill = time.monotonic()
    proc.wait()
    last: dict[str, float] = {}
    while any(start_time(p) == start for p, start in tree) and time.monotonic() - t_kill < 180:
        for (p, start), name in tree.items():
            if start_time(p) == start:
                last[name] = time.monotonic() - t_kill
        time.sleep(0.1)
    kill(set(tree))  # whatever is still there after the watch: do not leave it behind
    return len(tree), max(last.values(), default=0.0), last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines = [
        "| repeat | processes below the driver | last one gone after (s) | slowest, by name (s) |",
        "| --- | --- | --- | --- |",
    ]
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            n, worst, by_name = one(Path(tmp))
        slow = ", ".join(f"{k} {v:.1f}" for k, v in sorted(by_name.items(), key=lambda kv: -kv[1])[:4])
        lines.append(f"| {r + 1} | {n} | {worst:.1f} | {slow or '-'} |")
        print(lines[-1], flush=True)
    head = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs"
    if args.out:
        args.out.write_text("\n".join([head, "", *lines, ""]))


if __name__ == "__main__":
    main()
