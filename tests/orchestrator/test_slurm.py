"""`t2a-ray slurm` without a Slurm: the batch script against Ray's documented steps, the options checked
before anything is written, the shares of an array, and each node's check of the run folder."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2a_ray.cli import main
from t2a_ray.config import load_sweep
from t2a_ray.metering.gpu import LOGICAL_GPUS_ENV
from t2a_ray.orchestrator.plan import make_units
from t2a_ray.orchestrator.run_plan import model_key
from t2a_ray.orchestrator.runner import _claim_attempt
from t2a_ray.orchestrator.shares import Share
from t2a_ray.orchestrator.slurm import PORT_BLOCKS, PORTS_PER_JOB, Allocation, node_check, wait_for_nodes
from t2a_ray.runfolder import RunFolder

SWEEP = """
name: cluster
models: [noop]
weights: tiny
grid: {steps: [1, 2, 3], step_time_s: 0.0}
prompts: {text: ["a dog barks", "rain"]}
repeats: 3
warmup: 0
metering: {min_window_s: 0.0, idle_baseline_s: 0}
"""


def _print(args, tmp_path, write_sweep, env=None):
    return CliRunner().invoke(
        main,
        ["slurm", str(write_sweep(SWEEP)), "--out", str(tmp_path / "runs"), "--print", *args],
        env=env or {},
    )


def _lines_matching(script: str, pattern: str) -> list[int]:
    return [i for i, line in enumerate(script.splitlines()) if re.search(pattern, line)]


def test_the_print_of_a_two_node_four_gpu_job_follows_rays_slurm_steps(tmp_path, write_sweep, monkeypatch):
    monkeypatch.delenv(LOGICAL_GPUS_ENV, raising=False)  # real GPUs: asked of Slurm
    done = _print(["--nodes", "2", "--gpus-per-node", "4", "--requeue"], tmp_path, write_sweep)
    assert done.exit_code == 0, done.output
    script = done.stdout
    assert "#SBATCH --nodes=2" in script and "#SBATCH --gpus-per-node=4" in script
    assert "#SBATCH --ntasks-per-node=1" in script and "#SBATCH --requeue" in script
    # the head is started, and answers, before any worker starts; the workers join its address
    head = _lines_matching(script, r"start --head")
    head_up = _lines_matching(script, r"slurm wait .*--nodes 1 ")
    workers = _lines_matching(script, r'start --address="\$ADDRESS"')
    all_up = _lines_matching(script, r'slurm wait .*--nodes "\$\{#nodes\[@\]\}"')
    sweep = _lines_matching(script, r"resume \"\$RUN\" --address \"\$ADDRESS\"")
    assert len(head) == len(workers) == len(head_up) == len(all_up) == len(sweep) == 1
    assert head[0] < head_up[0] < workers[0] < all_up[0] < sweep[0]
    assert 'ADDRESS="$head_ip:$PORT"' in script and '--port="$PORT"' in script
    # the same Ray on every node: one interpreter, checked on every node against the head's version
    version = importlib.metadata.version("ray")
    assert f"RAY_VERSION={version}\n" in script
    assert re.search(r'srun --nodes="\$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 "\$PY" -m t2a_ray', script)
    assert '--ray-version "$RAY_VERSION"' in script
    assert script.count('RAY=("$PY" -m ray.scripts.scripts)') == 1
    # every port Ray opens is pinned in the job's own block
    assert f"PORT=$(( 20000 + (SLURM_JOB_ID % {PORT_BLOCKS}) * {PORTS_PER_JOB} ))" in script
    for option in (
        "node-manager-port",
        "object-manager-port",
        "runtime-env-agent-port",
        "dashboard-agent-grpc-port",
        "dashboard-agent-listen-port",
        "metrics-export-port",
        "min-worker-port",
        "max-worker-port",
    ):
        assert re.search(rf"--{option}=\$\(\(PORT \+ \d+\)\)", script), option
    assert '--temp-dir="/tmp/ray-$SLURM_JOB_ID"' in script and "RAY_AUTH_MODE=token" in script
    # a requeued job resumes the run folder; Ray goes down on exit, never with `ray stop`
    assert re.search(r'if \[ -f "\$RUN/sweep.yaml" \]; then\n\s+"\$\{T2A\[@\]\}" resume', script)
    assert "trap stop_ray EXIT" in script and "ray stop\n" not in script
    assert not (tmp_path / "runs").exists()  # --print writes nothing


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("extra", [[], ["--array", "3"]])
def test_the_printed_script_is_valid_bash(tmp_path, write_sweep, extra):
    done = _print(
        ["--time", "1-00:00:00", "--sbatch-line", "#SBATCH --qos=high", *extra], tmp_path, write_sweep
    )
    assert done.exit_code == 0, done.output
    script = tmp_path / "job.sbatch"
    script.write_text(done.stdout)
    assert "mkdir -p" in done.stderr  # where Slurm writes the job's output: it must exist first
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert "#SBATCH --qos=high" in done.stdout and "#SBATCH --time=1-00:00:00" in done.stdout


def test_an_array_is_k_single_node_tasks_each_resuming_its_share(tmp_path, write_sweep):
    done = _print(["--array", "3", "--gpus-per-node", "2"], tmp_path, write_sweep)
    assert done.exit_code == 0, done.output
    assert "#SBATCH --array=0-2" in done.output and "#SBATCH --nodes=1" in done.output
    assert '--gpus 2 --share "$SLURM_ARRAY_TASK_ID/3"' in done.output
    assert "%A_%a.out" in done.output


def test_logical_gpus_ask_slurm_for_none_and_tell_ray_the_count(tmp_path, write_sweep):
    done = _print(["--gpus-per-node", "2"], tmp_path, write_sweep, env={"T2A_RAY_LOGICAL_GPUS": "1"})
    assert "--gpus-per-node" not in done.output and "--num-gpus=2" in done.output


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--time", "soon"], "--time"),
        (["--nodes", "0"], "--nodes"),
        (["--gpus-per-node", "0"], "--gpus-per-node"),
        (["--array", "2", "--nodes", "2"], "--nodes"),
        (["--array", "0"], "--array"),
        (["--partition", "a b"], "--partition"),
        (["--sbatch-line", "qos=high"], "--sbatch-line"),
        (["--sbatch-line", "--qos=high\n#SBATCH --x"], "--sbatch-line"),
        (["--submit", "--print"], "--submit/--print"),
    ],
)
def test_a_bad_option_is_one_line_exit_2_and_nothing_written(tmp_path, write_sweep, args, key):
    sweep = write_sweep(SWEEP)
    done = CliRunner().invoke(main, ["slurm", str(sweep), "--out", str(tmp_path / "runs"), *args])
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], done.output
    assert not (tmp_path / "runs").exists()


def test_the_jobs_own_options_reach_it_by_name_as_its_allocation():
    command_own = {"sweep_path", "out_dir", "name", "overrides", "submit", "print_only"}
    options = {p.name for p in main.commands["slurm"].params} - command_own
    assert options == {f.name for f in fields(Allocation)}


def test_without_submit_the_run_is_frozen_and_the_script_written(tmp_path, write_sweep):
    sweep = write_sweep(SWEEP)
    out = tmp_path / "runs"
    done = CliRunner().invoke(main, ["slurm", str(sweep), "--out", str(out), "--gpus-per-node", "2"])
    assert done.exit_code == 0, done.output
    run = RunFolder(out / "cluster")
    assert run.exists() and (run.slurm_dir / "job.sbatch").is_file()
    assert load_sweep(run.sweep_yaml).placement == "spread"  # `auto` frozen for the job's 2 GPUs
    # the same name again: the job resumes it; another sweep under that name is refused
    assert CliRunner().invoke(main, ["slurm", str(sweep), "--out", str(out)]).exit_code == 0
    other = write_sweep(SWEEP.replace("[1, 2, 3]", "[4]"), name="other.yaml")
    refused = CliRunner().invoke(main, ["slurm", str(other), "--out", str(out), "--name", "cluster"])
    assert refused.exit_code == 2 and "another sweep" in refused.output


@pytest.mark.parametrize("placement", ["spread", "pack"])
def test_shares_split_the_units_with_none_in_two_and_none_left_out(write_sweep, placement):
    sweep = load_sweep(write_sweep(SWEEP + f"placement: {placement}\n"))
    units = {u.unit_id for u in make_units(sweep.trials(), sweep, model_key)}
    mine = [units - Share(i, 4).others(sweep) for i in range(4)]
    assert set().union(*mine) == units and sum(map(len, mine)) == len(units)
    # 9 units over 4 shares under spread; 3 configurations under pack, the 4th share empty (its task ends)
    assert all(mine if placement == "spread" else mine[:3]) and (placement == "spread" or not mine[3])
    by_trial = {u.split(".r")[0] for u in mine[0]}
    if placement == "pack":  # a configuration's repeats stay together
        assert all({f"{t}.r{r}" for r in range(3)} <= mine[0] for t in by_trial)
    else:  # spread: a configuration's repeats go to different tasks
        assert any(len({u for u in mine[0] if u.startswith(t)}) < 3 for t in by_trial)
    assert Share(0, 4).others(sweep) == Share(0, 4).others(
        load_sweep(write_sweep(SWEEP + f"placement: {placement}\n"))
    )


def test_a_share_is_refused_where_the_split_would_not_be_fixed(tmp_path, write_sweep):
    run = RunFolder(tmp_path / "run")
    run.create(load_sweep(write_sweep(SWEEP)).to_yaml())  # placement: auto
    done = CliRunner().invoke(main, ["resume", str(run.root), "--gpus", "0", "--share", "0/2"])
    assert done.exit_code == 2 and "placement" in done.output
    bad = CliRunner().invoke(main, ["resume", str(run.root), "--gpus", "0", "--share", "2/2"])
    assert bad.exit_code == 2 and "--share" in bad.output


OTHER_DRIVER = "import sys; from t2a_ray.runfolder import RunFolder\nwith RunFolder(sys.argv[1]).driver_lock(sys.argv[2]): pass"


def test_drivers_of_two_shares_run_together_and_exclude_a_plain_driver(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.create("name: x\n")
    with run.driver_lock("share-0-of-2"), run.driver_lock("share-1-of-2"):
        assert set(run.running_scoped_drivers()) == {"share-0-of-2", "share-1-of-2"}
        with pytest.raises(Exception, match="another t2a-ray driver"), run.driver_lock():
            pass
        # a second driver of one share is another process (a process may enter its own lock again)
        other = subprocess.run(
            [sys.executable, "-c", OTHER_DRIVER, str(run.root), "share-0-of-2"],
            capture_output=True,
            text=True,
        )
        assert other.returncode != 0 and "share-0-of-2" in other.stderr
    with run.driver_lock(), pytest.raises(Exception, match="another"), run.driver_lock("share-0-of-2"):
        pass


def test_two_drivers_starting_at_once_claim_different_attempts(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.create("name: x\n")
    assert [_claim_attempt(run) for _ in range(3)] == [1, 2, 3]


def test_a_node_that_does_not_share_the_run_folder_is_told_the_fix(tmp_path):
    version = importlib.metadata.version("ray")
    seen = tmp_path / "run" / "slurm" / ".mark"
    assert "every node mounts at the same path" in node_check(str(tmp_path / "run"), version, str(seen))
    seen.parent.mkdir(parents=True)
    seen.write_text("1")
    assert node_check(str(tmp_path / "run"), version, str(seen)) is None
    assert "the same install" in node_check(str(tmp_path / "run"), "0.0.1", str(seen))
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        problem = node_check(str(tmp_path / "ro" / "run"), version, str(seen))
        if problem is not None:  # root writes anywhere: only a non-root user sees this one
            assert "every node shares and can write" in problem
    finally:
        (tmp_path / "ro").chmod(0o700)


@pytest.mark.slow
def test_the_script_waits_for_the_head_then_for_every_node_of_the_allocation(ray_cluster):
    """Two Ray nodes in one machine stand for an allocation of two: the wait the script runs between
    the head and its workers, and before the sweep, counts the nodes that joined."""
    cluster = ray_cluster(num_cpus=1, num_gpus=1)
    try:
        address = cluster.address
        assert wait_for_nodes(address, 1, steps=[]) is None
        ended = subprocess.Popen(["true"])
        ended.wait()
        assert "srun step" in wait_for_nodes(address, 2, steps=[ended.pid])  # a worker step that died
        cluster.add_node(num_cpus=1, num_gpus=1)
        assert wait_for_nodes(address, 2, steps=[]) is None
        assert "2 of 3 node(s) up" in wait_for_nodes(address, 3, steps=[], timeout_s=1.0)
    finally:
        cluster.shutdown()


def test_the_kuberay_file_is_a_rayjob_that_cleans_up_and_resumes():
    import yaml

    path = Path(__file__).parents[2] / "docs" / "cluster" / "kuberay-rayjob.yaml"
    docs = {d["kind"]: d for d in yaml.safe_load_all(path.read_text())}
    job = docs["RayJob"]["spec"]
    assert job["shutdownAfterJobFinishes"] is True and job["ttlSecondsAfterFinished"] > 0
    assert job["backoffLimit"] >= 1 and "t2a-ray resume" in job["entrypoint"]
    assert docs["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    workers = job["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert int(workers["resources"]["limits"]["nvidia.com/gpu"]) >= 1


def test_a_run_folder_path_slurm_cannot_hold_is_refused_before_anything_is_written(tmp_path, write_sweep):
    out = tmp_path / "my runs"
    done = CliRunner().invoke(main, ["slurm", str(write_sweep(SWEEP)), "--out", str(out)])
    assert done.exit_code == 2 and "without spaces" in done.output and not out.exists()
