"""configs/levers-smoke.yaml through `t2a-ray launch` (cut down to tiny AudioLDM on the CPU): its fp8 runtime
is refused at launch on the CPU; int8 and the step cache run end to end, each compared with eager, the
quantisation metered as setup, and the report's runtime table takes both axes. That configs/levers.yaml
loads as shipped is checked here too."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from t2a_ray.analysis.runtime_tables import read_setup
from t2a_ray.cli import main
from t2a_ray.config import load_sweep

CONFIGS = Path(__file__).parents[2] / "configs"


def test_the_levers_reading_is_7_models_by_precision_cache_compile_batch_and_steps():
    trials = load_sweep(CONFIGS / "levers.yaml").trials()
    axes = ("precision", "cache", "compile", "batch_size", "steps")
    assert len({t.model.id for t in trials}) == 7 and len(trials) == 7 * 3 * 3 * 2 * 2 * 2
    assert {a: sorted({t.params[a] for t in trials}) for a in axes} == {
        "precision": ["fp8", "int8", "none"],
        "cache": ["every-2", "every-3", "none"],
        "compile": ["none", "reduce-overhead"],
        "batch_size": [1, 4],
        "steps": [25, 100],
    }
    assert {t.weights for t in trials} == {"random"}


@pytest.mark.torchao
@pytest.mark.slow
def test_the_levers_smoke_sweep_runs_int8_and_a_step_cache_beside_eager(tmp_path):
    overrides = [
        "weights=tiny",
        "dtype=float32",
        "models=[audioldm]",
        "grid.steps=2",
        "grid.duration_s=1",
        "repeats=1",
        "metering.min_window_s=0",
        "metering.idle_baseline_s=0.1",
    ]
    config = CONFIGS / "levers-smoke.yaml"
    args = ["launch", "--config", str(config), "--gpus", "0", "--out", str(tmp_path), "--no-progress"]
    args += [a for o in overrides for a in ("--set", o)]
    # as shipped, its fp8 trials cannot run on the CPU: refused before anything starts
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
    assert "grid.precision = 'fp8': needs a GPU of compute capability ≥ 8.9" in refused.output
    assert not (tmp_path / "levers-smoke").exists()
    result = CliRunner().invoke(main, [*args, "--set", "grid.precision=[none, int8]"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "levers-smoke"
    rows = pd.DataFrame(pq.read_table(run / "results.parquet").to_pylist())
    assert (rows["status"] == "ok").all() and len(rows) == 4
    compared = rows[(rows["precision"] != "none") | (rows["cache"] != "none")]
    assert len(compared) == 3 and compared["output_snr_db"].map(math.isfinite).all()  # changed, compared
    setup = read_setup(run)
    quantised = setup.groupby("precision")["denoisers_quantised"].sum()
    assert quantised["int8"] >= 1 and quantised["none"] == 0  # once per worker that ran int8
    table = pd.read_csv(run / "report" / "runtime.csv")
    assert sorted(zip(table["precision"], table["cache"], strict=True)) == [
        ("int8", "every-2"),
        ("int8", "none"),
        ("none", "every-2"),
    ]
    assert table["eager_energy_per_waveform_j"].notna().all() and table["output_snr_db"].notna().all()
    # quantising is setup, metered apart; a step cache alone sets nothing up
    by = table.set_index(["precision", "cache"])
    assert (by.loc["int8", "overhead_from"] == "own").any() and by.loc["int8", "overhead_s"].notna().any()
    assert pd.isna(by.loc[("none", "every-2"), "overhead_s"])
