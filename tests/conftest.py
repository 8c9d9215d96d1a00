"""Shared fixtures. Multi-GPU sweeps run on Ray's logical GPUs, which no worker sees as a CUDA device: the
same tests pass on a CPU-only machine and on a GPU host. Tests marked `gpu` use the real GPUs.

Sweeps join one Ray per test process (`shared_ray`) rather than each starting their own — `run_sweep` and
the CLI through CliRunner or in a subprocess, with `--address` — wherever a local Ray's own lifecycle is
not what the test is about: a local Ray's start and stop is most of a small sweep's cost. A command whose
own process is not the subject runs in this one (`cli`). What a launch's own local Ray does (loopback,
reaper, session folder, Ctrl-C, kill -9, the demo, Slurm) is tested where the CLI runs in a subprocess
without `--address`, and by `ray_session` itself."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from t2a_ray.metering.gpu import LOGICAL_GPUS_ENV
from t2a_ray.orchestrator.ray_token import ensure_local_token

if TYPE_CHECKING:
    from ray.cluster_utils import Cluster

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing can be downloaded here; fail fast if code tries
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault(LOGICAL_GPUS_ENV, "1")
# Token authentication from the start, as Ray turns it on (for good, in that process) at the first local
# Ray a launch starts: a Ray started in this process before that (`shared_ray`) would then refuse the
# process's later jobs. Set before Ray reads its configuration.
os.environ.setdefault("RAY_AUTH_MODE", "token")
# Its token, made once for every test process before any starts a Ray (a fresh machine has none, and
# the `ray.cluster_utils` clusters below would not make one)
ensure_local_token()


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_configure(config):
    """Test processes (`-n N`) share the cores for torch's threads: each takes its share, unless the
    caller set one. N processes each running as many threads as the machine has cores wait for each
    other's threads by spinning (OpenMP), which multiplies the CPU seconds of every test that runs a
    model in its own process (benchmarks/results/suite_time_cpu.md). Ray's workers get their own share.
    Set here, in the process that starts the test processes, before any imports torch."""
    n = getattr(config.option, "numprocesses", None)
    if isinstance(n, int) and n > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // n)))


def pytest_collection_modifyitems(config, items):
    items[:] = slow_first(items, _xdist_workers(config))
    # torchao stays out of the dev install: diffusers imports it wherever it is installed, which every
    # test process that loads a pipeline would pay for; the GPU machine's suite installs it.
    missing = {
        "gpu": None if has_cuda() else "needs an NVIDIA GPU (run on the GPU machine)",
        "torchao": None
        if importlib.util.find_spec("torchao")
        else "needs torchao (pip install -e '.[dev,levers]'; the GPU machine's suite has it)",
    }
    for item in items:
        for marker, reason in missing.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def _xdist_workers(config) -> int:
    """How many test processes share the collection (1 without pytest-xdist)."""
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput["workercount"]) if workerinput else 1


def worksteal_blocks(n_items: int, n_workers: int) -> list[int]:
    """The sizes of the contiguous blocks xdist's `worksteal` first hands its workers, in order (its
    `check_schedule`: each idle worker takes an equal share of what is left)."""
    sizes, left = [], n_items
    for i in range(n_workers):
        sizes.append(left // (n_workers - i))
        left -= sizes[-1]
    return sizes


def slow_first(items: list, n_workers: int) -> list:
    """The collection reordered so that each test process begins with its share of the `slow` tests
    and ends with quick ones. The suite's wall time is at least its longest test's end: a long sweep
    started last would run alone. `worksteal` hands each process one contiguous block and then moves
    quick tests from the end of a busy process's block to an idle one. A module's slow tests stay in
    one process: they may share a module-scoped fixture that one machine can hold once at a time (the
    Slurm cluster: one munged per machine)."""
    slow = [i for i in items if "slow" in i.keywords]
    if not slow or len(slow) == len(items):
        return list(items)
    quick = [i for i in items if "slow" not in i.keywords]
    modules: dict[str, list] = {}
    for item in slow:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    blocks: list[list] = [[] for _ in range(n_workers)]
    for tests in sorted(modules.values(), key=len, reverse=True):
        min(blocks, key=len).extend(tests)
    ordered = []
    for block, size in zip(blocks, worksteal_blocks(len(items), n_workers), strict=True):
        fill = max(0, size - len(block))
        block, quick = block + quick[:fill], quick[fill:]
        ordered += block
    return ordered + quick


@pytest.fixture(autouse=True)
def gpu_tests_alone(request, monkeypatch) -> Iterator[None]:
    """A `gpu` test sees the real GPUs and runs alone: it meters the whole card, to which another test
    process's GPU work would add, and a launch-bound model's energy per step grows when other tests
    load the host's CPUs. Every other test holds the lock shared, a `gpu` test exclusively."""
    gpu = request.node.get_closest_marker("gpu") is not None
    if gpu:
        monkeypatch.delenv(LOGICAL_GPUS_ENV, raising=False)
    with open(Path(tempfile.gettempdir()) / "t2a-ray-gpu-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if gpu else fcntl.LOCK_SH)
        yield


@pytest.fixture
def write_sweep(tmp_path: Path):
    """Write a sweep file from a YAML string (dedented) and return its path."""

    def write(text: str, name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


# The shared Ray's logical GPUs: the most any in-process sweep asks for (`--gpus 2`); fewer are taken
# as asked (`LaunchOptions(gpus=1)`: one worker). CPUs as a local launch gives itself for two workers.
SHARED_RAY_GPUS = 2
SHARED_RAY_CPUS = SHARED_RAY_GPUS + 2


def quiet_cluster(**head: Any) -> Cluster:
    """A Ray cluster of the test utilities, its head `head` (`num_cpus`, `num_gpus`), without the two
    daemons no test reads: the autoscaler's monitor (the cluster is what the test builds) and the log
    monitor, which forwards workers' output to drivers that turn it off and follows every worker's log
    file of the session, so that it costs more the more jobs a cluster has run
    (benchmarks/results/suite_cpu_by_process.md)."""
    from ray.cluster_utils import Cluster

    return Cluster(
        initialize_head=True, head_node_args={"include_log_monitor": False, "no_monitor": True, **head}
    )


@pytest.fixture
def ray_cluster() -> Callable[..., Cluster]:
    """`ray_cluster(num_cpus=…, num_gpus=…)`: a `quiet_cluster` (`add_node` for more nodes); the test
    shuts it down."""
    return quiet_cluster


@pytest.fixture(scope="session")
def shared_ray() -> Iterator[str]:
    """The address of one local Ray for the whole test process (started on first use): pass it as
    `LaunchOptions(address=...)`. Each sweep is its own Ray job, whose actors go when it disconnects."""
    cluster = quiet_cluster(num_cpus=SHARED_RAY_CPUS, num_gpus=SHARED_RAY_GPUS)
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


@pytest.fixture
def cli(monkeypatch):
    """`cli(*args)`: the `t2a-ray` command line run in this process (click's CliRunner), its
    `exit_code`, `stdout` and `stderr` apart, as a user's terminal shows them. A subprocess would pay a
    Python start and Ray's, Tune's and pandas' imports again (benchmarks/results/resume_driver_cpu.md) for
    what a test of a sweep does not look at. An exception the CLI does not catch (a user would see its
    traceback) fails the test."""
    from click.testing import CliRunner

    from t2a_ray.cli import main

    monkeypatch.setenv(LOGICAL_GPUS_ENV, "1")
    return lambda *args: CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
