"""Fault injection: real sweeps (the `noop` adapter, real Ray, the real CLI in subprocesses) hit with
the faults a long sweep meets, and a table of what was injected and what survived.

    python benchmarks/fault_injection.py            # about 5 minutes on 2 cores
    python benchmarks/fault_injection.py --integrity   # the run-folder cases alone: their own section

Every case ends by counting the (trial, repeat, prompt) rows of results.parquet: lost = expected keys
that are missing, duplicated = keys seen more than once. Both must be 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
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
from t2a_ray.errors import StorageError
from t2a_ray.frozen import create_run
from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep
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
    create_run(run, load_sweep(config, name=name, device="cpu"))  # as a launch does
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

    from t2a_ray.orchestrator.ray_token import ensure_local_token

    ensure_local_token()  # a Ray started without ray.init makes no token of its own
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


# ---- the run folder's integrity: each case says the exit code of the command that met the fault


def launch_race(root: Path, tries: int = 2) -> list[dict]:
    """Two `t2a-ray launch` of one name at once, asking for different grids: one runs, one exits 2."""
    out = []
    for i in range(tries):
        configs = []
        for tag, steps in (("a", "[1, 2]"), ("b", "[7, 8, 9]")):
            config = root / f"race{i}{tag}.yaml"
            config.write_text(sweep_text(0, 0.02).replace("steps: []", f"steps: {steps}"))
            configs.append(config)
        procs = [
            subprocess.Popen(
                [
                    *CLI,
                    "launch",
                    "--config",
                    str(c),
                    "--name",
                    f"race{i}",
                    "--out",
                    str(root / "runs"),
                    "--gpus",
                    "1",
                    "--no-progress",
                ],
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for c in configs
        ]
        errs = [p.communicate()[1] for p in procs]
        codes = [p.returncode for p in procs]
        last = [e.strip().splitlines()[-1][:120] if e.strip() else "" for e in errs]
        run = RunFolder(root / "runs" / f"race{i}")
        if not run.results.is_file():  # no launch finished: say what each said
            out.append(
                {
                    "fault": f"two `launch` of one name at once (try {i + 1})",
                    "survived": False,
                    "lost": None,
                    "duplicated": None,
                    "exit": "/".join(map(str, codes)),
                    "note": f"no results: `{last[0]}` / `{last[1]}`",
                }
            )
            continue
        n = len(run.trial_list.read_text().splitlines())
        lost, dup, statuses = count(run, n)
        asked = dict(zip(codes, ("steps [1, 2]", "steps [7, 8, 9]"), strict=True))
        ran_steps = sorted({r["steps"] for r in pq.read_table(run.results).to_pylist()})
        refused = next((t for t, c in zip(last, codes, strict=True) if c == 2), "?")
        out.append(
            {
                "fault": f"two `launch` of one name at once (try {i + 1})",
                "survived": sorted(codes) == [0, 2] and len(ran_steps) == n,
                "lost": lost,
                "duplicated": dup,
                "exit": "/".join(map(str, codes)),
                "note": f"the {asked.get(0)} launch ran (steps {ran_steps}); the other: `{refused}`",
            }
        )
    return out


def flipped_bit(root: Path) -> dict:
    """One bit of a stored value flipped in a shard (footer still valid), one unit left to run."""
    import struct

    run = new_run(root, "flip", sweep_text(10, 0.005))
    run_sweep(run, LaunchOptions(gpus=1, progress=False))
    rotten, missing = run.shard_paths()[:2]
    value = pq.read_table(rotten).column("cpu_energy_j").to_pylist()[0]
    data = bytearray(rotten.read_bytes())
    data[data.find(struct.pack("<d", value))] ^= 1
    rotten.write_bytes(bytes(data))
    missing.unlink()
    resumed = subprocess.run(
        [*CLI, "resume", str(run.root), "--gpus", "1", "--no-progress"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    lost, dup, statuses = count(run, 10)
    said = re.search(r"outcomes: ([^(]*)", resumed.stderr)
    last = resumed.stderr.strip().splitlines()[-1][:150] if resumed.stderr.strip() else ""
    return {
        "fault": "one bit flipped in a shard's data page (footer valid), one unit left",
        "survived": resumed.returncode == 0 and lost == 0,
        "lost": lost,
        "duplicated": dup,
        "exit": resumed.returncode,
        "note": f"the merge moved it aside and its unit ran again in the same resume; said: {said.group(1).strip() if said else last}",
    }


def edited_sweep(root: Path) -> dict:
    """sweep.yaml edited after launch (a window setting and a grid value): refused, then accepted."""
    run = new_run(root, "edit", sweep_text(6, 0.005))
    run_sweep(run, LaunchOptions(gpus=1, progress=False))
    text = run.sweep_yaml.read_text()
    run.sweep_yaml.write_text(text.replace("min_window_s: 0.0", "min_window_s: 1.0").replace("  - 6\n", ""))
    refused = subprocess.run(
        [*CLI, "resume", str(run.root), "--gpus", "1", "--no-progress"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    accepted = subprocess.run(
        [*CLI, "resume", str(run.root), "--gpus", "1", "--no-progress", "--accept-changed-sweep"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    lost, dup, statuses = count(run, 5)
    rows = sum(statuses.values())
    return {
        "fault": "sweep.yaml edited after launch (metering.min_window_s, one grid value removed)",
        "survived": refused.returncode == 2 and accepted.returncode == 0 and rows == 5 * 4,
        "lost": lost,
        "duplicated": dup,
        "exit": f"{refused.returncode}, then {accepted.returncode} with --accept-changed-sweep",
        "note": f"`{refused.stderr.strip().splitlines()[-1][:150]}`; accepted: {rows} rows, the removed trial's 2 shards in trials/foreign/",
    }


def foreign_shards(root: Path) -> dict:
    """A symlink to another run's shard and a copy of one, each named for a unit of this run."""
    run = new_run(root, "mine", sweep_text(6, 0.005))
    other = new_run(root, "other", sweep_text(6, 0.005))
    for r in (run, other):
        run_sweep(r, LaunchOptions(gpus=1, progress=False))
    a, b = run.shard_paths()[:2]
    a.unlink()
    a.symlink_to(other.shard(a.name[: -len(".parquet")]))
    b.write_bytes(other.shard(b.name[: -len(".parquet")]).read_bytes())
    (run.trials_dir / "stray.parquet").write_bytes(other.shard_paths()[2].read_bytes())
    run.results.unlink()
    resumed = subprocess.run(
        [*CLI, "resume", str(run.root), "--gpus", "1", "--no-progress"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    lost, dup, statuses = count(run, 6)
    theirs = {r["trial_id"] for r in pq.read_table(run.results).to_pylist()} - {
        json.loads(line)["trial_id"] for line in run.trial_list.read_text().splitlines()
    }
    aside = sorted(p.name for p in run.foreign_dir.glob("*.parquet"))
    return {
        "fault": "a symlink to another run's shard, a copy of one, a stray Parquet file in trials/",
        "survived": resumed.returncode == 0 and lost == dup == 0 and len(aside) == 3 and not theirs,
        "lost": lost,
        "duplicated": dup,
        "exit": resumed.returncode,
        "note": f"{len(aside)} moved to trials/foreign/ with notes, their units ran again; rows of another run merged: {len(theirs)}",
    }


def card_default_changed(root: Path) -> dict:
    """A model card's default changed between the launch and the resume (in the driver's process)."""
    from dataclasses import replace

    from t2a_ray.adapters.cards import CARDS

    run = new_run(root, "card", sweep_text(6, 0.005))
    run_sweep(run, LaunchOptions(gpus=1, progress=False))
    launched = {r["trial_id"] for r in pq.read_table(run.results).to_pylist()}
    for shard in run.shard_paths()[:4]:
        shard.unlink()
    card = CARDS["noop"]
    CARDS["noop"] = replace(
        card, params=tuple(replace(p, default=2.5) if p.name == "duration_s" else p for p in card.params)
    )
    try:
        out = run_sweep(run, LaunchOptions(gpus=1, progress=False))
    finally:
        CARDS["noop"] = card
    lost, dup, statuses = count(run, 6)
    ids = {r["trial_id"] for r in pq.read_table(run.results).to_pylist()}
    return {
        "fault": "a card default changed between launch and resume",
        "survived": ids == launched and lost == dup == 0 and out.pending == 0,
        "lost": lost,
        "duplicated": dup,
        "exit": 0,
        "note": f"the resume ran {out.ran} trial(s) under the launched ids (trials.jsonl); trial ids unchanged: {ids == launched}",
    }


def killed_writer_and_unfinished(root: Path) -> dict:
    """A merge killed mid-write (its temp file left), then `analyze` of a run with trials pending."""
    from t2a_ray.runfolder import host_name

    run = new_run(root, "tmp", sweep_text(6, 0.005))
    run_sweep(run, LaunchOptions(gpus=1, progress=False))
    # a writer of results.parquet (the merge's own atomic_write) killed -9 halfway through its write
    code = (
        "import sys, time; from pathlib import Path; from t2a_ray.runfolder import atomic_write\n"
        "atomic_write(Path(sys.argv[1]), lambda f: (f.write(b'PAR1' * 1000), f.flush(), time.sleep(600)))"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(run.results)])
    left = run.root / f".results.parquet.{writer.pid}@{host_name()}.tmp"
    while not (left.exists() and left.stat().st_size):
        time.sleep(0.05)
    writer.kill()
    writer.wait()
    assert left.exists()
    for shard in run.shard_paths()[:4]:
        shard.unlink()
    analyzed = subprocess.run([*CLI, "analyze", str(run.root)], env=ENV, capture_output=True, text=True)
    said = re.search(r"note: the run is unfinished: ([^(]*)", analyzed.stderr)
    return {
        "fault": "kill -9 of a writer mid-write (temp file left); `analyze` of an unfinished run",
        "survived": analyzed.returncode == 0 and not left.exists() and said is not None,
        "lost": None,
        "duplicated": None,
        "exit": analyzed.returncode,
        "note": f"temp file removed at the next open: {not left.exists()}; analyze said: {said.group(1).strip() if said else 'nothing'}",
    }


def ray_leftovers(root: Path) -> dict:
    """What a local Ray leaves behind: its token file's mode, its session folder."""
    import stat as stat_

    import ray

    from t2a_ray.orchestrator.ray_token import default_token_file
    from t2a_ray.orchestrator.runner import ray_session

    with ray_session(LaunchOptions(gpus=1, progress=False)):
        session = Path(ray._private.worker.global_worker.node.get_session_dir_path())
    token = default_token_file()
    mode = oct(stat_.S_IMODE(token.stat().st_mode)) if token.exists() else None
    return {
        "fault": "a local Ray started and stopped",
        "survived": not session.exists() and mode in (None, "0o600"),
        "lost": None,
        "duplicated": None,
        "exit": 0,
        "note": f"token file {mode}; its session folder left: {session.exists()}",
    }


def full_disk_resume(root: Path) -> dict:
    """`resume` while the disk is still full (2 MiB tmpfs)."""
    mount = root / "small2"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        return {
            "fault": "resume on a still-full disk",
            "survived": None,
            "lost": None,
            "duplicated": None,
            "exit": None,
            "note": "skipped: cannot mount a tmpfs",
        }
    try:
        run = new_run(mount, "full2", sweep_text(4, 0.005))
        run_sweep(run, LaunchOptions(gpus=1, progress=False))
        run.shard_paths()[0].unlink()
        (mount / "ballast").write_bytes(b"\0" * shutil.disk_usage(mount).free)
        resumed = subprocess.run(
            [*CLI, "resume", str(run.root), "--gpus", "1", "--no-progress"],
            env=ENV,
            capture_output=True,
            text=True,
        )
        lines = [line for line in resumed.stderr.splitlines() if line.strip()]
        return {
            "fault": "resume on a still-full disk (2 MiB tmpfs)",
            "survived": resumed.returncode == 1 and len(lines) == 1 and "Traceback" not in resumed.stderr,
            "lost": None,
            "duplicated": None,
            "exit": resumed.returncode,
            "note": f"one line: `{lines[0][:140] if lines else ''}…`",
        }
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def integrity_cases(root: Path) -> list[dict]:
    return [
        *launch_race(root),
        flipped_bit(root),
        edited_sweep(root),
        foreign_shards(root),
        card_default_changed(root),
        killed_writer_and_unfinished(root),
        full_disk_resume(root),
        ray_leftovers(root),
    ]


def _wait_for(run: RunFolder, n: int) -> None:
    while len(run.finished_trial_ids()) < n:
        time.sleep(0.05)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--integrity", action="store_true", help="the run folder's integrity cases only")
    p.add_argument(
        "--cases", default="", help=f"rerun only these ({', '.join(CASES)}), updating their rows of the table"
    )
    args = p.parse_args()
    if args.cases:
        rerun_cases(args.out / "fault_injection.md", [CASES[c] for c in args.cases.split(",")])
    elif args.integrity:
        write_integrity(args.out)
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
    lines += [
        f"| {r['fault']} | {r['survived']} | {r['lost']} | {r['duplicated']} | {r['note']} |" for r in results
    ]
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


INTEGRITY_HEADING = "## The run folder's integrity"


def write_integrity(out: Path) -> None:
    """Run the integrity cases and put their table in its own section of fault_injection.md."""
    with tempfile.TemporaryDirectory() as tmp:
        results = integrity_cases(Path(tmp))
    lines = [
        "| fault injected | survived | rows lost | rows doubled | exit code | what happened |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['fault']} | {r['survived']} | {r['lost']} | {r['duplicated']} | {r['exit']} | {r['note'].replace('|', '/')} |"
        for r in results
    ]
    table = "\n".join(lines)
    print(table)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    path = out / "fault_injection.md"
    text = path.read_text() if path.exists() else "# Fault injection\n"
    text = text.split(f"\n{INTEGRITY_HEADING}")[0].rstrip("\n")
    path.write_text(
        f"{text}\n\n{INTEGRITY_HEADING}\n\n- machine: {platform.node()} ({os.cpu_count()} cores), CPU only, "
        f"logical GPUs\n- date: {dt.date.today().isoformat()}\n- command: `{command}`\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
