"""`t2a-ray slurm --submit` against a real Slurm: a one-node cluster (Debian's slurmctld, slurmd and
munge, installed here if missing) started for these tests and stopped after them. One scenario, run once
for the module (each job starts a Ray of its own, most of what these tests cost): a sweep on 2 logical
GPUs submitted as a job array of 2 tasks sharing the run folder, cancelled with scancel once each task
has run a unit, then submitted again as one plain job, which finishes it. Every row exactly once; the
rows of both submissions carry their job id (the array's their task too); each task ran its own share
of the units and no other. A cancelled attempt writes no `workers` log (its driver ends on SIGTERM), so
the job that finishes is the plain one: its log shows the GPUs Ray handed out inside a batch job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator.shares import Share
from t2a_ray.runfolder import RunFolder

pytestmark = pytest.mark.slow

T2A = [sys.executable, "-m", "t2a_ray.cli"]  # the job runs this same interpreter on its node
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
# Enough units, long enough, that a scancel comes while each task still has some of its share to run
# (once each task has finished one, its workers may finish the two in hand): 0.5–4 s each, 16 of them
STEPS = [2, 4, 6, 8, 10, 12, 14, 16]
UNITS = len(STEPS) * 2  # two repeats of each trial
SWEEP = f"""
name: resubmitted
models: [noop]
weights: tiny
grid: {{steps: {STEPS}, step_time_s: 0.25}}
prompts: {{text: ["a dog barks"]}}
repeats: 2
warmup: 0
metering: {{min_window_s: 0.0, idle_baseline_s: 0}}
"""
# The GPUs "the scheduler gave": Ray, started inside the job, hands its workers these and no others
SCHEDULER_GPUS = "3,5"


def _install() -> str | None:
    """Install Slurm from Debian's packages where it is missing; None, or why it cannot be."""
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "Slurm is not installed and apt-get (as root) is not available to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *PACKAGES]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {done.stderr.strip().splitlines()[-1:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _munge_works() -> bool:
    return subprocess.run("munge -n | unmunge", shell=True, capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node Slurm of this machine's CPUs: its SLURM_CONF; the daemons this fixture started are
    stopped (by pid) after the module."""
    why = (
        _install()
        if os.geteuid() == 0
        else "slurmd and munged are started as root here: run the tests as root"
    )
    if why is not None:
        pytest.skip(why)
    root = tmp_path_factory.mktemp("slurm")
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=t2a-test",
                f"SlurmctldHost={host}",
                "AuthType=auth/munge",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "ReturnToService=2",
                "SlurmUser=root",
                f"SlurmctldPidFile={root}/slurmctld.pid",
                f"SlurmdPidFile={root}/slurmd.pid",
                f"SlurmdSpoolDir={root}/spool",
                f"StateSaveLocation={root}/state",
                f"FirstJobId={_first_job_id()}",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                f"SlurmctldLogFile={root}/slurmctld.log",
                f"SlurmdLogFile={root}/slurmd.log",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "MpiDefault=none",
                "KillWait=5",
                f"NodeName={host} CPUs={os.cpu_count()} State=UNKNOWN",
                f"PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            ]
        )
        + "\n"
    )
    for d in ("spool", "state"):
        (root / d).mkdir()
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[int] = []
    try:
        if not _munge_works():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)
            started.append(int(Path("/run/munge/munged.pid").read_text()))
        for daemon, pid_file in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            subprocess.run([f"/usr/sbin/{daemon}", "-f", str(conf)], env=env, check=True)
            started.append(_wait_for_file_int(root / pid_file))
        _wait_until(lambda: _sinfo_idle(env), what="the node to be idle")
        yield env
    finally:
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, check=False)
        for pid in reversed(started):  # slurmd, slurmctld, then munged if this fixture started it
            _stop(pid)


def _wait_for_file_int(path: Path) -> int:
    _wait_until(lambda: path.is_file() and path.read_text().strip().isdigit(), what=str(path))
    return int(path.read_text())


def _sinfo_idle(env) -> bool:
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, check=False)
    return done.stdout.strip() == "idle"


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    _wait_until(lambda: not Path(f"/proc/{pid}").exists(), what=f"pid {pid} to end")


def _first_job_id() -> int:
    """Each test process's Slurm numbers its jobs from its own block: t2a-ray's Ray ports follow the job
    id (`orchestrator/slurm.py`), and two test processes' clusters on this one machine would otherwise
    both start at job 1 and take the same ports."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 1 + 20 * int(worker.removeprefix("gw"))


def _wait_until(condition, what: str, poll_s: float = 0.3) -> None:
    """Poll until `condition()`; no wall-clock limit (pytest's own timeout, if any, is the judge)."""
    del what  # named for a reader of a hung test's traceback
    while not condition():
        time.sleep(poll_s)


def _jobs(env) -> list[str]:
    done = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, check=False)
    return done.stdout.split()


def _submit(env, sweep: Path, out: Path, *args: str) -> str:
    done = subprocess.run(
        [*T2A, "slurm", str(sweep), "--out", str(out), "--gpus-per-node", "2",
         "--submit", *args],
        env={**env, "T2A_RAY_LOGICAL_GPUS": "1", "CUDA_VISIBLE_DEVICES": SCHEDULER_GPUS},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr.split("submitted job ")[1].split(":")[0]


def _cancel_once_each_task_ran_a_unit(env, run: RunFolder, array: str) -> int:
    """scancel the job array `array` of 2 as soon as each task has finished a unit of its share (a
    shard) and recorded its workers (`status` reads that record for the jobs an attempt ran in); the
    number of shards at that moment."""
    frozen = load_sweep(run.sweep_yaml)
    others = [Share(task, 2).others(frozen) for task in (0, 1)]

    def each_task_ran_a_unit() -> bool:
        done = run.finished_trial_ids()
        return all(done - o for o in others) and len(run.attempt_logs("gpus")) == 2

    _wait_until(lambda: each_task_ran_a_unit() or not _running(env, array), what="a shard of each task")
    done_at_cancel = len(run.finished_trial_ids())
    subprocess.run(["scancel", array], env=env, check=True)
    _wait_until(lambda: not _running(env, array), what=f"job {array} to end")
    return done_at_cancel


def _running(env, job: str) -> bool:
    """Whether `job`, or a task of it where it is an array (`ID_TASK` in squeue), is still queued."""
    return any(j.split("_")[0] == job for j in _jobs(env))


def _rows(run: RunFolder):
    return pq.read_table(run.results).to_pandas()


def _units_of_rows(rows):
    return list(zip(rows["trial_id"], rows["repeat"], rows["prompt_id"], strict=True))


@dataclass(frozen=True)
class Resubmitted:
    """What the scenario left: its run folder, the array's job id, the plain job's, how many units were
    finished when the array was cancelled, and every job's output (printed by a failing assertion)."""

    run: RunFolder
    array: str
    plain: str
    done_at_cancel: int
    logs: str


@pytest.fixture(scope="module")
def resubmitted(slurm, tmp_path_factory) -> Resubmitted:
    """An array of 2 tasks on 2 GPUs each, cancelled once each task has run a unit, then the same sweep
    submitted again as one job on 2 GPUs, which finishes it: one run folder, three Rays (one per task,
    one for the job), read by the tests below."""
    root = tmp_path_factory.mktemp("resubmitted")
    sweep = root / "sweep.yaml"
    sweep.write_text(SWEEP)
    out = root / "runs"
    run = RunFolder(out / "resubmitted")
    array = _submit(slurm, sweep, out, "--array", "2")
    done_at_cancel = _cancel_once_each_task_ran_a_unit(slurm, run, array)
    plain = _submit(slurm, sweep, out)  # the same name: the job resumes the run folder
    _wait_until(lambda: not _running(slurm, plain), what="the plain job to end")
    logs = "\n".join(f"{p.name}:\n{p.read_text()}" for p in sorted(run.slurm_dir.glob("slurm-*.out")))
    return Resubmitted(run, array, plain, done_at_cancel, logs)


def test_a_cancelled_array_submitted_again_as_one_job_finishes_the_sweep_with_every_row_once(resubmitted):
    run, array, plain, logs = resubmitted.run, resubmitted.array, resubmitted.plain, resubmitted.logs
    assert 0 < resubmitted.done_at_cancel < UNITS, "the array was cancelled before it finished"
    assert run.results.exists(), logs
    rows = _rows(run)
    units = _units_of_rows(rows)
    assert len(units) == len(set(units)) == UNITS, logs  # every (trial, repeat, prompt) exactly once
    # the rows of both submissions, each with its job id: the plain job's with no array task, the
    # array's with their task; a task's SLURM_JOB_ID is its own: Slurm gives the array's id to one
    # task and the next id it numbers to the other (the plain job, submitted after, comes after both)
    from_plain = rows[rows["slurm_job_id"] == plain]
    assert 0 < len(from_plain) < UNITS and from_plain["slurm_array_task_id"].isna().all(), logs
    from_array = rows[rows["slurm_job_id"] != plain]
    assert set(from_array["slurm_array_task_id"]) == {0, 1}, logs
    task_jobs = {
        int(t): set(from_array[from_array["slurm_array_task_id"] == t]["slurm_job_id"]) for t in (0, 1)
    }
    ids = sorted((j for jobs in task_jobs.values() for j in jobs), key=int)  # one each: two in all
    assert ids == [array, str(int(array) + 1)], logs
    assert int(plain) > int(array) + 1
    # Ray inside the job gave its workers the scheduler's GPUs, one each, no other (logical GPUs here:
    # held, not made visible to the worker)
    workers = json.loads(run.attempt_log("workers", 3).read_text())
    assert sorted(g for w in workers for g in w["ray_gpu_ids"]) == SCHEDULER_GPUS.split(","), logs
    status = subprocess.run(
        [*T2A, "status", str(run.root)], capture_output=True, text=True, check=True
    ).stdout
    # the submissions, and each attempt with the job (and task) it ran in: the tasks' in the order
    # they claimed an attempt, the plain job's last
    assert f"submitted {array}, {plain}" in status, status
    ran = re.findall(r"attempt (\d+): (\d+) \(task (\d+)\)", status)
    assert sorted(a for a, _, _ in ran) == ["1", "2"], status
    assert {int(t): {j} for _, j, t in ran} == task_jobs, status
    assert f"attempt 3: {plain} " in status, status


def test_an_array_of_two_shares_one_run_folder_each_task_its_own_units(resubmitted):
    run, logs = resubmitted.run, resubmitted.logs
    assert run.results.exists(), logs
    rows = _rows(run)
    # each unit the array ran ran in the task of its share, and in no other; each task ran some
    frozen = load_sweep(run.sweep_yaml)
    for task in (0, 1):
        others = Share(task, 2).others(frozen)
        ran_here = rows[rows["slurm_array_task_id"] == task]
        assert len(ran_here) > 0, logs
        assert (
            not {f"{t}.r{r}" for t, r in zip(ran_here["trial_id"], ran_here["repeat"], strict=True)} & others
        ), logs
