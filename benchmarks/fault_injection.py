"""Fault injection: real sweeps (the `noop` adapter, real Ray, the real CLI in subprocesses) hit with
the faults a long sweep meets, and a table of what was injected and what survived.

    python benchmarks/fault_injection.py            # about 5 minutes on 2 cores

Every case ends by counting the (trial, repeat, prompt) rows of results.parquet: lost = expected keys
that are missing, duplicated = keys seen more than once. Both must be 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator.runner import LaunchOptions, StorageError, run_sweep
from t2a_ray.runfolder import RunFolder

ENV = {**os.environ, "T2A_RAY_LOGICAL_GPUS": "1"}
CLI = [sys.executable, "-m", "t2a_ray.cli"]


def sweep_text(trials: int, step_time_s: float, options: str = "", extra: str = "") -> str:
    model = f"{{id: noop{', options: {' + options + '}' if options else ''}}}"
    return (
        textwrap.dedent(f"""
        models: [{model}]
        weights: tiny
        grid: {{steps: {list(range(1, trials + 1))}, step_time_s: {step_time_s}}}
        prompts: {{text: ["a", "b"]}}
        repeats: 2
        warmup: 0
        metering: {{idle_baseline_s: 0}}
    """)
        + extra
    )


def new_run(root: Path, name: str, text: str) -> RunFolder:
    config = root / f"{name}.yaml"
    config.write_text(text)
    run = RunFolder(root / "runs" / name)
    run.create(load_sweep(config, name=name, device="cpu").to_yaml())
    return run


def count(run: RunFolder, trials: int) -> tuple[int, int, Counter]:
    rows = pq.read_table(run.results).to_pylist()
    keys = Counter((r["trial_id"], r["repeat"], r["prompt_id"]) for r in rows)
    expected = trials * 2 * 2
    return expected - len(keys), sum(n - 1 for n in keys.values()), Counter(r["status"] for r in rows)


def kill_driver(root: Path, point: int, rng: random.Random) -> dict:
    """kill -9 of the driver once `point` trials are done (a random moment inside that trial), resume."""
    run = new_run(root, f"kill{point}", sweep_text(20, 0.03))
    proc = subprocess.Popen(
        [*CLI, "resume", str(run.root), "--gpus", "2", "--no-progress"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while len(run.finished_trial_ids()) < point and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.3))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(run.finished_trial_ids())
    resumed = subprocess.run(
        [*CLI, "resume", str(run.root), "--gpus", "2", "--no-progress"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    lost, dup, statuses = count(run, 20)
    return {
        "fault": f"kill -9 of the driver after {done}/20 trials",
        "survived": resumed.returncode == 0 and statuses == {"ok": 80},
        "lost": lost,
        "duplicated": dup,
        "note": f"resume exit {resumed.returncode}, rows {dict(statuses)}",
    }


def worker_killed(root: Path) -> dict:
    marker = root / "crash-marker"
    run = new_run(
        root,
        "crash",
        sweep_text(6, 0.01, f'fault: crash, fault_when: {{steps: 3}}, fault_marker: "{marker}"'),
    )
    out = run_sweep(run, LaunchOptions(gpus=1, progress=False))
    lost, dup, statuses = count(run, 6)
    return {
        "fault": "a worker's process dies mid-trial (os._exit)",
        "survived": marker.exists() and out.statuses == {"ok": 6},
        "lost": lost,
        "duplicated": dup,
        "note": "retried on the restarted worker",
    }


def node_removed(root: Path) -> dict:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 1})
    leaving = cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        run = new_run(root, "node", sweep_text(12, 0.03))
        t = threading.Thread(target=lambda: (_wait_for(run, 2), cluster.remove_node(leaving)))
        t.start()
        out = run_sweep(
            run,
            LaunchOptions(
                gpus=2,
                address=cluster.address,
                progress=False,
                worker_lost_after_s=5,
                worker_restart_wait_s=5,
            ),
        )
        t.join()
    finally:
        cluster.shutdown()
    lost, dup, statuses = count(run, 12)
    return {
        "fault": "a Ray node leaves mid-sweep",
        "survived": out.statuses == {"ok": 12},
        "lost": lost,
        "duplicated": dup,
        "note": "its trial moved to the remaining node",
    }


def oom(root: Path) -> dict:
    run = new_run(root, "oom", sweep_text(6, 0.01, "fault: oom, fault_when: {steps: 4}"))
    t0 = time.perf_counter()
    out = run_sweep(run, LaunchOptions(gpus=1, progress=False))
    lost, dup, statuses = count(run, 6)
    return {
        "fault": "out of memory at one grid point",
        "survived": out.statuses == {"ok": 5, "infeasible": 1},
        "lost": lost,
        "duplicated": dup,
        "note": f"1 trial infeasible, 5 ok, no retry ({time.perf_counter() - t0:.0f} s)",
    }


def corrupt_shard(root: Path) -> dict:
    run = new_run(root, "corrupt", sweep_text(6, 0.005))
    run_sweep(run, LaunchOptions(gpus=1, progress=False))
    a, b = run.shard_paths()[:2]
    a.write_bytes(a.read_bytes()[:-30])
    b.write_bytes(b"PAR1" + os.urandom(200) + b"PAR1")
    out = run_sweep(run, LaunchOptions(gpus=1, progress=False))
    lost, dup, statuses = count(run, 6)
    return {
        "fault": "a truncated and a garbage shard in trials/",
        "survived": out.ran == 2 and len(out.quarantined) == 2,
        "lost": lost,
        "duplicated": dup,
        "note": "moved to trials/corrupt/, their trials re-run",
    }


def disk_full(root: Path) -> dict:
    mount = root / "small"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        return {
            "fault": "disk full while shards are written",
            "survived": None,
            "lost": None,
            "duplicated": None,
            "note": "skipped: cannot mount a tmpfs",
        }
    try:
        run = new_run(mount, "full", sweep_text(12, 0.005))
        ballast = mount / "ballast"
        ballast.write_bytes(b"\0" * max(0, shutil.disk_usage(mount).free - 48 * 1024))
        try:
            run_sweep(run, LaunchOptions(gpus=1, progress=False))
            clear = False
        except StorageError as e:
            clear = "No space left" in str(e)
        partial = [p for p in run.trials_dir.iterdir() if p.name.endswith(".tmp")]
        for shard in run.shard_paths():
            pq.read_table(shard)
        done = len(run.finished_trial_ids())
        ballast.unlink()
        out = run_sweep(run, LaunchOptions(gpus=1, progress=False))
        lost, dup, statuses = count(run, 12)
        return {
            "fault": "disk full while shards are written (2 MiB tmpfs)",
            "survived": clear and not partial and out.skipped == done,
            "lost": lost,
            "duplicated": dup,
            "note": f"clear error after {done}/12 trials, no partial shard; resume finished",
        }
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def collateral(root: Path, trials: int = 500) -> dict:
    """One trial that crashes its worker every time, among `trials` healthy ones on 2 logical GPUs:
    the healthy units queued on its worker must be sent again uncharged, it must fail alone."""
    import json

    config = root / "collateral.yaml"
    config.write_text(
        sweep_text(trials, 0.0005, "fault: crash, fault_when: {steps: 7}", "max_trial_retries: 2\n")
    )
    t0 = time.perf_counter()
    launched = subprocess.run(
        [
            *CLI,
            "launch",
            "--config",
            str(config),
            "--gpus",
            "2",
            "--out",
            str(root / "runs"),
            "--no-progress",
        ],
        env=ENV,
        capture_output=True,
        text=True,
    )
    wall_s = time.perf_counter() - t0
    run = RunFolder(root / "runs" / "collateral")
    lost, dup, statuses = count(run, trials)
    rows = pq.read_table(run.results).to_pylist()
    failed = {r["steps"] for r in rows if r["status"] == "failed"}
    dispatch = json.loads(run.attempt_log("plan", 1).read_text()).get("dispatch", {})
    return {
        "fault": f"one trial crashes its worker every time, among {trials} on 2 logical GPUs (max_trial_retries 2)",
        "survived": launched.returncode == 1 and failed == {7} and statuses["ok"] == (trials - 1) * 4,
        "lost": lost,
        "duplicated": dup,
        "note": f"launch exit {launched.returncode}, rows {dict(statuses)}; "
        f"{dispatch.get('requeued')} queued unit(s) sent again uncharged, {dispatch.get('quarantined')} "
        f"unit(s) quarantined and run last, alone ({wall_s:.0f} s)",
    }


CASES = {"collateral": collateral}  # cases that can be rerun alone (`--cases`), each updating its own row


def _wait_for(run: RunFolder, n: int) -> None:
    while len(run.finished_trial_ids()) < n:
        time.sleep(0.05)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument(
        "--cases", default="", help=f"rerun only these ({', '.join(CASES)}), updating their rows of the table"
    )
    args = p.parse_args()
    if args.cases:
        rerun_cases(args.out / "fault_injection.md", [CASES[c] for c in args.cases.split(",")])
        return
    rng = random.Random(args.seed)
    points = sorted(rng.sample(range(1, 19), 5))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = [kill_driver(root, pt, rng) for pt in points]
        results += [worker_killed(root), node_removed(root), oom(root), corrupt_shard(root), disk_full(root)]
    lines = [
        "| fault injected | survived | rows lost | rows duplicated | what happened |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [_row(r) for r in results]
    with tempfile.TemporaryDirectory() as tmp:
        lines += [_row(case(Path(tmp))) for case in CASES.values()]
    table = "\n".join(lines)
    print(table)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fault_injection.md").write_text(
        f"# Fault injection\n\n- machine: {platform.node()} ({os.cpu_count()} cores), CPU only, logical GPUs\n"
        f"- date: {dt.date.today().isoformat()}\n- command: `{command}`\n\n{table}\n"
    )


def _row(r: dict) -> str:
    return f"| {r['fault']} | {r['survived']} | {r['lost']} | {r['duplicated']} | {r['note']} |"


def rerun_cases(path: Path, cases: list) -> None:
    """Run `cases` again and put their rows in the table at `path` (a row whose fault text begins the
    same is replaced), saying when and with what command."""
    lines = path.read_text().splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_row(case(Path(tmp))) for case in cases]
    for row in rows:
        print(row)
        key = row.split(" | ")[0].split(",")[0]
        lines = [line for line in lines if not line.startswith(key)] + [row]
    command = " ".join([Path(sys.executable).name, *sys.argv])
    table_start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    lines.insert(table_start - 1, f"- {dt.date.today().isoformat()}: `{command}` (those rows only)")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
