"""Trials under a runtime other than eager, without Ray: the real trial code, the real meter (CPU), a
tiny real model compiled by inductor, a real run folder."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest

from t2a_ray.adapters import adapter_class
from t2a_ray.analysis.energy_basis import estimate_label
from t2a_ray.analysis.report import analyze_run, read_run_results
from t2a_ray.analysis.runtime_tables import break_even, read_setup, setup_costs
from t2a_ray.analysis.stats import mean_ci
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
    env.needs_setup, env.set_up = shapes.needed, shapes.record
    return sweep, env


def test_compile_cost_is_metered_apart_and_the_output_compared_with_eager(tmp_path, adapter):
    with open_meter(None) as meter:
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
    even = break_even(table, costs)
    assert sorted(even["steps"]) == [2, 3] and even["overhead_j"].notna().all()
    assert even["overhead_j"].nunique() == 1
    # steps=3 compiled nothing: it reused the graphs of steps=2 (same shapes), whose overhead it shows
    assert even.set_index("steps")["overhead_from"].to_dict() == {2: "own", 3: "steps=2"}
    # ...and the run's report shows them (no GPU here: no busy fraction, so no launch-bound read-out)
    report = analyze_run(env.run.root)
    assert {"runtime_setup", "runtime"} <= set(report.fits)
    assert {"break_even_waveforms", "output_snr_db"} <= set(report.fits["runtime"].columns)
    assert "launch_boundness" not in report.fits
    assert "Runtimes against eager" in report.text()
    assert "Compile, capture and quantisation cost" in report.report_path.read_text()


@pytest.mark.parametrize(
    ("runtime", "reason"),
    [
        ({"compile": "reduce-overhead"}, "no CUDA graphs on the cpu"),
        ({"attention": "efficient"}, "attention=efficient has no kernel"),
    ],
)
def test_a_knob_that_cannot_run_makes_its_trial_infeasible(tmp_path, adapter, runtime, reason):
    doc = {**DOC, "grid": {"steps": 2, "duration_s": 1.0, **runtime}}
    with open_meter(None) as meter:
        sweep, env = _env(tmp_path, doc, adapter, meter)
        (trial,) = sweep.trials()
        outcome = run_trial(trial, env)
    assert outcome.status == "infeasible" and reason in outcome.error
    rows = pq.read_table(env.run.shard(trial.trial_id)).to_pylist()
    assert [r["status"] for r in rows] == ["infeasible"] * 2 and all(reason in r["error"] for r in rows)


def test_the_runtime_table_sets_each_runtime_beside_its_eager_twin(tmp_path, adapter):
    # 1.25 s: a shape of its own, so this run compiles; reduce-overhead cannot run on the CPU
    grid = {"steps": [2, 3], "duration_s": 1.25, "compile": ["none", "default", "reduce-overhead"]}
    with open_meter(None) as meter:
        sweep, env = _env(tmp_path, {**DOC, "grid": grid}, adapter, meter)
        for trial in sweep.trials():
            run_trial(trial, env)
    report = analyze_run(env.run.root, out_dir=tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "runtime.csv")
    results = read_run_results(env.run.root)
    # one row per configuration of a runtime other than eager; eager ones only as twins
    assert sorted(zip(table["compile"], table["steps"], strict=True)) == [
        ("default", 2),
        ("default", 3),
        ("reduce-overhead", 2),
        ("reduce-overhead", 3),
    ]
    costs = setup_costs(read_setup(env.run.root), results)
    for row in table[table["compile"] == "default"].to_dict("records"):
        windows = results[results["steps"] == row["steps"]].groupby("compile")["energy_per_waveform_j"]
        eager_mean, eager_half, _ = mean_ci(windows.get_group("none"))
        mean, half, _ = mean_ci(windows.get_group("default"))
        assert row["status"] == "ok"
        assert row["eager_energy_per_waveform_j"] == pytest.approx(eager_mean)
        assert row["eager_energy_per_waveform_j_ci95"] == pytest.approx(eager_half)
        assert row["energy_per_waveform_j"] == pytest.approx(mean)
        assert row["energy_per_waveform_j_ci95"] == pytest.approx(half)
        assert row["gross_change_pct"] == pytest.approx(100 * (mean - eager_mean) / eager_mean)
        assert row["gross_change_pct_ci95"] > 0
        assert row["time_per_waveform_s"] > 0 and row["eager_time_per_waveform_s"] > 0
        assert row["output_snr_db"] > 60 and not row["changes_audio"]  # float32 on the CPU
        measured = results[results["status"] == "ok"]
        assert row["energy_estimate"] == estimate_label(measured, "energy_per_waveform_j") == "CPU estimate"
        # the compile overhead of the one compiled shape; steps=3 reused the graphs of steps=2
        assert row["overhead_j"] == pytest.approx(costs["overhead_j"].item())
        assert row["overhead_from"] == ("own" if row["steps"] == 2 else "steps=2")
    # the knob that cannot run is listed, with its error and no figures of its own
    infeasible = table[table["compile"] == "reduce-overhead"]
    assert (infeasible["status"] == "infeasible").all()
    assert infeasible["error"].str.contains("no CUDA graphs on the cpu").all()
    assert infeasible["energy_per_waveform_j"].isna().all() and infeasible["gross_change_pct"].isna().all()
    assert infeasible["eager_energy_per_waveform_j"].notna().all()
    assert "Runtimes against eager" in report.text() and "runtime.csv" in report.report_path.read_text()
