"""Host provenance and the reference workload, on this machine's CPU with the real meter."""

from __future__ import annotations

import importlib.metadata

from t2a_ray.metering import CpuTimeEstimate, Meter, MeterSettings
from t2a_ray.orchestrator.provenance import host_provenance, reference_workload


def test_provenance_names_the_host_the_packages_and_a_stable_host_id():
    a, b = host_provenance(), host_provenance()
    assert a == b and len(a["host_id"]) == 12
    assert a["cpu_cores"] >= 1 and a["host"]
    assert a["ray_version"] == importlib.metadata.version("ray")
    assert a["torch_version"] == importlib.metadata.version("torch")
    assert a["t2a_ray_commit"] is None or len(a["t2a_ray_commit"]) == 40


def test_the_reference_workload_meters_a_matmul_window_and_a_launch_loop():
    with Meter(None, CpuTimeEstimate(), MeterSettings(sample_interval_s=0.005)) as meter:
        out = reference_workload(meter, "cpu")
    for name in ("matmul", "launch"):
        assert out[f"reference_{name}_s"] > 0
        assert out[f"reference_{name}_j"] > 0
        assert "estimate:cpu-time" in out[f"reference_{name}_energy_method"]


def test_the_slurm_job_and_array_task_come_from_the_environment_and_are_null_outside_slurm():
    from t2a_ray.orchestrator.provenance import scheduler_ids

    assert scheduler_ids({}) == {"slurm_job_id": None, "slurm_array_task_id": None}
    ids = scheduler_ids({"SLURM_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "3"})
    assert ids == {"slurm_job_id": "4242", "slurm_array_task_id": 3}
    assert scheduler_ids({"SLURM_JOB_ID": "7"})["slurm_array_task_id"] is None
