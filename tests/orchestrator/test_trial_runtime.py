"""Trials under a runtime other than eager, without Ray: the real trial code, the real meter (CPU), a
tiny real model compiled by inductor, a real run folder."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest

from t2a_ray.adapters import adapter_class
from t2a_ray.analysis.report import analyze_run
from t2a_ray.analysis.runtime import break_even, read_setup, setup_costs
from t2a_ray.config import parse_sweep
from t2a_ray.metering import open_meter
from t2a_ray.orchestrator.device import TorchDevice
from t2a_ray.orchestrator.trial import TrialEnv, run_trial
from t2a_ray.orchestrator.worker import SetUpShapes
from t2a_ray.runfolder import RunFolder

DOC = {
    "name": "rt",
    "models": ["make-an-audio-2"],
    "weights": "tiny",
    "dtype": "float32",
    # 1.5 s: a shape no other test compiles (dynamo shares a graph between instances of one model)
    "grid": {"steps": [2, 3], "duration_s": 1.5, "compile": ["none", "default"]},
    "prompts": {"text": ["a dog barks"]},
    "repeats": 2,
    "warmup": 1,
    "metering": {"idle_baseline_s": 0.1},
}


@pytest.fixture(scope="module")
def adapter():
    a = adapter_class("make-an-audio-2").load(device="cpu", dtype="float32", weights="tiny")
    yield a
    a.unload()


def _env(tmp_path, doc, adapter, meter):
    """One worker's environment: its adapter resident (loaded once), its record of shapes set up."""
    sweep = parse_sweep(doc, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    shapes = SetUpShapes(Counter())
    env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})
    env.needs_warmup, env.warmed = shapes.needed, shapes.record
    return sweep, env


def test_compile_cost_is_metered_apart_and_the_output_compared_with_eager(tmp_path, adapter):
    with open_meter(use_gpu=False) as meter:
        sweep, env = _env(tmp_path, DOC, adapter, meter)
        outcomes = {(t.params["steps"], t.params["compile"]): run_trial(t, env) for t in sweep.trials()}
    assert {o.status for o in outcomes.values()} == {"ok"}
    setup = read_setup(env.run.root)
    # only a compiled trial has a setup, once per shape on the worker: the first compiled unit of the
    # shape compiled it (one row per prompt); the second, at another step count, found it compiled —
    # no setup, no setup row, and nothing compiled in its windows (that fails a trial)
    assert list(setup["steps"]) == [2] and list(setup["compile"]) == ["default"]
    assert list(setup["prompt_id"]) == [p.id for p in sweep.prompts] and setup["graphs_compiled"].ge(1).all()
    assert setup["setup_energy_j"].notna().all() and setup["setup_s"].gt(0).all()
    assert all(setup["energy_method"].str.contains("cpu:"))
    second = next(t for t in sweep.trials() if (t.params["steps"], t.params["compile"]) == (3, "default"))
    assert not env.run.setup_shard(second.trial_id).exists()
    # the unit's setup time, for the plan: the setup and warm-up generations, where they ran
    assert outcomes[(2, "default")].setup_s >= setup["setup_s"].sum()
    assert outcomes[(3, "default")].setup_s == 0.0 and outcomes[(3, "none")].setup_s == 0.0
    assert outcomes[(2, "none")].setup_s > 0  # eager: its warm-up
    assert [len(o.warmup_energy_j) for o in outcomes.values()] == [1, 0, 1, 0]  # in trial order
    results = {t.trial_id: pq.read_table(env.run.shard(t.trial_id)).to_pylist() for t in sweep.trials()}
    for trial in sweep.trials():
        rows = results[trial.trial_id]
        snr = [r["output_snr_db"] for r in rows]
        if trial.params["compile"] == "none":
            assert snr == [None, None]  # eager is the reference, not compared with itself
        else:  # the first window compared (float32 on the CPU: far above the flag), the others null
            assert snr[0] > 60 and rows[0]["output_rel_l2_error"] < 1e-3 and snr[1] is None
    # the setup table feeds the report's break-even: one compiled shape, its overhead beyond a generation
    table = pd.DataFrame([r for rows in results.values() for r in rows])
    costs = setup_costs(setup, table)
    assert len(costs) == 1 and costs["overhead_j"].notna().all()
    even = break_even(table, costs)  # the shape's compile overhead counts for every step count
    assert sorted(even["steps"]) == [2, 3] and even["overhead_j"].notna().all()
    assert even["overhead_j"].nunique() == 1
    # ...and the run's report shows them (no GPU here: no busy fraction, so no launch-bound read-out)
    report = analyze_run(env.run.root)
    assert {"runtime_setup", "break_even", "equivalence"} <= set(report.fits)
    assert "launch_boundness" not in report.fits
    assert "Break-even of compiled runtimes" in report.text()
    assert "Compile and capture cost" in report.report_path.read_text()


@pytest.mark.parametrize(
    ("runtime", "reason"),
    [
        ({"compile": "reduce-overhead"}, "no CUDA graphs on the cpu"),
        ({"attention": "efficient"}, "attention=efficient has no kernel"),
    ],
)
def test_a_knob_that_cannot_run_makes_its_trial_infeasible(tmp_path, adapter, runtime, reason):
    doc = {**DOC, "grid": {"steps": 2, "duration_s": 1.0, **runtime}}
    with open_meter(use_gpu=False) as meter:
        sweep, env = _env(tmp_path, doc, adapter, meter)
        (trial,) = sweep.trials()
        outcome = run_trial(trial, env)
    assert outcome.status == "infeasible" and reason in outcome.error
    rows = pq.read_table(env.run.shard(trial.trial_id)).to_pylist()
    assert [r["status"] for r in rows] == ["infeasible"] * 2 and all(reason in r["error"] for r in rows)
