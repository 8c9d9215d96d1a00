"""Real sweeps on real Ray (logical GPUs, several nodes on one machine) with the `noop` adapter."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from t2a_ray.adapters import adapter_class
from t2a_ray.config import load_sweep
from t2a_ray.frozen import create_run
from t2a_ray.metering import open_meter
from t2a_ray.orchestrator.device import TorchDevice
from t2a_ray.orchestrator.launch_timeline import PHASES
from t2a_ray.orchestrator.plan import trial_done
from t2a_ray.orchestrator.reaper import descendants, start_time
from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep
from t2a_ray.orchestrator.trial import TrialEnv, run_trial
from t2a_ray.runfolder import RunFolder

pytestmark = pytest.mark.slow


def make_run(tmp_path: Path, body: str, name: str = "r") -> RunFolder:
    config = tmp_path / f"{name}.yaml"
    config.write_text(textwrap.dedent(body))
    sweep = load_sweep(config, name=name, device="cpu")
    run = RunFolder(tmp_path / "runs" / name)
    create_run(run, sweep)  # as a launch does: sweep.yaml, trials.jsonl, run.json
    return run


def rows(run: RunFolder) -> list[dict]:
    return pq.read_table(run.results).to_pylist()


# Long enough for a loaded machine's reaper (it polls every 0.5 s), well short of the minute Ray's agents
# stay by themselves once their driver is gone (benchmarks/results/driver_kill_leftovers.md)
REAPED_WITHIN_S = 30


def alive_after(processes: set[tuple[int, str]], seconds: float) -> list[int]:
    """The pids of `processes` (pid, start time) still alive after waiting up to `seconds` for them."""
    deadline = time.monotonic() + seconds
    while (alive := [p for p, start in processes if start_time(p) == start]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def worker_stats(run: RunFolder) -> list[dict]:
    return [s for f in sorted(run.logs_dir.glob("workers-attempt-*.json")) for s in json.loads(f.read_text())]


TWO_MODELS = """
models:
  - {id: noop, options: {load_time_s: 0.05}}
  - {id: noop, options: {load_time_s: 0.06}}
weights: tiny
grid: {steps: [1, 2, 3, 4], step_time_s: 0.01}
prompts: {text: ["a", "b"]}
repeats: 2
warmup: 1
metering: {idle_baseline_s: 0.1}
"""


@pytest.fixture(scope="module")
def two_models_on_two_gpus(tmp_path_factory, shared_ray):
    """One sweep of TWO_MODELS on two logical GPUs (placement auto: spread with 2 workers), whose run
    folder and outcome the tests below only read: one sweep to pay for, not one per test."""
    run = make_run(tmp_path_factory.mktemp("two-models"), TWO_MODELS)
    return run, run_sweep(run, LaunchOptions(gpus=2, address=shared_ray, progress=False))


def test_two_models_on_two_logical_gpus_load_each_model_at_most_once_per_gpu(two_models_on_two_gpus):
    run, outcome = two_models_on_two_gpus
    assert outcome.statuses == {"ok": 8}
    table = rows(run)
    assert len(table) == 8 * 2 * 2
    assert Counter((r["trial_id"], r["repeat"], r["prompt_id"]) for r in table).most_common(1)[0][1] == 1
    stats = worker_stats(run)
    assert len(stats) == 2
    loads = [n for s in stats for n in s["loads"].values()]
    assert loads and max(loads) == 1
    # one logical GPU each, which no worker sees as a CUDA device (on a GPU host, "0" is a real GPU)
    assert [s["ray_gpus"] for s in stats] == [1, 1] and {s["cuda_visible_devices"] for s in stats} == {""}
    assert all(r["status"] == "ok" and r["window_s"] > 0 for r in table)
    # the throttle columns are there, null where no GPU could say (logical GPUs)
    assert all(r["throttle_reasons"] is None and r["throttled"] is None for r in table)
    # each worker prefetched the code of the models the plan gave it, beside its idle baseline
    gpus = json.loads((run.logs_dir / "gpus-attempt-1.json").read_text())
    assert [g["prefetched"] for g in gpus] == [["noop"], ["noop"]]
    # Tune's folder keeps each trial's result.json (its result grid reads it), no CSV or TensorBoard copy
    tune_files = {p.name.split(".")[0] for p in run.tune_dir.rglob("*") if p.is_file()}
    assert "result" in tune_files and not tune_files & {"progress", "events"}
    # the launch's timeline: every phase, in order, inside the launch's wall time
    timeline = json.loads((run.logs_dir / "timeline-attempt-1.json").read_text())
    phases = timeline["phases_s"]
    assert list(phases) == list(PHASES)
    assert 0 < phases["ray_up"] and list(phases.values()) == sorted(phases.values())
    assert phases["merge_done"] <= outcome.wall_s
    for w in timeline["workers"]:
        assert phases["workers_started"] <= w["prepared_s"] <= w["first_unit_started_s"]
        assert w["first_unit_started_s"] <= w["last_unit_ended_s"] <= phases["last_unit_ended"]


def test_spread_on_two_logical_gpus_runs_every_configurations_repeats_on_both_workers(two_models_on_two_gpus):
    run, outcome = two_models_on_two_gpus  # placement auto: spread with 2 workers
    assert outcome.statuses == {"ok": 8}
    # resolved once, frozen in the first plan for a resume; sweep.yaml is never rewritten
    assert load_sweep(run.sweep_yaml).placement == "auto"
    by_trial: dict[str, set[tuple[int, str]]] = {}
    for r in rows(run):
        by_trial.setdefault(r["trial_id"], set()).add((r["worker_id"], r["host_id"]))
    assert len(by_trial) == 8
    assert all({w for w, _ in places} == {0, 1} for places in by_trial.values())
    plan = json.loads((run.logs_dir / "plan-attempt-1.json").read_text())
    assert plan["placement"] == "spread" and plan["units_pending"] == 16
    assert plan["dispatch"]["assigned"] == 16
    gpus = json.loads((run.logs_dir / "gpus-attempt-1.json").read_text())
    assert all(g["host_id"] and g["reference_launch_s"] > 0 for g in gpus)
    assert sum(s["warmups"] for s in worker_stats(run)) <= 4  # per (worker, model, shape), not per unit


def test_pack_on_two_logical_gpus_runs_repeats_as_units_and_keeps_shards_of_whole_trials(
    tmp_path, shared_ray
):
    run = make_run(tmp_path, TWO_MODELS + "placement: pack\n")
    sweep = load_sweep(run.sweep_yaml)
    trials = sweep.trials()
    # a folder where two trials were written whole (one shard per trial, as pack wrote them before)
    adapter = adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny")
    with open_meter(None) as meter:
        env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"worker_id": 9})
        for t in trials[:2]:
            assert run_trial(t, env).status == "ok"
    whole = {t.trial_id: run.shard(t.trial_id).stat().st_mtime_ns for t in trials[:2]}
    outcome = run_sweep(run, LaunchOptions(gpus=2, address=shared_ray, progress=False))
    assert outcome.statuses == {"ok": 8} and (outcome.ran, outcome.skipped) == (6, 2)
    assert {tid: run.shard(tid).stat().st_mtime_ns for tid in whole} == whole  # not run again
    plan = json.loads((run.logs_dir / "plan-attempt-1.json").read_text())
    assert plan["placement"] == "pack" and plan["units_pending"] == 6 * 2  # one unit per repeat
    assert plan["dispatch"]["assigned"] == 12
    assert run.finished_trial_ids() == set(whole) | {f"{t.trial_id}.r{r}" for t in trials[2:] for r in (0, 1)}
    table = rows(run)
    keys = Counter((r["trial_id"], r["repeat"], r["prompt_id"]) for r in table)
    assert len(keys) == 8 * 2 * 2 and set(keys.values()) == {1}  # every window once
    ran = [r for r in table if r["trial_id"] not in whole]
    assert {r["worker_id"] for r in ran} == {0, 1}  # each row says which worker ran it
    by_unit: dict[tuple[str, int], set[int]] = {}
    for r in ran:
        by_unit.setdefault((r["trial_id"], r["repeat"]), set()).add(r["worker_id"])
    assert all(len(w) == 1 for w in by_unit.values())  # a repeat's windows on one worker


def test_injected_oom_marks_one_trial_infeasible_and_the_sweep_finishes(tmp_path, shared_ray):
    run = make_run(
        tmp_path,
        """
        models: [{id: noop, options: {fault: oom, fault_when: {steps: 2}}}]
        weights: tiny
        grid: {steps: [1, 2, 3]}
        prompts: {text: ["a"]}
        repeats: 2
        metering: {idle_baseline_s: 0}
    """,
    )
    outcome = run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False))
    by_steps = {}
    for r in rows(run):
        by_steps.setdefault(r["steps"], set()).add(r["status"])
    assert by_steps == {1: {"ok"}, 2: {"infeasible"}, 3: {"ok"}}
    assert outcome.statuses == {"ok": 2, "infeasible": 1}
    bad = [r for r in rows(run) if r["status"] == "infeasible"]
    assert all(r["gpu_energy_j"] is None and "out-of-memory" in r["error"] for r in bad)


def test_a_worker_process_that_dies_mid_trial_is_replaced_and_the_trial_retried(tmp_path, shared_ray):
    marker = tmp_path / "crashed-once"
    run = make_run(
        tmp_path,
        f"""
        models: [{{id: noop, options: {{fault: crash, fault_when: {{steps: 2}}, fault_marker: "{marker}"}}}}]
        weights: tiny
        grid: {{steps: [1, 2, 3]}}
        prompts: {{text: ["a"]}}
        metering: {{idle_baseline_s: 0}}
    """,
    )
    outcome = run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False))
    assert marker.exists()  # it did crash
    assert outcome.statuses == {"ok": 3}
    assert len(rows(run)) == 3


def test_a_trial_that_always_kills_its_worker_becomes_failed_rows_after_the_retries(tmp_path, shared_ray):
    run = make_run(
        tmp_path,
        """
        models: [{id: noop, options: {fault: crash, fault_when: {steps: 2}}}]
        weights: tiny
        grid: {steps: [1, 2]}
        prompts: {text: ["a"]}
        max_trial_retries: 1
        metering: {idle_baseline_s: 0}
    """,
    )
    outcome = run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False))
    assert outcome.statuses == {"ok": 1, "failed": 1}
    failed = [r for r in rows(run) if r["status"] == "failed"]
    assert len(failed) == 1 and "worker process died" in failed[0]["error"]


def test_workers_spread_over_the_nodes_of_a_cluster(tmp_path, ray_cluster):
    cluster = ray_cluster(num_cpus=1, num_gpus=1)
    for _ in range(2):
        cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        run = make_run(tmp_path, TWO_MODELS)
        outcome = run_sweep(
            run, LaunchOptions(gpus=None, address=cluster.address, progress=False)
        )  # None: every GPU
        assert outcome.statuses == {"ok": 8}
        stats = worker_stats(run)
        assert len({s["node_id"] for s in stats}) == 3
    finally:
        cluster.shutdown()


def _launch_cmd(config: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "t2a_ray.cli",
        "launch",
        "--config",
        str(config),
        "--out",
        str(out),
        "--gpus",
        "2",
        "--no-progress",
        *extra,
    ]


@pytest.mark.parametrize("placement", ["pack", "spread"])
def test_kill_9_of_the_driver_then_resume_gives_every_row_exactly_once(tmp_path, placement, shared_ray, cli):
    config = tmp_path / "k.yaml"
    config.write_text(
        textwrap.dedent(f"""
        name: k
        placement: {placement}
        models: [noop]
        weights: tiny
        grid: {{steps: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], step_time_s: 0.05}}
        prompts: {{text: ["a", "b"]}}
        repeats: 2
        warmup: 0
        metering: {{idle_baseline_s: 0}}
    """)
    )
    env = {**os.environ, "T2A_RAY_LOGICAL_GPUS": "1"}
    run = RunFolder(tmp_path / "runs" / "k")
    proc = subprocess.Popen(
        _launch_cmd(config, tmp_path / "runs"),
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300  # only keeps a broken build from hanging
    while len(run.finished_trial_ids()) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None and len(run.finished_trial_ids()) >= 3, proc.stderr.read().decode()[-2000:]
    ray_processes = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only: Ray's own processes must notice and go
    proc.wait()
    assert alive_after(ray_processes, REAPED_WITHIN_S) == []  # its reaper takes them
    finished = run.finished_trial_ids()
    assert 3 <= len(finished) < 20  # one unit per repeat, under either placement
    trials_done = sum(trial_done(t.trial_id, finished, 2) for t in load_sweep(run.sweep_yaml).trials())
    written = {p: p.stat().st_mtime_ns for p in run.shard_paths()}
    # the resume runs in this process and joins its Ray: the killed driver and its own Ray are what this
    # test is about. One worker: the placement the launch froze holds for a resume on any number of workers
    result = cli("resume", run.root, "--gpus", "1", "--no-progress", "--address", shared_ray)
    assert result.exit_code == 0, result.output[-3000:]
    skipped = int(re.search(r"skipped (\d+) already done", result.stderr).group(1))
    assert skipped >= trials_done  # workers may finish the unit in hand before they go
    assert all(p.stat().st_mtime_ns == t for p, t in written.items())  # no finished unit ran again
    table = rows(run)
    keys = Counter((r["trial_id"], r["repeat"], r["prompt_id"]) for r in table)
    assert len(keys) == 10 * 2 * 2 and set(keys.values()) == {1}
