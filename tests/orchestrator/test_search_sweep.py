"""A `strategy: pareto` sweep through `launch` on the CPU: it stops at its budget and resumes after kill -9."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest

from t2a_ray.runfolder import RunFolder

pytestmark = pytest.mark.slow

SEARCH = """
name: s
models: [noop]
weights: tiny
grid: {steps: [1, 2, 4, 8, 16, 32], step_time_s: 0.02}
prompts: {text: ["a"]}
repeats: 2
warmup: 0
metering: {idle_baseline_s: 0}
quality: {clap: true}
search: {strategy: pareto, budget: {trials: 3}}
"""


def test_a_pareto_sweep_stops_at_its_budget_and_resumes_after_kill_9(tmp_path, shared_ray, cli):
    config = tmp_path / "s.yaml"
    config.write_text(textwrap.dedent(SEARCH))
    env = {**os.environ, "T2A_RAY_LOGICAL_GPUS": "1"}
    run = RunFolder(tmp_path / "runs" / "s")
    launch = [sys.executable, "-m", "t2a_ray.cli", "launch", "--config", str(config)]
    launch += ["--out", str(tmp_path / "runs"), "--gpus", "1", "--no-progress"]
    proc = subprocess.Popen(
        launch, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300  # only keeps a broken build from hanging
    while not run.finished_trial_ids() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None and run.finished_trial_ids(), proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)  # the driver only, mid-search
    proc.wait()
    before = run.finished_trial_ids()
    assert 1 <= len(before) < 3
    # the launch killed is a driver with its own Ray; the resume runs in this process and joins its Ray
    result = cli("resume", run.root, "--gpus", "1", "--no-progress", "--address", shared_ray)
    assert result.exit_code == 0, result.output[-3000:]
    after = run.finished_trial_ids()
    assert before <= after and len(after) == 3  # the budget: 3 trials in all, none lost
    table = pq.read_table(run.results).to_pylist()
    keys = Counter((r["trial_id"], r["repeat"], r["prompt_id"]) for r in table)
    assert len(keys) == 3 * 2 and set(keys.values()) == {1}  # nothing ran twice
    ran, skipped = map(int, re.search(r"6 trials: ran (\d+), skipped (\d+)", result.stderr).groups())
    assert ran + skipped == 3 and skipped >= len(before)  # workers may finish the trial in hand
    # the report says what was measured and what the search's cost model predicts for the rest
    assert "Search pareto (budget trials 3): 3 configurations of 6 measured" in result.stdout
    assert "Search: configurations not measured" in result.stdout
    # the search began where every group's front begins: the cheapest configuration
    steps = {r["trial_id"]: r["steps"] for r in table}
    assert 1 in steps.values()


STUDY = """
name: study
models: [audioldm, stable-audio-open, tango]
weights: tiny
grid: {steps: [2, 4, 8], batch_size: [1, 2], duration_s: 1}
prompts: {text: ["a dog barks"]}
repeats: 2
quality: {clap: true}
search: {strategy: pareto}
"""


def test_a_pareto_study_of_models_with_different_parameters_runs_to_the_end_and_resumes(
    tmp_path, shared_ray, cli
):
    """stable-audio-open has no `scheduler`: a missing value in the search's grid, once a crash. The
    launch and the resume run in this process and join its Ray, on the CPU as a local launch here would
    run."""
    config = tmp_path / "study.yaml"
    config.write_text(textwrap.dedent(STUDY))
    ray = ["--address", shared_ray, "--gpus", "0"]
    result = cli("launch", "--config", config, "--out", tmp_path / "runs", "--no-progress", *ray)
    assert result.exit_code == 0, result.output[-5000:]
    run = RunFolder(tmp_path / "runs" / "study")
    finished = run.finished_trial_ids()
    assert 3 <= len(finished) < 18  # each model's cheapest, then what the budget allows
    assert (run.root / "report" / "index.html").exists()
    assert re.search(
        r"Search pareto \(budget energy_fraction 0\.3\): \d+ configurations of 18 measured", result.stdout
    )
    assert '{"id"' not in result.stdout  # models by name
    again = cli("resume", run.root, "--no-progress", *ray)
    assert again.exit_code == 0, again.output[-5000:]
    # the launch spent the budget: the resume joins no Ray and starts no worker (plans no attempt)
    assert run.attempt_log("plan", 1).exists() and not run.attempt_log("plan", 2).exists()
    assert run.finished_trial_ids() == finished
    keys = Counter(
        (r["trial_id"], r["repeat"], r["prompt_id"]) for r in pq.read_table(run.results).to_pylist()
    )
    assert set(keys.values()) == {1}  # nothing ran twice
