"""CPU seconds of a `t2a-ray resume` driver run as a subprocess against the same command run in the
calling process (click's CliRunner), both joining one running Ray (`--address`): what an end-to-end
test pays for a command it runs as a process although the process is not what it tests.

One local Ray (`ray.cluster_utils.Cluster`, logical GPUs, as the tests' `shared_ray`), one small noop
sweep launched in this process first (so that this process has Ray, Tune, pandas and the report's
modules imported, as a test process has), then, interleaved, each way ROUNDS times: drop a few
shards, resume. The subprocess's CPU is its rusage (it starts no process of its own when it joins a
Ray); the in-process one is this process's CPU time across the command. The Ray workers that run the
dropped units are the same for both and counted by neither.

    T2A_RAY_LOGICAL_GPUS=1 python benchmarks/resume_driver_cpu.py [--rounds N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SWEEP = """
name: r
models: [noop]
weights: tiny
grid: {steps: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], step_time_s: 0.01}
prompts: {text: ["a"]}
warmup: 0
metering: {idle_baseline_s: 0}
"""
DROPPED = 3  # units run again by each resume


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the readings here")
    args = ap.parse_args()
    # as tests/conftest.py: token authentication before any Ray starts, one token for every process
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    from t2a_ray.orchestrator.ray_token import ensure_local_token

    ensure_local_token()
    from click.testing import CliRunner
    from ray.cluster_utils import Cluster

    from t2a_ray.cli import main as cli
    from t2a_ray.runfolder import RunFolder

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 4, "num_gpus": 2})
    tmp = Path(tempfile.mkdtemp(prefix="resume-cpu-"))
    config = tmp / "r.yaml"
    config.write_text(textwrap.dedent(SWEEP))
    ray = ["--gpus", "1", "--no-progress", "--address", cluster.address]
    readings: list[dict] = []
    try:
        done = CliRunner().invoke(cli, ["launch", "--config", str(config), "--out", str(tmp), *ray])
        assert done.exit_code == 0, done.output[-3000:]
        run = RunFolder(tmp / "r")
        resume = ["resume", str(run.root), *ray]
        for i in range(args.rounds):
            for how in ("subprocess", "in-process"):
                for shard in sorted(run.shard_paths())[:DROPPED]:
                    shard.unlink()
                load = os.getloadavg()[0]
                t0, c0, p0 = time.perf_counter(), children_cpu_s(), time.process_time()
                if how == "subprocess":
                    out = subprocess.run([sys.executable, "-m", "t2a_ray.cli", *resume], capture_output=True)
                    code, cpu_s = out.returncode, children_cpu_s() - c0
                else:
                    code = CliRunner().invoke(cli, resume).exit_code
                    cpu_s = time.process_time() - p0
                wall_s = time.perf_counter() - t0
                assert code == 0, (how, code)
                readings.append({"round": i, "how": how, "cpu_s": cpu_s, "wall_s": wall_s, "load_1m": load})
                print(f"{i} {how:10s} {cpu_s:6.2f} CPU s {wall_s:6.2f} wall s  load {load:.1f}", flush=True)
    finally:
        cluster.shutdown()
    for how in ("subprocess", "in-process"):
        cpu = [r["cpu_s"] for r in readings if r["how"] == how]
        print(f"{how}: median {statistics.median(cpu):.2f} CPU s of {len(cpu)}")
    if args.json:
        Path(args.json).write_text(json.dumps(readings, indent=1))


if __name__ == "__main__":
    main()
