"""What a worker runs on, so that runs on different GPUs and hosts can be told apart and compared.

* `host_provenance()`: host name, CPU model and cores, the versions of the packages that shape a
  measurement (torch, its CUDA, diffusers, transformers, ray, t2a-ray and its git commit where the
  code is a checkout). `host_id` is a short hash of all of it: rows carry it, `logs/` holds the rest.
* `scheduler_ids()`: the batch scheduler's job this process runs in (Slurm's job id and array task id),
  null outside one; rows carry them beside the node and the GPU's UUID.
* `reference_workload(meter, device)`: a fixed amount of work metered on the worker's device at start —
  a matmul window (compute-bound: the GPU's own speed and power) and a loop of tiny kernel launches
  (launch-bound: the host CPU's speed, which decides the energy of batch-1 diffusion). Their joules and
  seconds, per GPU, show which GPU or host is slower, within a run and across runs on other machines.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from t2a_ray.orchestrator.trial import device_energy_j

PACKAGES = ("torch", "diffusers", "transformers", "ray", "t2a-ray")
# The reference work: the same on every run, so its figures compare across runs.
MATMUL_SIZE = {"cuda": 4096, "cpu": 256}
MATMUL_REPEATS = {"cuda": 200, "cpu": 20}
LAUNCHES = 2000  # tiny kernels in the launch-bound loop
# A window repeats the work until it lasts this long: many ticks of a GPU's energy counter. On the
# CPU (tests, --gpus 0) one call each: the estimate there is CPU time, not a counter.
WINDOW_S = {"cuda": 1.0, "cpu": 0.0}


def host_provenance() -> dict[str, Any]:
    """This process's host and software, plus `host_id`, a hash of it (the same for every worker of
    one host and install)."""
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        **{f"{p.replace('-', '_')}_version": _version(p) for p in PACKAGES},
        "cuda_version": _cuda_version(),
        "t2a_ray_commit": _git_commit(),
    }
    digest = hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()
    return {"host_id": digest[:12], **info}


# Row column → the environment variable Slurm sets in every step of a job. A Ray worker inherits the
# environment of the raylet that `srun` started on its node, so the ids are the job's that holds its GPU.
SLURM_ENV = {"slurm_job_id": "SLURM_JOB_ID", "slurm_array_task_id": "SLURM_ARRAY_TASK_ID"}


def scheduler_ids(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Slurm job (and array task) this process runs in: `SLURM_ENV`'s columns, None where unset."""
    env = os.environ if env is None else env
    job = env.get(SLURM_ENV["slurm_job_id"]) or None
    task = env.get(SLURM_ENV["slurm_array_task_id"], "")
    return {"slurm_job_id": job, "slurm_array_task_id": int(task) if task.isdigit() else None}


def reference_workload(meter: Any, device: str) -> dict[str, Any]:
    """Meter the fixed matmul window and the fixed launch-bound loop on `device` ("cuda" or "cpu").

    Each runs once unmetered (kernel selection, allocations), then in a window of at least
    `WINDOW_S` seconds; the figures are per call of the fixed work, in the device's joules (the GPU's,
    or the CPU estimate without one), as `energy_method` says.
    """
    import torch

    kind = "cuda" if device.startswith("cuda") else "cpu"
    n = MATMUL_SIZE[kind]
    dtype = torch.float16 if kind == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    one = torch.zeros(1, device=device)

    def matmul(_phases=None) -> None:
        for _ in range(MATMUL_REPEATS[kind]):
            torch.mm(a, b)

    def launches(_phases=None) -> None:
        for _ in range(LAUNCHES):
            one.add_(1.0)

    out: dict[str, Any] = {"reference_device": device}
    for name, fn in (("matmul", matmul), ("launch", launches)):
        out.update(_metered(meter, name, fn, WINDOW_S[kind]))
    return out


def _metered(meter: Any, name: str, fn: Callable[..., None], window_s: float) -> dict[str, Any]:
    fn()
    meter.sync()
    res = meter.measure(fn, window_s)
    cols = res.as_columns()
    energy = device_energy_j(cols)
    calls = res.generations_in_window
    return {
        f"reference_{name}_j": None if energy is None else energy / calls,
        f"reference_{name}_s": res.window_s / calls,
        f"reference_{name}_energy_method": cols["energy_method"],
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cuda_version() -> str | None:
    torch = sys.modules.get("torch")  # only where this process already uses torch: never import it here
    return getattr(getattr(torch, "version", None), "cuda", None)


def _git_commit() -> str | None:
    """The commit of t2a-ray's checkout (an editable install), or None for an installed wheel."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None
