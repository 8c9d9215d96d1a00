"""Faults a long sweep meets on shared machines: a node leaves, a shard rots, the disk fills."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest
from test_sweeps import make_run, rows  # noqa: I001 — sibling test module

from t2a_ray.errors import StorageError
from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep
from t2a_ray.runfolder import NOTES_FILE, RunFolder

pytestmark = pytest.mark.slow
NEVER_S = 300  # a deadline that only keeps a broken build from hanging the suite

SLOW_NOOP = """
models: [noop]
weights: tiny
grid: {steps: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], step_time_s: 0.1}
prompts: {text: ["a"]}
warmup: 0
metering: {idle_baseline_s: 0}
"""


def exactly_once(run: RunFolder, expected: int) -> None:
    keys = Counter((r["trial_id"], r["repeat"], r["prompt_id"]) for r in rows(run))
    assert len(keys) == expected and set(keys.values()) == {1}


def test_a_node_that_leaves_mid_sweep_loses_nothing(tmp_path, ray_cluster):
    cluster = ray_cluster(num_cpus=2, num_gpus=1)
    leaving = cluster.add_node(num_cpus=1, num_gpus=1)
    try:
        run = make_run(tmp_path, SLOW_NOOP)

        def remove_when_started():
            deadline = time.monotonic() + NEVER_S
            while len(run.finished_trial_ids()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            cluster.remove_node(leaving)

        killer = threading.Thread(target=remove_when_started)
        killer.start()
        outcome = run_sweep(
            run,
            LaunchOptions(
                gpus=2,
                address=cluster.address,
                progress=False,
                worker_lost_after_s=5,
                # Ray cannot replace a worker whose node left: each unit that was on it waits this
                # long in vain before the worker is given up
                worker_restart_wait_s=1,
            ),
        )
        killer.join()
        assert outcome.statuses == {"ok": 12}
        exactly_once(run, 12)
    finally:
        cluster.shutdown()


def test_a_corrupt_shard_is_moved_aside_and_its_trial_runs_again(tmp_path, shared_ray):
    run = make_run(tmp_path, SLOW_NOOP.replace("step_time_s: 0.1", "step_time_s: 0.001"))
    run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False))
    victim, truncated = sorted(run.shard_paths())[:2]
    victim.write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")  # garbage with valid magic bytes
    truncated.write_bytes(truncated.read_bytes()[:-20])  # a torn write by something else
    outcome = run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False))
    assert outcome.ran == 2 and len(outcome.quarantined) == 2
    assert sorted(p.name for p in run.corrupt_dir.glob("*.parquet")) == sorted([victim.name, truncated.name])
    assert len((run.corrupt_dir / NOTES_FILE).read_text().splitlines()) == 2  # each with why
    exactly_once(run, 12)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if (
        shutil.which("mount") is None
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_sweep_cleanly_and_resume_finishes_it(tmp_path, small_disk, shared_ray):
    run = make_run(small_disk, SLOW_NOOP.replace("step_time_s: 0.1", "step_time_s: 0.001"))
    ballast = small_disk / "ballast"
    with open(ballast, "wb") as f:  # leave room for a few shards only
        free = shutil.disk_usage(small_disk).free
        f.write(b"\x00" * max(0, free - 48 * 1024))
    with pytest.raises(StorageError, match="No space left"):
        run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False))
    # the workers go with their Ray job; once none holds the run, none can still be writing in it
    assert run.wait_for_old_workers(NEVER_S)
    done = run.finished_trial_ids()
    assert len(done) < 12
    for shard in run.shard_paths():  # every visible shard is whole
        pq.read_table(shard)
    assert not [p for p in run.trials_dir.iterdir() if p.name.endswith(".tmp")]
    ballast.unlink()  # space is back
    outcome = run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False))
    assert outcome.skipped == len(done)
    exactly_once(run, 12)
