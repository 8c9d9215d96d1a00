"""Ctrl-C as a contract, through the real CLI in a subprocess: a CPU sweep on two logical GPUs gets
SIGINT the way a terminal sends it (to the driver's whole process group), then `resume` finishes it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_sweeps import alive_after  # noqa: I001 — sibling test module

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator.reaper import descendants
from t2a_ray.runfolder import RunFolder

pytestmark = pytest.mark.slow

TRIALS = 10
SWEEP = f"""
name: i
models: [noop]
weights: tiny
grid: {{steps: {list(range(1, TRIALS + 1))}, step_time_s: 0.2}}
prompts: {{text: ["a"]}}
warmup: 0
metering: {{idle_baseline_s: 0.5}}
"""
ENV = {**os.environ, "T2A_RAY_LOGICAL_GPUS": "1"}
CLI = [sys.executable, "-m", "t2a_ray.cli"]


def launch(tmp_path: Path) -> tuple[subprocess.Popen, RunFolder, Path]:
    config = tmp_path / "i.yaml"
    config.write_text(SWEEP)
    log = tmp_path / "launch.log"
    cmd = [*CLI, "launch", "--config", str(config), "--out", str(tmp_path / "runs"), "--gpus", "2"]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, env=ENV, start_new_session=True, stdout=err, stderr=err)
    return proc, RunFolder(tmp_path / "runs" / "i"), log


def wait_for_trials(proc: subprocess.Popen, run: RunFolder, n: int, log: Path) -> None:
    deadline = time.monotonic() + 180
    while len(run.finished_trial_ids()) < n and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, log.read_text()[-3000:]
    assert len(run.finished_trial_ids()) < TRIALS, "the sweep ended before it could be interrupted"


def resume_and_check_exactly_once(run: RunFolder, done_before: dict[str, int]) -> None:
    result = subprocess.run(
        [*CLI, "resume", str(run.root), "--gpus", "2", "--no-progress"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipped {len(done_before)} already done" in result.stderr
    ids = {t.trial_id for t in load_sweep(run.sweep_yaml).trials()}
    rows = pq.read_table(run.results).to_pylist()
    assert Counter(r["trial_id"] for r in rows) == Counter(dict.fromkeys(ids, 1))  # nothing lost or doubled
    assert {r["status"] for r in rows} == {"ok"}
    # what was done before the interrupt was not run again
    assert {tid: run.shard(tid).stat().st_mtime_ns for tid in done_before} == done_before


def interrupted_line(log: Path) -> re.Match:
    text = log.read_text()
    assert "Traceback" not in text and "Tuner.restore" not in text, text[-3000:]
    assert "RAY_AUTH_MODE" not in text  # Ray's advice to turn authentication off is not passed on
    found = re.search(r"interrupted: (\d+) done, (\d+) to run — continue with `t2a-ray resume (.+)`", text)
    assert found, text[-3000:]
    return found


def test_ctrl_c_stops_within_seconds_exits_130_and_resume_finishes_the_sweep(tmp_path):
    proc, run, log = launch(tmp_path)
    wait_for_trials(proc, run, 2, log)
    t_signal = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    assert time.monotonic() - t_signal < 5, "the first Ctrl-C must stop the sweep within seconds"
    found = interrupted_line(log)
    done = run.finished_trial_ids()
    assert (int(found[1]), int(found[2]), found[3]) == (len(done), TRIALS - len(done), str(run.root))
    time.sleep(2)
    assert run.finished_trial_ids() == done  # trials cut short wrote nothing, then or later
    assert not run.report_dir.exists()  # no analysis of a sweep cut short
    # progress from the first second: Ray's start and the workers' preparation before any trial ends
    text = log.read_text()
    first_trial = text.index("trials ·")
    for said in (
        "starting a local Ray",
        "Ray is up",
        ": measuring the idle baseline (0.5 s)",
        ": loading noop (tiny weights",  # the first trial's model, loaded before it ends
    ):
        assert -1 < text.find(said) < first_trial, said
    assert "sweep i: 10 trials × 1 repeat × 1 prompt" in text
    resume_and_check_exactly_once(run, {tid: run.shard(tid).stat().st_mtime_ns for tid in done})


def test_a_second_ctrl_c_exits_at_once_and_takes_rays_processes_with_it(tmp_path):
    proc, run, log = launch(tmp_path)
    wait_for_trials(proc, run, 1, log)
    ray_processes = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.05)
    t_second = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    assert time.monotonic() - t_second < 1.5
    found = interrupted_line(log)
    assert alive_after(ray_processes, 5) == []  # the reaper: nothing of this Ray outlives its driver
    done = run.finished_trial_ids()
    assert int(found[1]) <= len(done) and int(found[1]) + int(found[2]) == TRIALS
    resume_and_check_exactly_once(run, {tid: run.shard(tid).stat().st_mtime_ns for tid in done})
