"""`--gpus 0` means the CPU: its worker sees no GPU — even on a host that has some — runs its models
on the CPU and meters the CPU (the labelled estimate where RAPL is unreadable)."""

from __future__ import annotations

import json

import pytest
from test_sweeps import make_run, rows, worker_stats  # noqa: I001 — sibling test module

from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep

pytestmark = pytest.mark.slow

NOOP = """
models: [noop]
weights: tiny
grid: {steps: [1, 2]}
prompts: {text: ["a"]}
warmup: 0
metering: {idle_baseline_s: 0}
"""


def test_a_gpus_0_worker_sees_no_gpu_runs_on_the_cpu_and_meters_the_cpu(tmp_path, monkeypatch):
    # What a GPU host hands down to every process it starts (here, with no GPU, nothing stands behind it):
    # Ray leaves it as it is for an actor that holds no GPU.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    run = make_run(tmp_path, NOOP)
    outcome = run_sweep(run, LaunchOptions(gpus=0, progress=False))
    assert outcome.statuses == {"ok": 2}
    [stats] = worker_stats(run)
    assert stats["cuda_visible_devices"] == "" and stats["ray_gpus"] == 0
    [prepared] = json.loads((run.logs_dir / "gpus-attempt-1.json").read_text())
    assert prepared["device"] == "cpu"
    for r in rows(run):
        assert r["energy_method"].startswith("gpu:none;cpu:") and r["gpu_energy_j"] is None
        assert r["gpu_name"] is None and r["cpu_energy_j"] > 0
