"""configs/runtime.yaml runs through `t2a-ray launch` (cut down to one tiny model on the CPU): its CUDA-graph
runtime is refused at launch on the CPU, and a knob that only fails at run time (no attention kernel) is
recorded infeasible. That it loads as shipped: test_paper_configs.py."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from t2a_ray.cli import main

pytestmark = pytest.mark.slow  # a real launch of a tiny model

CONFIG = Path(__file__).parents[2] / "configs" / "runtime.yaml"


def test_runtime_sweep_launches_and_a_knob_that_cannot_run_is_recorded_infeasible(tmp_path, shared_ray):
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
    args += ["--address", shared_ray]
    args += [a for o in overrides for a in ("--set", o)]
    # as shipped, its reduce-overhead trials cannot run on the CPU: refused before anything starts
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
    assert "grid.compile = 'reduce-overhead': captures CUDA graphs, which need a GPU" in refused.output
    assert not (tmp_path / "runtime").exists()
    result = CliRunner().invoke(
        main, [*args, "--set", "grid.compile=none", "--set", "grid.attention=[default, efficient]"]
    )
    assert result.exit_code == 0, result.output
    rows = pq.read_table(tmp_path / "runtime" / "results.parquet").to_pylist()
    status = {r["attention"]: (r["status"], r["error"]) for r in rows}
    assert status["default"] == ("ok", None)
    assert status["efficient"][0] == "infeasible"
    assert "attention=efficient has no kernel" in status["efficient"][1]
