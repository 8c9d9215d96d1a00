"""`t2a-ray doctor` on a machine or a cluster: one Ray actor pinned to each GPU runs `metering.doctor`'s
checks 1–7 where it lands; on a cluster (`--address`) the driver adds check 8 per node; the record goes
to OUT/doctor.md and OUT/doctor.json.

Without a GPU (and without `--address`) nothing starts Ray: the checks say "no GPU" and RAPL's state.
"""

from __future__ import annotations

import datetime
import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2a_ray.errors import MeteringError, root_cause
from t2a_ray.metering import doctor
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.doctor import FAIL, PASS, WARN, Check
from t2a_ray.metering.gpu import GPU, open_visible_gpu
from t2a_ray.orchestrator.device import NO_CUDA_DEVICE, TorchDevice
from t2a_ray.runfolder import atomic_write_text

#: What a doctor actor measures with: (GPU or None, clock, injected load or None, why there is no GPU).
Rig = tuple[GPU | None, Clock, Callable[[float], None] | None, str]


def cuda_rig() -> Rig:
    """This process's GPU (a Ray actor's one GPU is CUDA 0), real time, and matmul bursts on it."""
    device = TorchDevice.detect()
    if not device.is_cuda:
        return None, Clock(), None, "no CUDA device visible to this process"
    try:
        gpu, how = open_visible_gpu(cuda_uuid=device.uuid())
    except MeteringError as e:
        return None, Clock(), None, str(e)
    if gpu is None:
        return None, Clock(), None, how
    return gpu, Clock(), device.busy_burst(), how


@dataclass
class Place:
    """One GPU (or a machine without one) and its checks."""

    node: str
    gpu: dict[str, Any]  # index, name, uuid, driver (empty without a GPU)
    checks: list[Check]
    writable: str | None  # None: OUT could be written from here; else the error

    @property
    def label(self) -> str:
        if not self.gpu:
            return f"{self.node} (no GPU)"
        return f"{self.node} GPU {self.gpu['index']} ({self.gpu['name']})"


def checks_here(quick: bool, out_dir: str, open_rig: Callable[[], Rig] = cuda_rig) -> Place:
    """Checks 1–7 on the GPU this process sees (one Ray actor per GPU calls this), and whether OUT
    can be written from this node."""
    gpu, clock, busy, why = open_rig()
    try:
        if gpu is None or busy is None:
            checks, identity = doctor.no_gpu_checks(why), {}
        else:
            identity = {
                "index": gpu.index,
                "name": gpu.name(),
                "uuid": gpu.uuid(),
                "driver": gpu.driver_version(),
            }
            try:
                checks = doctor.run_gpu_checks(gpu, clock, busy, doctor.QUICK if quick else doctor.FULL)
            except MeteringError as e:  # the GPU stopped answering mid-check: that is the finding
                checks = [failed_check(f"NVML failed during the checks: {e}")]
    finally:
        if gpu is not None:
            gpu.close()
    return Place(socket.gethostname(), identity, [*checks, doctor.check_rapl()], _write_problem(out_dir))


class GpuDoctor:
    """The Ray actor that holds one GPU while `checks_here` runs on it."""

    def checks(self, quick: bool, out_dir: str, open_rig: Callable[[], Rig]) -> Place:
        return checks_here(quick, out_dir, open_rig)


def failed_check(why: str) -> Check:
    """The record's line for a GPU whose checks could not finish."""
    fix = "rerun; if it persists, check the GPU and driver (nvidia-smi -q)"
    return Check(1, doctor.TITLES[1], FAIL, f"checks did not finish: {why}", fix)


def _write_problem(out_dir: str) -> str | None:
    """None if a file can be written (and removed) in `out_dir` from here, else the error."""
    probe = Path(out_dir) / f".doctor-probe-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text("t2a-ray doctor\n")
        probe.unlink()
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    return None


def cluster_check(place: Place, ray_version: str, auth: str) -> Check:
    """Check 8 for one place: OUT writable from its node; Ray's version and authentication mode."""
    title = "cluster: OUT writable from this node; Ray version and auth mode"
    figure = f"Ray {ray_version}, auth {auth}; " + (
        "OUT writable" if place.writable is None else f"OUT not writable: {place.writable}"
    )
    if place.writable is not None:
        fix = "put --out (and launch's --out) on storage every node mounts at the same path"
        return Check(8, title, FAIL, figure, fix)
    if auth != "token":
        fix = "anyone who reaches the cluster's port can run code on it: start Ray with RAY_AUTH_MODE=token"
        return Check(8, title, WARN, figure, fix)
    return Check(8, title, PASS, figure)


def _ray_auth_mode() -> str:
    try:
        from ray._private.authentication.authentication_utils import get_authentication_mode_name
        from ray._raylet import get_authentication_mode

        return get_authentication_mode_name(get_authentication_mode())
    except (ImportError, AttributeError):
        return "unknown (this Ray has no token authentication)"


@dataclass
class DoctorRecord:
    command: str
    host: str
    date: str
    places: list[Place]
    wall_s: float
    ray: dict[str, str] = field(default_factory=dict)

    @property
    def worst(self) -> str:
        return doctor.worst([c for p in self.places for c in p.checks])

    @property
    def exit_code(self) -> int:
        return 1 if self.worst == FAIL else 0

    def markdown(self) -> str:
        cards = [
            f"- {p.label}: uuid {p.gpu['uuid']}, driver {p.gpu['driver']}" for p in self.places if p.gpu
        ] or ["- no GPU"]
        lines = [
            "# t2a-ray doctor",
            "",
            f"- date: {self.date}",
            f"- command: `{self.command}`",
            f"- host: {self.host}",
            f"- wall time: {self.wall_s:.0f} s (all GPUs at once)",
            *cards,
            *([f"- Ray {self.ray['version']}, auth {self.ray['auth']}"] if self.ray else []),
            f"- result: **{self.worst.upper()}** ({_counts(self.places)})",
            "",
            doctor.table_markdown({p.label: p.checks for p in self.places}),
        ]
        for p in self.places:  # the square wave's figures, per offset
            coverage = next((c for c in p.checks if c.number == 2 and "busy_j_per_period" in c.data), None)
            if coverage is not None:
                per = coverage.data["busy_j_per_period"]
                offsets = ", ".join(f"{k}: " + "/".join(f"{x:.2f}" for x in v) for k, v in per.items())
                period_ms = 1e3 * coverage.data["period_s"]
                lines += [
                    "",
                    f"Coverage on {p.label}: busy J per period at offset k × {period_ms / len(per):.1f} ms "
                    f"(repeats /-separated): {offsets}",
                ]
                if "coverage" in coverage.data:
                    lines[-1] += f"; {doctor.coverage_by_offset(coverage.data)}"
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "host": self.host,
            "date": self.date,
            "wall_s": self.wall_s,
            "result": self.worst,
            "ray": self.ray,
            "places": [
                {
                    "label": p.label,
                    "node": p.node,
                    "gpu": p.gpu,
                    "writable_error": p.writable,
                    "checks": [c.as_dict() for c in p.checks],
                }
                for p in self.places
            ],
        }

    def write(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "doctor.md", self.markdown())
        atomic_write_text(out_dir / "doctor.json", json.dumps(self.as_json(), indent=2, default=str))


def _counts(places: list[Place]) -> str:
    statuses = [c.status for p in places for c in p.checks]
    return ", ".join(f"{statuses.count(s)} {s}" for s in (PASS, WARN, FAIL))


def run_doctor(
    gpus: int | None,
    address: str | None,
    quick: bool,
    out_dir: Path,
    command: str,
    open_rig: Callable[[], Rig] = cuda_rig,
) -> DoctorRecord:
    """Every GPU's checks (`gpus`: how many; None with `address`: all of the cluster's), the record
    written under `out_dir`."""
    t0 = time.perf_counter()
    out = str(out_dir.resolve())
    ray_info: dict[str, str] = {}
    if gpus == 0 and address is None:
        places = [
            checks_here(quick, out, lambda: (None, Clock(), None, "none in use: --gpus 0, or none visible"))
        ]
    else:
        # Ray, and the modules that import it, only where a GPU or a cluster is checked: `doctor --gpus 0`
        # on a machine starts no Ray and waits for no Ray import
        import ray

        from t2a_ray.orchestrator.pool import gather
        from t2a_ray.orchestrator.runner import LaunchOptions, ray_session

        with ray_session(LaunchOptions(gpus=gpus, address=address, progress=False)) as n:
            resources = (
                {"num_gpus": 1, "num_cpus": 0}
                if gpus != 0
                else {"num_gpus": 0, "num_cpus": 1, "runtime_env": {"env_vars": NO_CUDA_DEVICE}}
            )
            # Actors, not tasks: an actor holds its GPU until it is killed, so no two of them share one
            # (a task that finished early would hand its GPU to the next).
            doctors = [
                ray.remote(**resources)(GpuDoctor).options(scheduling_strategy="SPREAD").remote()
                for _ in range(n)
            ]
            results = gather([d.checks.remote(quick, out, open_rig) for d in doctors])
            for d in doctors:
                ray.kill(d)
            places = [
                r if isinstance(r, Place) else Place(f"actor {i}", {}, [failed_check(root_cause(r))], None)
                for i, r in enumerate(results)
            ]
            if address is not None:
                ray_info = {"version": ray.__version__, "auth": _ray_auth_mode()}
        if ray_info:
            for p in places:
                p.checks.append(cluster_check(p, ray_info["version"], ray_info["auth"]))
    record = DoctorRecord(
        command=command,
        host=socket.gethostname(),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        places=sorted(places, key=lambda p: (p.node, p.gpu.get("index", -1))),
        wall_s=time.perf_counter() - t0,
        ray=ray_info,
    )
    record.write(out_dir)
    return record
