"""Failures are part of the result: listed with their errors, a failed trial makes the launch exit 1,
`resume --retry-failed` runs failed trials again (nothing else twice), and a unit that crashes its
worker takes no healthy unit down with it."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from t2a_ray.cli import main
from t2a_ray.config import parse_sweep
from t2a_ray.orchestrator.crashes import had_started
from t2a_ray.orchestrator.retry import set_aside_failed
from t2a_ray.orchestrator.worker import Worker
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import read_metadata


def faulty_run(tmp_path: Path) -> RunFolder:
    """Two trials of noop in units of one repeat: steps 1 ok, steps 2 raises an error."""
    doc = {
        "name": "f",
        "models": [{"id": "noop", "options": {"fault": "error", "fault_when": {"steps": 2}}}],
        "weights": "tiny",
        "grid": {"steps": [1, 2]},
        "prompts": {"text": ["a"]},
        "repeats": 2,
        "metering": {"idle_baseline_s": 0},
    }
    run = RunFolder(tmp_path / "run")
    run.create(parse_sweep(doc, base_dir=tmp_path).to_yaml())
    return run


def test_retry_failed_sets_aside_the_failed_shards_only(tmp_path):
    run = faulty_run(tmp_path)
    worker = Worker(str(run.root), 0)
    try:
        for t in worker.sweep.trials():
            for r in range(2):
                worker.run_trial(f"{t.trial_id}.r{r}")
    finally:
        worker.shutdown()
    statuses = {p.name: read_metadata(p)["status"] for p in run.shard_paths()}
    assert sorted(Counter(statuses.values()).items()) == [("failed", 2), ("ok", 2)]
    moved = set_aside_failed(run)
    assert len(moved) == 2 and all(statuses[f"{u}.parquet"] == "failed" for u in moved)
    assert {p.name for p in run.shard_paths()} == {n for n, s in statuses.items() if s == "ok"}
    assert sorted(p.name for p in run.retried_dir.iterdir()) == sorted(f"{u}.parquet" for u in moved)
    assert set_aside_failed(run) == []  # nothing failed is left


def test_a_worker_marks_the_submission_it_begins_so_that_a_crash_is_charged_to_it_alone(tmp_path):
    run = faulty_run(tmp_path)
    worker = Worker(str(run.root), 1)
    try:
        unit = f"{worker.sweep.trials()[0].trial_id}.r0"
        assert worker.run_trial(unit, "token-a")["status"] == "ok"
    finally:
        worker.shutdown()
    assert had_started(run, 1, "token-a")
    assert not had_started(run, 1, "token-b")  # queued behind it, never begun
    assert not had_started(run, 0, "token-a")  # another worker


# ---- real sweeps: real Ray on logical GPUs, the real CLI


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def keys(run_dir: Path) -> Counter:
    rows = pq.read_table(run_dir / "results.parquet").to_pylist()
    return Counter((r["trial_id"], r["repeat"], r["prompt_id"], r["status"]) for r in rows)


@pytest.mark.slow
def test_a_failed_trial_makes_the_launch_exit_1_and_retry_failed_runs_it_again_alone(tmp_path, shared_ray):
    marker = tmp_path / "failed-once"
    config = write(
        tmp_path,
        f"""
        name: f
        models:
          - {{id: noop, options: {{fault: error, fault_when: {{steps: 2}}, fault_marker: "{marker}"}}}}
          - {{id: noop, options: {{fault: oom, fault_when: {{steps: 3}}, load_time_s: 0.01}}}}
        weights: tiny
        grid: {{steps: [1, 2, 3], step_time_s: 0.001}}
        prompts: {{text: ["a"]}}
        warmup: 0
        metering: {{idle_baseline_s: 0}}
        """,
    )
    run_dir = tmp_path / "runs" / "f"
    cli = CliRunner()
    ray = ["--address", shared_ray]
    launched = cli.invoke(
        main,
        [
            "launch",
            "--config",
            str(config),
            "--gpus",
            "0",
            "--out",
            str(tmp_path / "runs"),
            "--no-progress",
            *ray,
        ],
    )
    # 1. Exit 1, after merging and reporting: every row is there, the failure listed with its error
    assert launched.exit_code == 1, launched.output
    assert len(keys(run_dir)) == 6
    assert "Failures: 2 of 6 configurations (1 failed, 1 infeasible)" in launched.output
    assert "failed      noop (steps=2): InjectedFault: injected error at {'steps': 2}" in launched.output
    assert f"`t2a-ray resume {run_dir} --retry-failed` runs them again" in launched.output
    assert "<h2>Failures</h2>" in (run_dir / "report" / "index.html").read_text()
    status = cli.invoke(main, ["status", str(run_dir)])
    assert "infeasible  noop (steps=3): InfeasibleError: injected out-of-memory" in status.output
    shards = {p.name: p.stat().st_mtime_ns for p in (run_dir / "trials").glob("*.parquet")}
    # 2. A plain resume leaves the failed trial as it is, says how to retry it, and still exits 1
    resumed = cli.invoke(main, ["resume", str(run_dir), "--gpus", "0", "--no-progress", *ray])
    assert resumed.exit_code == 1 and "--retry-failed" in resumed.output
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "trials").glob("*.parquet")} == shards
    # 3. --retry-failed runs the failed trial (its fault was once) and nothing else: infeasible is kept
    retried = cli.invoke(
        main, ["resume", str(run_dir), "--gpus", "0", "--no-progress", "--retry-failed", *ray]
    )
    assert retried.exit_code == 0, retried.output
    assert "ran 1, skipped 5" in retried.output
    now = {p.name: p.stat().st_mtime_ns for p in (run_dir / "trials").glob("*.parquet")}
    retried_dir = [p.name for p in (run_dir / "trials" / "retried").iterdir()]
    assert sorted(n for n in now if now[n] != shards[n]) == retried_dir and len(retried_dir) == 1
    statuses = Counter(k[3] for k in keys(run_dir))
    assert statuses == {"ok": 5, "infeasible": 1} and len(keys(run_dir)) == 6  # replaced, not doubled
    assert "Failures: 1 of 6 configurations (0 failed, 1 infeasible)" in retried.output


@pytest.mark.slow
def test_a_crash_looping_unit_among_hundreds_fails_alone_and_every_other_trial_is_ok(
    tmp_path, monkeypatch, shared_ray
):
    monkeypatch.setenv("T2A_RAY_LOGICAL_GPUS", "1")
    steps = list(range(1, 201))
    config = write(
        tmp_path,
        f"""
        name: loop
        models: [{{id: noop, options: {{fault: crash, fault_when: {{steps: 3}}}}}}]
        weights: tiny
        grid: {{steps: {steps}, step_time_s: 0.00001}}
        prompts: {{text: ["a"]}}
        warmup: 0
        max_trial_retries: 1
        metering: {{idle_baseline_s: 0, min_window_s: 0}}
        """,
    )
    run_dir = tmp_path / "runs" / "loop"
    result = CliRunner().invoke(
        main,
        # one worker: the healthy units queued behind the crash on that worker are what is tested
        ["launch", "--config", str(config), "--gpus", "1", "--out", str(tmp_path / "runs"), "--no-progress"]
        + ["--address", shared_ray],
    )
    assert result.exit_code == 1, result.output
    rows = pq.read_table(run_dir / "results.parquet").to_pylist()
    assert len(rows) == len(steps) and len({r["trial_id"] for r in rows}) == len(
        steps
    )  # nothing lost or doubled
    bad = [r for r in rows if r["status"] != "ok"]
    assert [(r["steps"], r["status"]) for r in bad] == [(3, "failed")]
    assert bad[0]["error"].startswith(
        "crashed its worker process 2 times, the last time alone: worker process died"
    )
    assert "failed      noop (steps=3): crashed its worker process 2 times" in result.output
    # It crashed with healthy units queued behind it: they were sent again, uncharged; it ran last
    plan = json.loads((run_dir / "logs" / "plan-attempt-1.json").read_text())
    assert plan["dispatch"]["quarantined"] == 1 and plan["dispatch"]["requeued"] >= 1, plan["dispatch"]
    shards = sorted((run_dir / "trials").glob("*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    assert shards[-1].name == f"{bad[0]['trial_id']}.parquet"
