"""A run folder that cannot be fooled, with real processes and Ray: one driver per folder, a shard
trusted only once its content is checked, a full disk said in one line, Ray's leftovers removed."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_faults import small_disk  # noqa: F401 — the fixture (a 2 MiB tmpfs, as root)
from test_sweeps import make_run, rows  # noqa: I001 — sibling test modules

from t2a_ray.orchestrator import reaper
from t2a_ray.orchestrator.ray_token import default_token_file
from t2a_ray.orchestrator.runner import LaunchOptions, ray_session, run_sweep
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import ShardError, check_footer, read_checked

pytestmark = pytest.mark.slow

ENV = {**os.environ, "T2A_RAY_LOGICAL_GPUS": "1"}
CLI = [sys.executable, "-m", "t2a_ray.cli"]


def sweep_file(tmp_path: Path, steps: list[int], tag: str) -> Path:
    path = tmp_path / f"{tag}.yaml"
    path.write_text(
        textwrap.dedent(f"""
        name: same
        models: [noop]
        weights: tiny
        grid: {{steps: {steps}, step_time_s: 0.02}}
        prompts: {{text: ["a"]}}
        repeats: 2
        warmup: 0
        metering: {{idle_baseline_s: 0}}
    """)
    )
    return path


def test_two_launches_of_one_name_at_once_run_exactly_one_and_refuse_the_other(tmp_path, shared_ray):
    out = tmp_path / "runs"
    configs = {"a": sweep_file(tmp_path, [1, 2], "a"), "b": sweep_file(tmp_path, [7, 8, 9], "b")}
    ray = ["--address", shared_ray]  # the run folder's lock is the subject, not a local Ray
    procs = {
        tag: subprocess.Popen(
            [*CLI, "launch", "--config", str(c), "--out", str(out), "--gpus", "1", "--no-progress", *ray],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag, c in configs.items()
    }
    results = {tag: (p.wait(), p.stderr.read()) for tag, p in procs.items()}
    codes = sorted(code for code, _ in results.values())
    assert codes == [0, 2], results
    winner = next(tag for tag, (code, _) in results.items() if code == 0)
    _, refused = next(r for r in results.values() if r[0] == 2)
    errors = [line for line in refused.splitlines() if line.startswith("error")]
    assert len(errors) == 1, refused
    # refused while the winner ran (naming it), or after it finished (the run exists by then)
    holder = re.search(r"another t2a-ray driver is running this sweep \(pid (\d+) on (\S+)\)", errors[0])
    assert holder or "a run already exists" in errors[0], errors[0]
    if holder:
        assert int(holder.group(1)) == procs[winner].pid and holder.group(2) == os.uname().nodename
    # the folder holds the winner's sweep, and its results are the winner's grid, each row once
    run = RunFolder(out / "same")
    steps = sorted({r["steps"] for r in rows(run)})
    assert steps == ([1, 2] if winner == "a" else [7, 8, 9])
    assert (
        sorted(json.loads(line)["params"]["steps"] for line in run.trial_list.read_text().splitlines())
        == steps
    )
    keys = Counter((r["trial_id"], r["repeat"]) for r in rows(run))
    assert len(keys) == len(steps) * 2 and set(keys.values()) == {1}


def flip_a_bit_in_a_data_page(path: Path) -> None:
    """Flip one bit of a measured value where it is stored, leaving the footer (and so its row count
    and checksum record) valid: what a footer check cannot see."""
    value = pq.read_table(path).column("cpu_energy_j").to_pylist()[0]
    data = bytearray(path.read_bytes())
    at = data.find(struct.pack("<d", value))
    assert at > 0, "the value is not stored plainly (compressed?)"
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_shard_with_one_flipped_bit_runs_again_in_the_same_resume_and_no_row_is_missing(
    tmp_path, shared_ray
):
    run = make_run(tmp_path, textwrap.dedent(sweep_file(tmp_path, [1, 2, 3, 4, 5], "s").read_text()))
    assert run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False)).statuses == {"ok": 5}
    rotten, missing = sorted(run.shard_paths())[:2]
    flip_a_bit_in_a_data_page(rotten)
    assert check_footer(rotten) is not None  # the footer still passes...
    with pytest.raises(ShardError, match="does not match its checksum"):  # ...the content does not
        read_checked(rotten)
    missing.unlink()  # and one unit left to run, so that the merge reads every shard again
    outcome = run_sweep(run, LaunchOptions(gpus=1, address=shared_ray, progress=False))
    assert outcome.statuses == {"ok": 5} and outcome.pending == 0
    assert [p.name for p in run.corrupt_dir.glob("*.parquet")] == [rotten.name]
    assert rotten.is_file()  # written again
    keys = Counter((r["trial_id"], r["repeat"]) for r in rows(run))
    assert len(keys) == 10 and set(keys.values()) == {1}


def test_resume_on_a_disk_still_full_says_so_in_one_line(tmp_path, small_disk, shared_ray, cli):  # noqa: F811
    config = sweep_file(tmp_path, [1, 2], "full")
    out = small_disk / "runs"
    run = RunFolder(out / "same")
    ray = ["--gpus", "0", "--address", shared_ray]  # a full disk is the subject, not a local Ray
    launch = cli("launch", "--config", config, "--out", out, "--no-progress", *ray)  # sets the scene
    assert launch.exit_code == 0, launch.output[-2000:]
    next(run.shard_paths().__iter__()).unlink()  # a unit left to run
    with open(small_disk / "ballast", "wb") as f:
        f.write(b"\0" * shutil.disk_usage(small_disk).free)
    # a process: everything on its stderr (Ray's loggers, a traceback) is what a user would see
    resume = subprocess.run(
        [*CLI, "resume", str(run.root), "--no-progress", *ray],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert resume.returncode == 1
    assert "Traceback" not in resume.stderr
    errors = [line for line in resume.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "t2a-ray resume" in errors[0]


def test_a_stood_down_reaper_returns_once_what_it_killed_is_gone():
    # a big process takes a while to free its memory after SIGKILL; until then it is still there
    reaper.start()
    with reaper.marking():
        big = subprocess.Popen(
            [sys.executable, "-c", "import time; b = bytearray(1 << 30); print(flush=True); time.sleep(600)"],
            stdout=subprocess.PIPE,
        )
    try:
        big.stdout.readline()  # its gigabyte is written
        started = reaper.start_time(big.pid)
        reaper.stop()
        assert reaper.start_time(big.pid) != started  # gone (a zombie until this process reaps it)
    finally:
        big.kill()
        big.wait()


def test_a_local_ray_leaves_its_token_owner_only_no_session_folder_and_no_reaper(tmp_path):
    import ray

    bystander = subprocess.Popen(["sleep", "60"])  # a child of this process that is not Ray's
    try:
        with ray_session(LaunchOptions(gpus=1, progress=False)):
            session = Path(ray._private.worker.global_worker.node.get_session_dir_path())
            assert session.is_dir()
            (reaper_pid,) = [p.pid for p in reaper._reapers]
            ray_processes = reaper.marked(os.getpid())
            assert ray_processes  # the local Ray's, which its reaper would take after a kill -9
        assert not session.exists()
        # stood down once that Ray stopped: it polled this process's children for as long as it lived
        assert reaper.start_time(reaper_pid) is None and not reaper._reapers
        assert not [pid for pid, start in ray_processes if reaper.start_time(pid) == start]
        assert bystander.poll() is None  # what is not Ray's is left alone
    finally:
        bystander.kill()
        bystander.wait()
    token = default_token_file()
    if token.exists():  # Ray turned its token authentication on for the local Ray
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
