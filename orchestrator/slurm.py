"""`t2a-ray slurm`: a sweep as a Slurm batch job — Ray started across the allocation the way Ray's
Slurm guide does, the sweep run from the head, Ray stopped at the end.

The batch script (`render`), in order:

1. Every node of the allocation checks, before Ray or any model starts (`python -m
   t2a_ray.orchestrator.slurm check`): that it runs the same Ray as the head, that it can write the
   run folder, and that it sees a file the head has just written there — a folder at the same path
   that is local to each node passes the first two checks, not the third.
2. Ray: the head on the first node (`srun … ray start --head --block`), once it answers the workers
   on the others (`srun … ray start --address HEAD:PORT --block`), each waited for. Every port Ray
   opens is pinned inside a block of `PORTS_PER_JOB` derived from the job id, so that two jobs on one
   node do not collide (two jobs share a block only if their ids differ by a multiple of
   `PORT_BLOCKS`); `--temp-dir` is per job too. Token authentication is on: a fresh token per job, in
   a 0600 file of the shared run folder, read by every node.
   Ray sees the GPUs Slurm gave the step (`CUDA_VISIBLE_DEVICES`), no others.
3. The sweep, from the head: `t2a-ray resume RUN --address HEAD:PORT` where the run folder exists (a
   requeued, preempted or resubmitted job continues it: finished units are never run again), else
   `t2a-ray launch`. The job's exit status is the sweep's.
4. Ray down: the `srun` steps are ended (never `ray stop`, which would stop every Ray of the user on
   the node, another job's included); the token file and each node's Ray temp dir are removed.

With `--array K` the job is K single-node tasks instead, each running its share of the units
(`shares.py`) with its own local Ray: `t2a-ray resume RUN --gpus G --share $SLURM_ARRAY_TASK_ID/K`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from t2a_ray.errors import ConfigError
from t2a_ray.runfolder import RunFolder, atomic_write_text

PORT_BASE, PORTS_PER_JOB, PORT_BLOCKS = 20000, 200, 200  # ports 20000–59999
WORKER_PORTS_FROM = 20  # offsets below it: Ray's fixed servers; from it to the block's end: its workers
SCRIPT_NAME = "job.sbatch"
CREATE_HINT = "t2a-ray slurm SWEEP.yaml … without --print"
JOBS_LOG = "jobs.jsonl"  # one line per job submitted: its id, when, the script's options
RAY_WAIT_S = 300  # how long the script waits for Ray's head and workers to answer
# Slurm's --time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_TIME_RE = re.compile(r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(:\d{1,2}){0,2})$")
_WORD_RE = re.compile(r"^[A-Za-z0-9_.,:|&!()\[\]+=@%-]+$")  # a partition, account, constraint


@dataclass(frozen=True)
class Allocation:
    """What the job asks of Slurm: its nodes and GPUs, and the options passed through to sbatch — the
    options of `t2a-ray slurm`, received by these names."""

    nodes: int = 1
    gpus_per_node: int = 1
    array: int | None = None  # K single-node tasks, each its share of the units
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    constraint: str | None = None
    exclusive: bool = False
    requeue: bool = False
    sbatch_lines: tuple[str, ...] = ()  # extra `#SBATCH` options, as given

    @property
    def total_gpus(self) -> int:
        """Every GPU the job (all the tasks of an array) will have."""
        return self.nodes * self.gpus_per_node * (self.array or 1)

    def check(self) -> None:
        """Every option, before anything is written or submitted (ConfigError: exit 2)."""
        if self.nodes < 1:
            raise ConfigError("--nodes", self.nodes, "must be 1 or more")
        if self.gpus_per_node < 1:
            raise ConfigError("--gpus-per-node", self.gpus_per_node, "must be 1 or more")
        if self.array is not None:
            if self.array < 1:
                raise ConfigError("--array", self.array, "must be 1 or more tasks")
            if self.nodes != 1:
                raise ConfigError(
                    "--nodes", self.nodes, "must be 1 with --array (each task is a single-node job)"
                )
        if self.time is not None and not _TIME_RE.match(self.time):
            raise ConfigError(
                "--time", self.time, "must be Slurm's MINUTES, HH:MM:SS, D-HH or D-HH:MM:SS, e.g. 04:00:00"
            )
        for key, value in (
            ("--partition", self.partition),
            ("--account", self.account),
            ("--constraint", self.constraint),
        ):
            if value is not None and not _WORD_RE.match(value):
                raise ConfigError(key, value, "must be one word of letters, digits and Slurm's , | & ! [ ]")
        for line in self.sbatch_lines:
            option = _sbatch_option(line)
            if not option.startswith("-") or "\n" in option or "\r" in option:
                raise ConfigError(
                    "--sbatch-line",
                    line,
                    "must be one sbatch option, e.g. '--mem=64G' or '#SBATCH --qos=high'",
                )


@dataclass(frozen=True)
class SlurmJob:
    """What the batch script needs: the run, the allocation, and how the job launches the run."""

    run_root: Path  # absolute, on storage every node shares
    allocation: Allocation = field(default_factory=Allocation)
    # without a run folder yet (--print): how the job launches it
    sweep_path: Path | None = None
    overrides: tuple[str, ...] = ()
    # Ray's logical GPUs (tests and CPU-only clusters): no GPU is asked of Slurm, Ray is told G
    logical_gpus: bool = False
    python: str = field(default_factory=lambda: sys.executable)

    def check(self) -> None:
        """Every option, before anything is written or submitted (ConfigError: exit 2)."""
        if re.search(r"[\s%]", str(self.run_root)):
            raise ConfigError(
                "--out/--name",
                str(self.run_root),
                "must make a path without spaces or %: #SBATCH lines and Slurm's output names cannot hold them",
            )
        self.allocation.check()

    @property
    def run(self) -> RunFolder:
        return RunFolder(self.run_root)

    @property
    def output(self) -> Path:
        """Slurm's output file of each job (of each task of an array)."""
        return self.run.slurm_dir / ("slurm-%A_%a.out" if self.allocation.array else "slurm-%j.out")


def _sbatch_option(line: str) -> str:
    return line.strip().removeprefix("#SBATCH").strip()


def ray_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("ray")


def render(job: SlurmJob) -> str:
    """The batch script (bash), to submit as it is or to adapt."""
    q = shlex.quote
    run, a = job.run, job.allocation
    sbatch = [
        f"--job-name=t2a-{run.root.name}",
        f"--nodes={a.nodes}",
        "--ntasks-per-node=1",  # one Ray node per machine; Ray shares the machine among its workers
        *([] if job.logical_gpus else [f"--gpus-per-node={a.gpus_per_node}"]),
        *([f"--array=0-{a.array - 1}"] if a.array else []),
        *([f"--partition={a.partition}"] if a.partition else []),
        *([f"--time={a.time}"] if a.time else []),
        *([f"--account={a.account}"] if a.account else []),
        *([f"--constraint={a.constraint}"] if a.constraint else []),
        *(["--exclusive"] if a.exclusive else []),
        *(["--requeue"] if a.requeue else []),
        f"--output={job.output}",
        *(_sbatch_option(line) for line in a.sbatch_lines),
    ]
    lines = [
        "#!/bin/bash",
        f"# Written by `t2a-ray slurm` for the run {run.root}: submit it with sbatch, or adapt it.",
        *(f"#SBATCH {s}" for s in sbatch),
        "",
        "set -uo pipefail",
        f"RUN={q(str(run.root))}",
        f"PY={q(job.python)}  # the same install on every node (shared storage): the same Ray and t2a-ray",
        f"RAY_VERSION={ray_version()}",
        'T2A=("$PY" -m t2a_ray.cli)',
        'RAY=("$PY" -m ray.scripts.scripts)',
        "export RAY_USAGE_STATS_ENABLED=0",
        "srun_cpus=(${SLURM_CPUS_PER_TASK:+--cpus-per-task=$SLURM_CPUS_PER_TASK})  # srun does not inherit it",
    ]
    if job.logical_gpus:
        # not at the top: each node's check runs this module (`python -m`), and `t2a_ray.metering` would
        # bring numpy and the meter into it
        from t2a_ray.metering.gpu import LOGICAL_GPUS_ENV

        lines += [
            "# Ray's logical GPUs: no GPU is asked of Slurm; each Ray node is told it has "
            f"{a.gpus_per_node} (tests, CPU-only clusters)",
            f"export {LOGICAL_GPUS_ENV}=1",
        ]
    lines += ["", CHECK_BLOCK, ""]
    lines += [_array_block(job) if a.array else _cluster_block(job)]
    return "\n".join(lines) + "\n"


# 1. Every node: the same Ray, the run folder writable and shared (a file the head wrote, seen)
CHECK_BLOCK = """# 1. Every node, before Ray or any model starts: the same Ray ($RAY_VERSION), the run folder
#    writable from it, and shared (it sees the file the head writes here).
mkdir -p "$RUN/slurm" || exit 2
MARK="$RUN/slurm/.node-check-$SLURM_JOB_ID-$(hostname)"
echo "$SLURM_JOB_ID" > "$MARK" || exit 2
srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 "$PY" -m t2a_ray.orchestrator.slurm check \\
  "$RUN" --ray-version "$RAY_VERSION" --seen "$MARK" || { rm -f "$MARK"; exit 2; }
rm -f "$MARK\""""


def _cluster_block(job: SlurmJob) -> str:
    """2.–4. Ray's head, then its workers; the sweep from the head; Ray down."""
    run = job.run
    # Ray's logical GPUs are told; real ones Ray reads from CUDA_VISIBLE_DEVICES
    gpus = f" --num-gpus={job.allocation.gpus_per_node}" if job.logical_gpus else ""
    if job.sweep_path is not None:
        sets = "".join(f" --set {shlex.quote(o)}" for o in job.overrides)
        launch = (
            f'"${{T2A[@]}}" launch --config {shlex.quote(str(job.sweep_path))}'
            f" --out {shlex.quote(str(run.root.parent))} --name {shlex.quote(run.root.name)}{sets}"
            ' --address "$ADDRESS" --no-progress'
        )
    else:
        launch = f'echo "error: no run folder at $RUN: create it with {CREATE_HINT}" >&2; false'
    return f"""# 2. Ray across the allocation: the head on the first node, then a worker on each other node.
#    Every port is pinned in a block of {PORTS_PER_JOB} derived from the job id (two jobs on one node do not
#    collide); token authentication with a fresh token per job, in a 0600 file every node reads.
nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
head_node=${{nodes[0]}}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head_node" hostname --ip-address | awk '{{print $1}}')
PORT=$(( {PORT_BASE} + (SLURM_JOB_ID % {PORT_BLOCKS}) * {PORTS_PER_JOB} ))
ADDRESS="$head_ip:$PORT"
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$RUN/slurm/.ray-token-$SLURM_JOB_ID"
(umask 077 && "$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$RAY_AUTH_TOKEN_PATH") || exit 1
ray_ports=(--node-manager-port=$((PORT + 1)) --object-manager-port=$((PORT + 2))
  --runtime-env-agent-port=$((PORT + 3)) --dashboard-agent-grpc-port=$((PORT + 4))
  --dashboard-agent-listen-port=$((PORT + 5)) --metrics-export-port=$((PORT + 6))
  --min-worker-port=$((PORT + {WORKER_PORTS_FROM})) --max-worker-port=$((PORT + {PORTS_PER_JOB - 1})))
ray_node=(--temp-dir="/tmp/ray-$SLURM_JOB_ID" --disable-usage-stats --block{gpus})
# A Ray node told to stop (SIGTERM: scancel, or the job's end) first drains for up to 30 s, for Ray
# Serve's replicas: a sweep has none, and Slurm would wait on it (up to KillWait) to free the node.
export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0
steps=()
stop_ray() {{
  for pid in "${{steps[@]}}"; do kill "$pid" 2>/dev/null; done
  wait "${{steps[@]}}" 2>/dev/null
  rm -f "$RAY_AUTH_TOKEN_PATH"
  srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 rm -rf "/tmp/ray-$SLURM_JOB_ID" 2>/dev/null
}}
trap stop_ray EXIT
srun --nodes=1 --ntasks=1 "${{srun_cpus[@]}}" -w "$head_node" "${{RAY[@]}}" start --head \\
  --node-ip-address="$head_ip" --port="$PORT" \\
  --include-dashboard=false "${{ray_ports[@]}}" "${{ray_node[@]}}" &
steps+=($!)
"$PY" -m t2a_ray.orchestrator.slurm wait "$ADDRESS" --nodes 1 --steps "${{steps[@]}}" || exit 1
for node in "${{nodes[@]:1}}"; do
  srun --nodes=1 --ntasks=1 "${{srun_cpus[@]}}" -w "$node" "${{RAY[@]}}" start --address="$ADDRESS" \\
    "${{ray_ports[@]}}" "${{ray_node[@]}}" &
  steps+=($!)
done
"$PY" -m t2a_ray.orchestrator.slurm wait "$ADDRESS" --nodes "${{#nodes[@]}}" --steps "${{steps[@]}}" || exit 1

# 3. The sweep, from the head: the run folder continued where it exists (a requeued, preempted or
#    resubmitted job: finished units are never run again), else launched.
if [ -f "$RUN/sweep.yaml" ]; then
  "${{T2A[@]}}" resume "$RUN" --address "$ADDRESS" --no-progress
else
  {launch}
fi
# 4. Ray down, on exit (its srun steps end; never `ray stop`: it would stop another job's Ray on the node)
"""


def _array_block(job: SlurmJob) -> str:
    """2.–4. for an array task: its share of the units, on a local Ray of its own."""
    a = job.allocation
    return f"""# 2. This task's share of the units ({a.array} tasks, one node each, one run folder), on a Ray of its own
#    (local to the node, on 127.0.0.1). A requeued or resubmitted task runs what is left of its share.
if [ ! -f "$RUN/sweep.yaml" ]; then
  echo "error: no run folder at $RUN: an array needs it first; create it with {CREATE_HINT}" >&2
  exit 2
fi
"${{T2A[@]}}" resume "$RUN" --gpus {a.gpus_per_node} --share "$SLURM_ARRAY_TASK_ID/{a.array}" --no-progress
"""


def write_script(job: SlurmJob) -> Path:
    path = job.run.slurm_dir / SCRIPT_NAME
    atomic_write_text(path, render(job))
    path.chmod(0o755)
    return path


def submit(job: SlurmJob, script: Path) -> str:
    """`sbatch` the script; the job id (recorded in `slurm/jobs.jsonl`). T2ARayError-free: an sbatch
    that refuses raises ConfigError with its own message (exit 2)."""
    try:
        done = subprocess.run(
            ["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120, check=False
        )
    except FileNotFoundError:
        raise ConfigError(
            "--submit", str(script), "sbatch not found: run on a Slurm login node, or --print"
        ) from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigError(
            "--submit", str(script), f"sbatch refused it: {reason[-1] if reason else done.returncode}"
        )
    job_id = done.stdout.strip().split(";")[0]
    record = {
        "job_id": job_id,
        "submitted_unix_s": time.time(),
        "array": job.allocation.array,
        "nodes": job.allocation.nodes,
    }
    with open(job.run.slurm_dir / JOBS_LOG, "a") as f:
        f.write(json.dumps(record) + "\n")
    return job_id


def submitted_jobs(run: RunFolder) -> list[dict]:
    """The jobs `t2a-ray slurm --submit` submitted for this run, oldest first."""
    path = run.slurm_dir / JOBS_LOG
    if not path.is_file():
        return []
    jobs = []
    for line in path.read_text().splitlines():
        try:
            jobs.append(json.loads(line))
        except ValueError:
            continue
    return jobs


# ---- run on the nodes, by the batch script
def node_check(run_root: str, expected_ray: str, seen: str) -> str | None:
    """Step 1 on one node: why the sweep cannot run here (one line, with the fix), or None."""
    node = socket.gethostname()
    here = ray_version()
    if here != expected_ray:
        return (
            f"{node} runs Ray {here}, the head {expected_ray}: every node must run the same install "
            "(put the virtual environment on the shared storage)"
        )
    try:
        RunFolder(run_root).check_writable()
    except ConfigError as e:
        return str(e)
    if not Path(seen).is_file():
        return (
            f"--out {run_root}: {node} does not see the file the head wrote there ({Path(seen).name}); "
            "the folder is local to each node: put --out on storage every node mounts at the same path"
        )
    return None


def wait_for_nodes(address: str, nodes: int, steps: list[int], timeout_s: float = RAY_WAIT_S) -> str | None:
    """Wait until Ray at `address` has `nodes` alive nodes; None, or why not — at once where one of
    the `srun` steps that start them (`steps`: their pids) has ended."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray._raylet import GcsClient
    from ray.core.generated.gcs_pb2 import GcsNodeInfo

    deadline = time.monotonic() + timeout_s
    alive, last_error = 0, "no answer"
    while time.monotonic() < deadline:
        ended = [pid for pid in steps if not _alive(pid)]
        if ended:
            return f"Ray did not start: its srun step (pid {ended[0]}) ended; its error is above"
        try:
            client = GcsClient(address=address)
            alive = len(client.get_all_node_info(timeout=5, state_filter=GcsNodeInfo.GcsNodeState.ALIVE))
            if alive >= nodes:
                return None
            last_error = f"{alive} of {nodes} node(s) up"
        except Exception as e:  # noqa: BLE001 — the head is not up yet
            last_error = str(e).splitlines()[0] if str(e) else type(e).__name__
        time.sleep(0.5)
    return f"Ray at {address}: {last_error} after {timeout_s:.0f} s"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a child that ended but was not reaped yet is a zombie: ended
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m t2a_ray.orchestrator.slurm")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="step 1 of the batch script, on each node")
    check.add_argument("run_dir")
    check.add_argument("--ray-version", required=True)
    check.add_argument("--seen", required=True)
    wait = commands.add_parser("wait", help="wait until a Ray cluster has N nodes")
    wait.add_argument("address")
    wait.add_argument("--nodes", type=int, required=True)
    wait.add_argument("--steps", type=int, nargs="*", default=[])
    wait.add_argument("--timeout", type=float, default=RAY_WAIT_S)
    args = parser.parse_args(argv)
    if args.command == "check":
        problem = node_check(args.run_dir, args.ray_version, args.seen)
    else:
        problem = wait_for_nodes(args.address, args.nodes, args.steps, args.timeout)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2 if args.command == "check" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
