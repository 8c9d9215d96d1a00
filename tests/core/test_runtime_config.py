"""configs/runtime.yaml: loads as shipped and with the overrides its comments suggest, and runs through
`t2a-ray launch` (cut down to one tiny model on the CPU, where CUDA graphs make trials infeasible)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from t2a_ray.cli import main
from t2a_ray.config import load_sweep

CONFIG = Path(__file__).parents[2] / "configs" / "runtime.yaml"
PAPER_MODELS = [
    "audioldm",
    "audioldm2",
    "stable-audio-open",
    "tango",
    "tango2",
    "make-an-audio",
    "make-an-audio-2",
]


def test_runtime_sweep_is_the_paper_models_by_compile_batch_and_steps():
    sweep = load_sweep(CONFIG, overrides=("weights=random",))
    trials = sweep.trials()
    assert sweep.weights == "random" and sweep.dtype == "float16"
    assert [m.id for m in sweep.models] == PAPER_MODELS
    grid = Counter((t.params["compile"], t.params["batch_size"], t.params["steps"]) for t in trials)
    assert set(grid) == {(c, b, s) for c in ("none", "reduce-overhead") for b in (1, 4) for s in (25, 100)}
    assert set(grid.values()) == {7} and {t.params["attention"] for t in trials} == {"default"}
    swept = load_sweep(
        CONFIG, overrides=("weights=random", "grid.attention=[default, flash, efficient, math]")
    )
    assert len(swept.trials()) == 4 * len(trials)


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
    assert "no CUDA graphs on the CPU" in status["reduce-overhead"][1]
