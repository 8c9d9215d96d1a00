"""Ctrl-C as a contract, through the real CLI in a subprocess: a CPU sweep on two logical GPUs gets
SIGINT the way a terminal sends it (to the driver's whole process group), then `resume` (in the test
process, no part of what is interrupted) finishes it.

No wall-clock limit here (a loaded machine keeps none): "within seconds" is observed as "before the
sweep would have finished by itself", "at once" as "before the first Ctrl-C's orderly stop reached
Ray". The times themselves are measured in benchmarks/results/ctrl_c_cpu.md."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_sweeps import REAPED_WITHIN_S, alive_after  # noqa: I001 — sibling test module

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator import runner
from t2a_ray.orchestrator.reaper import descendants
from t2a_ray.orchestrator.runner import stop_on_sigint
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
# As a user's shell has it: no RAY_AUTH_MODE (a test process that ran a Ray has Ray's own setting)
ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}, "T2A_RAY_LOGICAL_GPUS": "1"}
CLI = [sys.executable, "-m", "t2a_ray.cli"]
NEVER_S = 240  # a deadline that only keeps a broken build from hanging the suite


@pytest.fixture
def ray_tmpdir():
    """Ray's own folder for this test's sweeps (their logs), short: its socket paths must fit 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="t2a-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def launch(tmp_path: Path, ray_tmpdir: Path) -> tuple[subprocess.Popen, RunFolder, Path]:
    config = tmp_path / "i.yaml"
    config.write_text(SWEEP)
    log = tmp_path / "launch.log"
    cmd = [*CLI, "launch", "--config", str(config), "--out", str(tmp_path / "runs"), "--gpus", "2"]
    env = {**ENV, "RAY_TMPDIR": str(ray_tmpdir)}
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=err, stderr=err)
    return proc, RunFolder(tmp_path / "runs" / "i"), log


def raylet_was_asked_to_stop(ray_tmpdir: Path) -> bool:
    """Whether the orderly stop (`ray.shutdown`, which sends the raylet SIGTERM first) reached the
    launch's Ray; a second Ctrl-C SIGKILLs Ray's processes instead."""
    logs = list(ray_tmpdir.glob("ray/session_2*/logs/raylet.out"))  # the launch's one Ray, not session_latest
    if not logs:  # t2a-ray removes its local Ray's session folder after the orderly stop, and only then
        return not any(ray_tmpdir.glob("ray/session_2*"))
    [log] = logs
    return "received SIGTERM" in log.read_text(errors="replace")


def wait_for_trials(proc: subprocess.Popen, run: RunFolder, n: int, log: Path, printed: str = "") -> None:
    """Until `n` trials have their shard and the launch has printed `printed` (its progress line comes
    after the shards it counts: Tune reports each trial's end to the driver later)."""
    deadline = time.monotonic() + NEVER_S

    def reached() -> bool:
        return len(run.finished_trial_ids()) >= n and printed in log.read_text()

    while not reached() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None and reached(), log.read_text()[-3000:]
    assert len(run.finished_trial_ids()) < TRIALS, "the sweep ended before it could be interrupted"


def resume_and_check_exactly_once(cli, run: RunFolder, done_before: dict[str, int], address: str) -> None:
    """The resume runs in this process (`cli`) and joins its Ray at `address`, on one worker: the
    interrupted launch's own process, its Ray and its two workers are what these tests are about."""
    result = cli("resume", run.root, "--gpus", "1", "--no-progress", "--address", address)
    assert result.exit_code == 0, result.output[-3000:]
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


def test_ctrl_c_stops_within_seconds_exits_130_and_resume_finishes_the_sweep(
    tmp_path, ray_tmpdir, shared_ray, cli
):
    proc, run, log = launch(tmp_path, ray_tmpdir)
    wait_for_trials(proc, run, 2, log, printed="trials ·")
    ray_processes = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=NEVER_S) == 130
    found = interrupted_line(log)
    done = run.finished_trial_ids()
    assert (int(found[1]), int(found[2]), found[3]) == (len(done), TRIALS - len(done), str(run.root))
    assert int(found[2]) > 0, "the first Ctrl-C must stop the sweep before it ends by itself"
    assert raylet_was_asked_to_stop(ray_tmpdir)  # the orderly way: Ray is shut down
    assert alive_after(ray_processes, NEVER_S) == []  # nothing is left that could still write a shard...
    assert run.finished_trial_ids() == done  # ...and the trials cut short wrote nothing
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
    resume_and_check_exactly_once(
        cli, run, {tid: run.shard(tid).stat().st_mtime_ns for tid in done}, shared_ray
    )


def test_a_second_ctrl_c_exits_at_once_and_takes_rays_processes_with_it(
    tmp_path, ray_tmpdir, shared_ray, cli
):
    proc, run, log = launch(tmp_path, ray_tmpdir)
    wait_for_trials(proc, run, 1, log)
    ray_processes = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    # Ctrl-C again and again, as a user does: the second that Python sees is handled during the first's
    # orderly stop (two signals that come before the handler runs count as one: a lone second one may be lost)
    deadline = time.monotonic() + NEVER_S
    while proc.poll() is None and time.monotonic() < deadline:
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.01)
    assert proc.wait(timeout=NEVER_S) == 130
    assert not raylet_was_asked_to_stop(ray_tmpdir)  # at once: killed before the orderly stop reached Ray
    found = interrupted_line(log)
    # the reaper: nothing of this Ray outlives its driver (its agents would stay a minute by themselves,
    # benchmarks/results/driver_kill_leftovers.md)
    assert alive_after(ray_processes, REAPED_WITHIN_S) == []
    done = run.finished_trial_ids()
    assert int(found[1]) <= len(done) and int(found[1]) + int(found[2]) == TRIALS
    resume_and_check_exactly_once(
        cli, run, {tid: run.shard(tid).stat().st_mtime_ns for tid in done}, shared_ray
    )


def test_a_third_ctrl_c_does_not_start_the_second_ones_exit_over():
    calls = []

    def at_once():  # the CLI's ends the process (os._exit); SystemExit stands for it here
        calls.append("at_once")
        os.kill(os.getpid(), signal.SIGINT)  # a third Ctrl-C while the second's exit runs
        raise SystemExit(130)

    try:
        with pytest.raises(SystemExit), stop_on_sigint(at_once):
            try:
                os.kill(os.getpid(), signal.SIGINT)  # the first: raises Interrupted
            except KeyboardInterrupt:
                os.kill(os.getpid(), signal.SIGINT)  # the second
    finally:
        # The CLI's process ends with its Ctrl-Cs; this one runs more sweeps, which would stop at once
        # (the runner's Tune callback raises where a Ctrl-C was received)
        runner._SIGNALLED.clear()
    assert calls == ["at_once"]


def test_tunes_own_ctrl_c_handler_is_kept_out_within_and_as_it_was_after(monkeypatch):
    monkeypatch.delenv("TUNE_DISABLE_SIGINT_HANDLER", raising=False)
    with stop_on_sigint(lambda: None):
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"  # read by Tune as a fit starts
    assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ  # a later fit in this process has Tune's own
