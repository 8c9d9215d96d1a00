"""Break-even, equivalence and launch-boundness read from results and setup tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from t2a_ray.adapters.runtime_axes import EQUIVALENT_MIN_SNR_DB
from t2a_ray.analysis.runtime_tables import (
    break_even,
    difference_ci,
    equivalence,
    launch_boundness,
    runtime_table,
    setup_costs,
)


def _rows(trial, compile_, energies, busy=None, snr=None, batch=1):
    return [
        {
            "trial_id": trial,
            "model": "m",
            "weights": "random",
            "dtype": "float16",
            "steps": 100,
            "batch_size": batch,
            "duration_s": 10.0,
            "scheduler": None,  # an axis this model does not have: null on both sides of the match
            "compile": compile_,
            "attention": "default",
            "gpu_energy_j": e * batch,
            "cpu_energy_j": 1.0,
            "generations_in_window": 1,
            "latency_s": e / 100,
            "energy_per_waveform_j": e,
            "avg_power_w": 200.0,
            "idle_power_w": 100.0,
            "gpu_busy_fraction": busy,
            "output_snr_db": snr if i == 0 else None,
            "output_rel_l2_error": None if snr is None or i else 10 ** (-snr / 20),
            "status": "ok",
            "error": None,
        }
        for i, e in enumerate(energies)
    ]


EAGER = _rows("e", "none", [10.0, 11.0, 9.0], busy=0.6)
COMPILED = _rows("c", "reduce-overhead", [4.0, 5.0, 3.0], busy=0.97, snr=20.0)
SETUP = pd.DataFrame(
    [
        {"trial_id": "c", "model": "m", "weights": "random", "dtype": "float16", "compile": "reduce-overhead"}
        | {"attention": "default", "steps": 100, "batch_size": 1, "duration_s": 10.0, "prompt_id": "p0"}
        | {"graphs_compiled": 3, "setup_s": 30.0, "setup_energy_j": 64.0},
        {"trial_id": "c", "model": "m", "weights": "random", "dtype": "float16", "compile": "reduce-overhead"}
        | {"attention": "default", "steps": 100, "batch_size": 1, "duration_s": 10.0, "prompt_id": "p1"}
        | {"graphs_compiled": 0, "setup_s": 0.05, "setup_energy_j": 4.0},
    ]
)


def test_break_even_is_overhead_over_saving_with_the_savings_ci():
    results = pd.DataFrame(EAGER + COMPILED)
    costs = setup_costs(SETUP, results)
    assert len(costs) == 1  # the generation that found its shape compiled is no compile cost
    assert costs["overhead_j"].iloc[0] == pytest.approx(64.0 - 4.0)  # minus one steady generation
    (row,) = break_even(results, costs).to_dict("records")
    saving, half = difference_ci([10.0, 11.0, 9.0], [4.0, 5.0, 3.0])
    assert row["saving_per_waveform_j"] == pytest.approx(6.0) == pytest.approx(saving)
    assert row["break_even_waveforms"] == pytest.approx(60.0 / 6.0)
    assert row["break_even_waveforms_low"] == pytest.approx(60.0 / (6.0 + half))
    assert row["break_even_waveforms_high"] == pytest.approx(60.0 / (6.0 - half))


def test_a_knob_that_saves_nothing_never_breaks_even():
    worse = _rows("c", "reduce-overhead", [12.0, 13.0, 11.0])
    results = pd.DataFrame(EAGER + worse)
    (row,) = break_even(results, setup_costs(SETUP, results)).to_dict("records")
    assert row["saving_per_waveform_j"] < 0 and row["break_even_waveforms"] == math.inf


def test_equivalence_flags_a_knob_below_the_threshold_and_reads_out_launch_boundness():
    results = pd.DataFrame(EAGER + COMPILED)
    (eq,) = equivalence(results).to_dict("records")
    assert eq["compile"] == "reduce-overhead" and eq["output_snr_db"] == 20.0
    assert eq["changes_audio"] and 20.0 < EQUIVALENT_MIN_SNR_DB["float16"]  # flagged: below float16's
    bound = launch_boundness(results).set_index("compile")
    assert (
        bound.loc["none", "bound"] == "launch-bound"
        and bound.loc["reduce-overhead", "bound"] == "compute-bound"
    )
    assert bound.loc["none", "power_over_idle"] == pytest.approx(2.0)
    second = _rows("c", "reduce-overhead", [4.0], snr=40.0)  # a second compared window, closer to eager
    (eq,) = equivalence(pd.DataFrame(EAGER + COMPILED + second)).to_dict("records")
    assert eq["output_snr_db"] == 20.0 and eq["output_rel_l2_error"] == pytest.approx(10 ** (-20 / 20))
    no_busy = launch_boundness(pd.DataFrame(_rows("e", "none", [10.0, 11.0])))
    assert no_busy["bound"].isna().all()  # without a busy figure, no read-out (never a guess)


def test_the_runtime_table_reads_an_attention_backend_without_a_compile_cost():
    flash = [r | {"attention": "flash"} for r in _rows("f", "none", [8.0, 9.0, 7.0], busy=0.7, snr=40.0)]
    results = pd.DataFrame(EAGER + COMPILED + flash)
    table = runtime_table(results, None).set_index("attention")
    # one row per runtime other than eager; eager is only their twin
    assert table["compile"].to_dict() == {"default": "reduce-overhead", "flash": "none"}
    row = table.loc["flash"]
    diff, half = difference_ci([8.0, 9.0, 7.0], [10.0, 11.0, 9.0])
    assert row["eager_energy_per_waveform_j"] == pytest.approx(10.0) and row["status"] == "ok"
    assert row["gross_change_pct"] == pytest.approx(100 * diff / 10.0) and row["gross_change_pct"] < 0
    assert row["gross_change_pct_ci95"] == pytest.approx(100 * half / 10.0)
    assert row["eager_bound"] == row["bound"] == "launch-bound" and row["energy_estimate"] == ""
    assert row["output_snr_db"] == 40.0 and not row["changes_audio"]
    assert row[["overhead_j", "break_even_waveforms", "overhead_from"]].isna().all()  # no setup table


def test_a_runtime_whose_every_trial_was_infeasible_is_listed_with_its_error():
    failed = [
        r
        | {"status": "infeasible", "error": "InfeasibleError: no CUDA graphs", "energy_per_waveform_j": None}
        for r in _rows("c", "reduce-overhead", [4.0, 5.0])
    ]
    # typed as the results table is read (float SNR, string dtype), not as Python objects
    results = pd.DataFrame(EAGER + failed).astype({"output_snr_db": float, "dtype": "string[pyarrow]"})
    assert equivalence(results).empty  # nothing compared with eager: no table, no error
    (row,) = runtime_table(results, None).to_dict("records")
    assert row["status"] == "infeasible" and "no CUDA graphs" in row["error"]
    assert row["output_snr_db"] is None and row["eager_energy_per_waveform_j"] == pytest.approx(10.0)


def test_the_runtime_table_gives_the_change_gross_and_net_of_idle():
    # Idle 100 W: each window's net energy is its gross minus idle power × its duration.
    def with_idle(rows, window_s):
        return [r | {"gpu_energy_net_j": r["gpu_energy_j"] - 100.0 * window_s} for r in rows]

    eager = with_idle(_rows("e", "none", [10.0, 11.0, 9.0]), 0.08)  # 2, 3, 1 J above idle
    compiled = with_idle(_rows("c", "reduce-overhead", [4.0, 5.0, 3.0]), 0.025)  # 1.5, 2.5, 0.5 J
    (row,) = runtime_table(pd.DataFrame(eager + compiled), None).to_dict("records")
    gross, gross_half = difference_ci([4.0, 5.0, 3.0], [10.0, 11.0, 9.0])
    net, net_half = difference_ci([1.5, 2.5, 0.5], [2.0, 3.0, 1.0])
    assert row["gross_change_pct"] == pytest.approx(100 * gross / 10.0) == pytest.approx(-60.0)
    assert row["gross_change_pct_ci95"] == pytest.approx(100 * gross_half / 10.0)
    assert row["eager_energy_per_waveform_net_j"] == pytest.approx(2.0)
    assert row["energy_per_waveform_net_j"] == pytest.approx(1.5)
    assert row["net_change_pct"] == pytest.approx(100 * net / 2.0) == pytest.approx(-25.0)
    assert row["net_change_pct_ci95"] == pytest.approx(100 * net_half / 2.0)
    # on the CPU there is no net energy: null, never 0
    (cpu,) = runtime_table(pd.DataFrame(EAGER + COMPILED), None).to_dict("records")
    assert math.isnan(cpu["net_change_pct"]) and math.isnan(cpu["energy_per_waveform_net_j"])


def test_the_runtime_table_takes_precision_and_cache_with_quantising_as_setup():
    axes = {"precision": "none", "cache": "none"}
    eager = [r | axes for r in EAGER]
    int8 = [r | axes | {"trial_id": "q", "precision": "int8"} for r in _rows("q", "none", [9.0, 9.5, 8.5])]
    cached = [r | axes | {"trial_id": "k", "cache": "every-2"} for r in _rows("k", "none", [6.0, 6.5, 5.5])]
    results = pd.DataFrame(eager + int8 + cached)
    base = SETUP.iloc[0].to_dict() | axes | {"compile": "none", "graphs_compiled": 0}
    setup = pd.DataFrame(
        [
            base | {"trial_id": "q", "precision": "int8", "denoisers_quantised": 1, "setup_energy_j": 39.0},
            base | {"trial_id": "k", "cache": "every-2", "denoisers_quantised": 0, "setup_energy_j": 6.0},
        ]
    )
    costs = setup_costs(setup, results)
    assert list(costs["trial_id"]) == ["q"]  # quantising is setup work; a step cache sets nothing up
    assert costs["overhead_j"].item() == pytest.approx(39.0 - 9.0)
    table = runtime_table(results, setup).set_index(["precision", "cache"])
    assert sorted(table.index) == [("int8", "none"), ("none", "every-2")]  # eager only as their twin
    q, k = table.loc[("int8", "none")], table.loc[("none", "every-2")]
    assert q["eager_energy_per_waveform_j"] == k["eager_energy_per_waveform_j"] == pytest.approx(10.0)
    assert q["break_even_waveforms"] == pytest.approx(30.0 / 1.0) and q["overhead_from"] == "own"
    assert k["gross_change_pct"] == pytest.approx(-40.0) and pd.isna(k["overhead_j"])
    # a setup table from before quantisation was recorded (no such column) reads as compile work only
    assert setup_costs(setup.drop(columns="denoisers_quantised"), results).empty


def _guided(trial, compile_, energies, guidance, steps=100):
    return [r | {"guidance_scale": guidance, "steps": steps} for r in _rows(trial, compile_, energies)]


def _compiled_setup(trial, energy_j, steps=100, graphs=3):
    """One setup generation of `trial`: like the setup table, it records no guidance scale."""
    return (
        SETUP.iloc[0].to_dict()
        | {"trial_id": trial, "steps": steps, "graphs_compiled": graphs}
        | {"setup_energy_j": energy_j}
    )


def test_two_configurations_differing_only_in_guidance_keep_their_own_setup_overhead():
    results = pd.DataFrame(
        _guided("e1", "none", [10.0, 11.0, 9.0], 1.0)
        + _guided("e3", "none", [10.0, 11.0, 9.0], 3.0)
        + _guided("c1", "reduce-overhead", [4.0, 5.0, 3.0], 1.0)
        + _guided("c3", "reduce-overhead", [4.0, 5.0, 3.0], 3.0)
    )
    setup = pd.DataFrame([_compiled_setup("c1", 64.0), _compiled_setup("c3", 24.0)])
    out = break_even(results, setup_costs(setup, results)).set_index("guidance_scale")
    # each its own trial's setup, beyond one steady generation (4 J): never the two averaged
    assert out.loc[1.0, "overhead_j"] == pytest.approx(64.0 - 4.0)
    assert out.loc[3.0, "overhead_j"] == pytest.approx(24.0 - 4.0)
    assert list(out["overhead_from"]) == ["own", "own"]


def test_a_setup_that_compiled_nothing_takes_the_overhead_of_its_own_guidance_at_other_steps():
    rows = []
    for g in (1.0, 3.0):
        for s in (10, 20):
            rows += _guided(f"e{g}-{s}", "none", [10.0, 11.0], g, s)
            rows += _guided(f"c{g}-{s}", "reduce-overhead", [4.0, 5.0], g, s)
    results = pd.DataFrame(rows)
    # steps 10 compiled each guidance's graphs; steps 20 found them there (nothing compiled)
    setup = pd.DataFrame(
        [
            _compiled_setup("c1.0-10", 64.0, steps=10),
            _compiled_setup("c3.0-10", 24.0, steps=10),
            _compiled_setup("c1.0-20", 5.0, steps=20, graphs=0),
            _compiled_setup("c3.0-20", 5.0, steps=20, graphs=0),
        ]
    )
    out = break_even(results, setup_costs(setup, results)).set_index(["guidance_scale", "steps"])
    assert out.loc[(1.0, 20), "overhead_from"] == out.loc[(3.0, 20), "overhead_from"] == "steps=10"
    assert out.loc[(1.0, 20), "overhead_j"] == out.loc[(1.0, 10), "overhead_j"] == pytest.approx(59.5)
    assert out.loc[(3.0, 20), "overhead_j"] == out.loc[(3.0, 10), "overhead_j"] == pytest.approx(19.5)
