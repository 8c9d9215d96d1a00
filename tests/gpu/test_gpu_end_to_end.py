"""On a machine with an NVIDIA GPU (skipped elsewhere): the real counter, a real sweep on it."""

from __future__ import annotations

import textwrap

import pyarrow.parquet as pq
import pytest

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep
from t2a_ray.runfolder import RunFolder

pytestmark = pytest.mark.gpu


def test_the_meter_reads_the_nvml_counter_of_this_processes_gpu():
    import torch

    from t2a_ray.metering import open_meter
    from t2a_ray.orchestrator.device import TorchDevice

    meter = open_meter(TorchDevice("cuda"))
    with meter:
        a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        res = meter.measure(lambda phases: [a @ a for _ in range(50)], min_window_s=0.5)
        prov = meter.provenance()
    cols = res.as_columns()
    assert cols["energy_method"].startswith("gpu:nvml-counter")
    assert cols["gpu_energy_j"] > 0 and cols["window_s"] >= 0.5 and cols["avg_power_w"] > 50
    assert prov["gpu_uuid"] and prov["gpu_name"] and prov["gpu_index"] is not None


def test_a_one_gpu_sweep_of_a_full_size_model_records_gpu_energy(tmp_path):
    config = tmp_path / "g.yaml"
    config.write_text(
        textwrap.dedent("""
        models: [audioldm]
        weights: random
        dtype: float16
        grid: {steps: [10, 20], duration_s: 5}
        prompts: {text: ["a dog barks"]}
        repeats: 2
        metering: {idle_baseline_s: 2}
    """)
    )
    run = RunFolder(tmp_path / "runs" / "g")
    run.create(load_sweep(config, name="g").to_yaml())
    outcome = run_sweep(run, LaunchOptions(gpus=1, progress=False))
    assert outcome.statuses == {"ok": 2}
    rows = pq.read_table(run.results).to_pylist()
    assert len(rows) == 4
    for r in rows:
        assert r["gpu_energy_j"] > 0 and r["gpu_energy_net_j"] < r["gpu_energy_j"] and r["idle_power_w"] > 0
        assert r["gpu_uuid"] and r["peak_memory_bytes"] > 0 and r["energy_method"].startswith("gpu:nvml")
        assert r["denoise_energy_j"] > r["decode_energy_j"] > 0
    by_steps = {s: sum(r["gpu_energy_j"] for r in rows if r["steps"] == s) for s in (10, 20)}
    assert by_steps[20] > by_steps[10]
