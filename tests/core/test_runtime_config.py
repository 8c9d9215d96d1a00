"""configs/runtime.yaml runs through `t2a-ray launch` (cut down to one tiny model on the CPU, where CUDA
graphs make its compiled trials infeasible). That it loads as shipped: test_paper_configs.py."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from t2a_ray.cli import main

CONFIG = Path(__file__).parents[2] / "configs" / "runtime.yaml"


def test_runtime_sweep_launches_and_a_knob_that_cannot_run_is_recorded_infeasible(tmp_path):
    overrides = [
        "weights=tiny",
        "dtype=float32",
        "models=[make-an-audio-2]",
        "grid.steps=2",
        "grid.batch_size=1",
        "grid.duration_s=1",
        "repeats=1",
        "metering.min_window_s=0",
        "metering.idle_baseline_s=0.1",
    ]
    args = ["launch", "--config", str(CONFIG), "--gpus", "0", "--out", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(main, args + [a for o in overrides for a in ("--set", o)])
    assert result.exit_code == 0, result.output
    rows = pq.read_table(tmp_path / "runtime" / "results.parquet").to_pylist()
    status = {r["compile"]: (r["status"], r["error"]) for r in rows}
    assert status["none"] == ("ok", None)
    assert status["reduce-overhead"][0] == "infeasible"
    assert "no CUDA graphs on the cpu" in status["reduce-overhead"][1]
