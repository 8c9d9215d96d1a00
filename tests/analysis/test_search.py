"""Adaptive search: the ask/tell interface, its budgets, and `search-bench` on tables whose front is known."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from t2a_ray.analysis.fronts import pareto_mask
from t2a_ray.analysis.inputs import energy_in_joules
from t2a_ray.analysis.search import (
    Budget,
    CheapestFirst,
    Measurement,
    ParetoSearch,
    RandomSearch,
    SearchSpace,
    pooled_ci,
)
from t2a_ray.analysis.search_replay import BENCH_COLUMNS, Oracle, replay
from t2a_ray.cli import main

STEPS = [5, 10, 20, 40, 80]
# energy proportional to steps (per model), quality rising and saturating with steps: the front is known
PER_STEP_J = {"a": 1.0, "b": 3.0, "c": 0.5}
CEILING = {"a": 0.6, "b": 0.9, "c": 0.3}


def synthetic(repeats: int = 1, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model in PER_STEP_J:
        for steps in STEPS:
            for r in range(repeats):
                rows.append(
                    {
                        "model": model,
                        "steps": steps,
                        "repeat": r,
                        "energy_j": PER_STEP_J[model] * steps * (1 + noise * rng.standard_normal()),
                        "clap": CEILING[model] * (1 - np.exp(-steps / 15)) + noise * rng.standard_normal(),
                    }
                )
    return pd.DataFrame(rows)


def space() -> SearchSpace:
    return SearchSpace(pd.DataFrame([{"model": m, "steps": s} for m in PER_STEP_J for s in STEPS]))


def measure(sp: SearchSpace, config: int) -> Measurement:
    row = sp.configs.iloc[config]
    e = PER_STEP_J[row["model"]] * row["steps"]
    q = CEILING[row["model"]] * (1 - np.exp(-row["steps"] / 15))
    return Measurement(units=1, cost_j=e, energy=(e,), quality={"clap": (q,)})


def run_out(strategy) -> list[int]:
    asked = []
    while (ask := strategy.ask()) is not None:
        asked.append(ask.config)
        strategy.tell(ask.config, measure(strategy.space, ask.config))
    return asked


def test_the_space_splits_numeric_axes_from_groups():
    sp = space()
    assert sp.axes == ["steps"] and sp.group_cols == ["model"]
    assert len(set(sp.groups)) == 3
    assert sp.coords.min() == 0 and sp.coords.max() == 1


def test_ask_waits_for_the_first_answer_then_never_repeats_a_configuration_in_flight():
    s = ParetoSearch(space(), [("clap", "max")], Budget("trials", 100))
    first = s.ask()
    assert s.space.configs.iloc[first.config]["steps"] == 5  # the cheap end first
    assert s.ask() is None and not s.finished  # nothing measured yet: the cost model needs a point
    s.tell(first.config, measure(s.space, first.config))
    second, third = s.ask(), s.ask()
    assert len({first.config, second.config, third.config}) == 3
    assert {s.space.configs.iloc[a.config]["steps"] for a in (second, third)} == {5}  # each group's cheapest
    assert set(s.pending) == {second.config, third.config}


def test_a_trials_budget_stops_after_that_many_asks():
    s = ParetoSearch(space(), [("clap", "max")], Budget("trials", 4))
    assert len(run_out(s)) == 4 and s.finished


@pytest.mark.parametrize("strategy", [ParetoSearch, RandomSearch, CheapestFirst])
def test_an_energy_budget_stops_where_the_next_configuration_would_exceed_it(strategy):
    budget_j = 200.0
    s = strategy(space(), [("clap", "max")], Budget("energy_j", budget_j), seed=3)
    run_out(s)
    assert 0 < s.spent_j <= budget_j  # energy ∝ steps is what the cost model assumes: predictions are exact
    left = [c for c in range(len(s.space)) if s.units[c] == 0]
    assert all(s.spent_j + measure(s.space, c).cost_j > budget_j for c in left)


def test_an_energy_fraction_budget_is_of_the_whole_grids_predicted_energy():
    s = ParetoSearch(space(), [("clap", "max")], Budget("energy_fraction", 0.3))
    run_out(s)
    total = sum(measure(s.space, c).cost_j for c in range(len(s.space)))
    assert s.grid_cost_j() == pytest.approx(total, rel=0.01)  # measured + predicted (ridge: not exact)
    assert 0.2 * total < s.spent_j <= 0.3 * total


def test_the_search_finds_the_known_front_for_a_fraction_of_the_energy():
    oracle = Oracle.from_table(synthetic(), "energy_j", [("clap", "max")], ["model", "steps"])
    s = ParetoSearch(oracle.space, oracle.qualities, Budget("energy_fraction", 0.4))
    curve = replay(oracle, s, seed=0)
    assert curve[-1][0] <= 0.4
    assert oracle.hypervolume_fraction(s) >= 0.95
    # the known front's cheap end and its best point within the budget (b at 40 steps) were measured;
    # b at 80 steps (a third of the grid's energy) does not fit the budget
    on_front = set(np.flatnonzero(pareto_mask(oracle.true_energy, oracle.true_quality["clap"])))
    configs = oracle.space.configs
    want = {
        i for i in on_front if (configs.iloc[i]["steps"], configs.iloc[i]["model"]) in {(5, "c"), (40, "b")}
    }
    assert len(want) == 2 and want <= set(s.measured())


def test_a_whole_grid_budget_recovers_the_whole_hypervolume():
    oracle = Oracle.from_table(synthetic(), "energy_j", [("clap", "max")], ["model", "steps"])
    for cls in (ParetoSearch, RandomSearch, CheapestFirst):
        s = cls(oracle.space, oracle.qualities, Budget("energy_fraction", 1.0))
        curve = replay(oracle, s, seed=1)
        assert curve[-1][0] == pytest.approx(1.0) and curve[-1][1] == pytest.approx((1.0,))


def test_the_oracle_draws_each_row_at_most_once():
    oracle = Oracle.from_table(
        synthetic(repeats=3, noise=0.05), "energy_j", [("clap", "max")], ["model", "steps"]
    )
    drawn = [[] for _ in range(len(oracle.space))]
    rng = np.random.default_rng(0)
    m = [oracle.measure(0, 2, drawn, rng), oracle.measure(0, 2, drawn, rng)]
    assert (m[0].units, m[1].units) == (2, 1) and sorted(drawn[0]) == [0, 1, 2]
    assert sum(x.cost_j for x in m) == pytest.approx(oracle.energy[0].sum())


def test_energy_units_are_converted_once_to_joules():
    df, col, _ = energy_in_joules(pd.DataFrame({"e_wh": [1.0, 2.0]}), "e_wh", None, {})
    assert (col, df[col].tolist()) == ("e_j", [3600.0, 7200.0])
    df, col, _ = energy_in_joules(pd.DataFrame({"e": [1.0]}), "e", "kwh", {})
    assert df[col].tolist() == [3.6e6]
    with pytest.raises(ValueError, match="must be one of j, wh, kwh"):
        energy_in_joules(pd.DataFrame({"e": [1.0]}), "e", "cal", {})


def test_search_bench_writes_one_row_per_strategy_and_seed_and_beats_random(tmp_path):
    table = tmp_path / "t.csv"
    synthetic(repeats=3, noise=0.02).to_csv(table, index=False)
    out = tmp_path / "bench"
    args = ["search-bench", "--results", str(table), "--energy", "energy_j", "--quality", "clap:max"]
    args += ["--config-cols", "model,steps", "--budget", "0.3", "--seeds", "5", "--out", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out / "search-bench.csv")
    assert list(df.columns) == list(BENCH_COLUMNS)
    assert len(df) == 3 * 5 and set(df.strategy) == {"pareto", "random", "cheapest"}
    assert set(df.metric) == {"clap"}
    assert (out / "search-bench.png").stat().st_size > 0
    med = df.groupby("strategy").median(numeric_only=True)
    assert med.loc["pareto", "energy_fraction"] <= 0.3
    assert med.loc["pareto", "hypervolume_fraction"] >= 0.95
    assert med.loc["pareto", "hypervolume_fraction"] > med.loc["random", "hypervolume_fraction"]
    # each run's energy to 95 % of the hypervolume is kept, so the printed median is the CSV's
    reached = df[np.isfinite(df["energy_to_hv95"])]
    assert (reached["energy_to_hv95"] <= reached["energy_fraction"]).all() and len(reached) >= 5
    pareto_line = next(line for line in result.output.splitlines() if line.startswith("pareto"))
    assert pareto_line.split()[-1] == f"{med.loc['pareto', 'energy_to_hv95']:.3f}"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--quality", "clap:up"], "--quality = 'clap:up': must be COL:max or COL:min"),
        (["--quality", "clip:max"], "clip"),
        (["--quality", "clap:max", "--strategies", "pareto,grid"], "--strategies = 'grid'"),
        (["--quality", "clap:max", "--budget", "1.5"], "--budget = 1.5"),
        (["--quality", "clap:max", "--first-units", "0"], "--first-units = 0: must be at least 1"),
    ],
)
def test_search_bench_refuses_bad_input_in_one_line_with_exit_2(tmp_path, extra, message):
    table = tmp_path / "t.csv"
    synthetic().to_csv(table, index=False)
    args = ["search-bench", "--results", str(table), "--energy", "energy_j", "--config-cols", "model,steps"]
    result = CliRunner().invoke(main, [*args, *extra, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_optuna_tpe_asks_grid_points_and_keeps_the_budget():
    pytest.importorskip("optuna")
    from t2a_ray.analysis.search import OptunaTPE

    s = OptunaTPE(space(), [("clap", "max")], Budget("trials", 6), seed=0)
    asked = run_out(s)
    assert len(asked) == 6 == len(set(asked))  # six distinct grid points, none twice
    oracle = Oracle.from_table(synthetic(), "energy_j", [("clap", "max")], ["model", "steps"])
    whole = OptunaTPE(oracle.space, oracle.qualities, Budget("energy_fraction", 1.0), seed=1)
    assert replay(oracle, whole, seed=1)[-1][1] == pytest.approx((1.0,))


def test_the_report_table_predicts_the_unmeasured_configurations_from_the_measured_ones():
    from t2a_ray.analysis.search import predicted_table

    grid = pd.DataFrame(
        [
            {"trial_id": f"{m}{s}", "model": m, "steps": s, "duration_s": 10.0}
            for m in ("a", "b")
            for s in (1, 2, 4, 8, 16, 32)
        ]
    )
    per_step = {"a": 1.0, "b": 3.0}
    measured = {f"{m}{s}": per_step[m] * s for m in ("a", "b") for s in (1, 4, 32)}
    table = predicted_table(grid, pd.Series(measured))
    assert list(table.columns) == ["model", "steps", "predicted_energy_per_waveform_j"]  # duration fixed
    assert sorted(zip(table["model"], table["steps"], strict=True)) == [
        (m, s) for m in "ab" for s in (2, 8, 16)
    ]
    truth = table["model"].map(per_step) * table["steps"]
    assert ((table["predicted_energy_per_waveform_j"] - truth).abs() / truth).max() < 0.25


PAPER_MODELS = [
    "audioldm",
    "audioldm2",
    "stable-audio-open",
    "tango",
    "tango2",
    "make-an-audio",
    "make-an-audio-2",
]


def paper_grid(tmp_path) -> pd.DataFrame:
    from t2a_ray.analysis.search import trial_grid
    from t2a_ray.config import parse_sweep

    sweep = parse_sweep(
        {
            "name": "s",
            "models": PAPER_MODELS,
            "weights": "tiny",
            "grid": {"steps": [5, 10, 20], "batch_size": [1, 2], "duration_s": 1},
            "prompts": {"text": ["a"]},
            "quality": {"clap": True},
            "search": {"strategy": "pareto"},
        },
        base_dir=tmp_path,
    )
    return trial_grid(sweep.trials())


@pytest.mark.parametrize("strategy", [ParetoSearch, RandomSearch, CheapestFirst])
def test_every_paper_model_searches_though_some_lack_a_parameter_the_others_have(tmp_path, strategy):
    grid = paper_grid(tmp_path)
    assert grid["model"].tolist()[::6] == PAPER_MODELS  # plain ids, not JSON
    assert grid["scheduler"].isna().any()  # stable-audio-open has no scheduler: a missing value
    sp = SearchSpace(grid.drop(columns="trial_id"))
    assert {"steps", "batch_size"} <= set(sp.axes) and "model" in sp.group_cols
    assert len(set(sp.groups)) == len(PAPER_MODELS)  # a missing scheduler is a value of its own
    s = strategy(sp, [("clap", "max")], Budget("trials", len(grid)), seed=0)
    asked = []
    while (ask := s.ask()) is not None:
        row = sp.configs.iloc[ask.config]
        e = row["steps"] * row["batch_size"] * (1 + PAPER_MODELS.index(row["model"]))
        q = 0.3 * (1 - np.exp(-row["steps"] / 8))
        s.tell(ask.config, Measurement(1, e, (e,), {"clap": (q,)}))
        asked.append(ask.config)
    assert sorted(asked) == list(range(len(grid)))  # the whole grid, each configuration once


def test_a_missing_value_is_its_own_group_and_a_numeric_axis_with_gaps_stays_an_axis():
    configs = pd.DataFrame(
        {
            "model": ["a", "a", "b", "b", "c", "c"],
            "scheduler": ["ddim", "ddim", None, None, float("nan"), float("nan")],
            "guidance": [3.0, 5.0, None, None, 3.0, 5.0],
            "steps": [10, 20, 10, 20, 10, 20],
        }
    )
    sp = SearchSpace(configs)
    assert sp.axes == ["guidance", "steps"] and sp.group_cols == ["model", "scheduler"]
    assert len(set(sp.groups)) == 3 and np.isfinite(sp.coords).all()
    assert sp.coords[2, 0] == 0.0  # b has no guidance: coordinate 0, and being missing is part of its group


def test_the_report_of_a_search_names_models_plainly(tmp_path):
    from t2a_ray.analysis.search import predicted_table

    grid = paper_grid(tmp_path)
    measured = grid[grid["steps"] == 5].set_index("trial_id")["batch_size"].astype(float) * 10
    table = predicted_table(grid, measured)
    assert set(table["model"]) == set(PAPER_MODELS) and not table["model"].str.startswith("{").any()


def test_search_bench_runs_a_search_per_group_and_says_what_its_input_means(tmp_path):
    two = pd.concat([synthetic().assign(dataset="x"), synthetic(seed=1).assign(dataset="y")])
    table = tmp_path / "t.csv"
    two.to_csv(table, index=False)
    args = ["search-bench", "--results", str(table), "--energy", "energy_j", "--quality", "clap:max"]
    args += ["--config-cols", "model,steps", "--budget", "0.3", "--seeds", "2", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # no --group: the two datasets would be averaged as repeats; and each configuration has... two rows
    assert "column dataset varies within configurations" in result.output
    result = CliRunner().invoke(main, [*args, "--group", "dataset"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "column dataset varies" not in result.output
    assert "note (dataset=x): 15 of 15 configurations have one row" in result.output
    df = pd.read_csv(tmp_path / "o" / "search-bench.csv")
    assert list(df.columns) == ["dataset", *BENCH_COLUMNS]
    assert df.groupby("dataset").size().to_dict() == {"x": 3 * 2, "y": 3 * 2}


def test_search_bench_says_which_runs_went_over_the_budget_by_how_much_and_why():
    from t2a_ray.analysis.search_replay import over_budget

    results = pd.DataFrame(
        [
            ("random", 0, "clap", 0.163, 0.9, 1.4, 0.05),
            ("random", 1, "clap", 0.12, 0.9, 0.9, 0.05),
            ("random", 2, "clap", 0.09, 0.9, 1.1, 0.05),
            ("pareto", 0, "clap", 0.1, 1.0, 1.0, 0.03),
        ],
        columns=BENCH_COLUMNS,
    )
    (line,) = over_budget(results, 0.1)
    assert line.startswith("random went over its budget of 0.1 in 2 of 3 runs, by up to 0.063")
    assert "in 1 the grid's energy was predicted above the true (up to 1.40×)" in line
    assert "in 1 a configuration cost more than the cost model predicted" in line


def test_an_uninstalled_strategy_is_one_line_and_exit_2(tmp_path):
    from t2a_ray.analysis.search import STRATEGIES

    table = tmp_path / "t.csv"
    synthetic().to_csv(table, index=False)
    args = ["search-bench", "--results", str(table), "--energy", "energy_j", "--quality", "clap:max"]
    args += ["--config-cols", "model,steps", "--out", str(tmp_path / "o")]
    for name in ("optuna-tpe", "hyperband"):
        result = CliRunner().invoke(main, [*args, "--strategies", name])
        if name == "optuna-tpe" and STRATEGIES[name].missing() is None:
            continue  # optuna installed here: nothing to refuse
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert f"--strategies = '{name}'" in result.output
    assert not (tmp_path / "o").exists()


def _search_bench():
    """benchmarks/search_bench.py, which is a script, not a package."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "search_bench.py"
    spec = importlib.util.spec_from_file_location("benchmarks_search_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_the_oracle_bound_is_the_cheapest_set_whose_front_reaches_the_level_on_every_metric():
    # one row each; q (max): a, b and c on the front, d dominated; q2 (min): a and d on the front.
    # References (10 % beyond the worst): energy 8.7, q 0.24, q2 5.4. Hypervolume of q: all 19.322,
    # {a, b} 19.252 (0.996), {b, c} 18.562 (0.961); of q2: all 17.88, {d} 16.28 (0.911).
    table = pd.DataFrame(
        {
            "model": ["a", "b", "c", "d"],
            "steps": [1, 1, 1, 1],
            "energy_j": [1.0, 2.0, 8.0, 5.0],
            "q": [1.0, 3.0, 3.1, 0.5],
            "q2": [5.0, 5.0, 5.0, 1.0],
        }
    )
    oracle = Oracle.from_table(table, "energy_j", [("q", "max"), ("q2", "min")], ["model", "steps"])
    bound = _search_bench().oracle_bound
    grid = 16.0  # the sum of the energies
    on_q = bound(oracle, ["q"], 0.99)
    assert on_q.configs == (0, 1) and on_q.energy_fraction == pytest.approx(3 / grid)
    # above {a, b}'s 0.996 only the whole front of q will do
    assert bound(oracle, ["q"], 0.999).energy_fraction == pytest.approx(11 / grid)
    assert bound(oracle, ["q2"], 0.99).energy_fraction == pytest.approx(6 / grid)
    # one search serving both metrics must measure the union: a, b and d
    both = bound(oracle, ["q", "q2"], 0.99)
    assert both.configs == (0, 1, 3) and both.energy_fraction == pytest.approx(8 / grid)


def test_the_oracle_bound_counts_the_rows_each_configuration_is_measured_with():
    # two rows each (energies 1 and 3 for a, so a mean of 2): two rows cost twice one row's mean
    table = pd.DataFrame(
        {
            "model": ["a", "a", "b", "b"],
            "steps": [1, 1, 1, 1],
            "energy_j": [1.0, 3.0, 4.0, 4.0],
            "q": [0.5, 0.5, 0.9, 0.9],
        }
    )
    oracle = Oracle.from_table(table, "energy_j", [("q", "max")], ["model", "steps"])
    bound = _search_bench().oracle_bound
    # references 4.2 and 0.46: all 0.168, b alone 0.088, a alone 0.088, so both are needed at 0.99
    assert bound(oracle, ["q"], 0.99, units=1).energy_fraction == pytest.approx((2 + 4) / 12)
    assert bound(oracle, ["q"], 0.99, units=2).energy_fraction == pytest.approx((4 + 8) / 12)


def test_a_configuration_measured_once_takes_the_others_noise_as_its_ci():
    samples = [[1.0, 2.0], [3.0, 5.0], [4.0], []]
    ci = np.array([0.3, 0.6, np.nan, np.nan])
    pooled = pooled_ci(samples, ci)
    sd = np.median([np.std([1.0, 2.0], ddof=1), np.std([3.0, 5.0], ddof=1)])
    assert pooled[2] == pytest.approx(1.96 * sd)
    assert pooled[:2].tolist() == [0.3, 0.6] and np.isnan(pooled[3])  # its own CI kept; unmeasured: none
    # nothing measured twice: no noise to lend, a single row stays without a CI
    assert np.isnan(pooled_ci([[4.0], [5.0]], np.array([np.nan, np.nan]))).all()


def test_pareto_measures_a_configuration_once_first_but_a_groups_first_twice_and_the_baselines_as_told():
    sp = SearchSpace(space().configs, max_units=[3] * len(space()))
    for cls in (ParetoSearch, RandomSearch, CheapestFirst):
        s = cls(sp, [("clap", "max")], Budget("trials", 8), first_units=1 if cls is ParetoSearch else 2)
        first: dict[int, int] = {}  # config -> units of its first measurement
        while (ask := s.ask()) is not None:
            first.setdefault(ask.config, ask.units)
            s.tell(ask.config, Measurement(**{**measure(sp, ask.config).__dict__, "units": ask.units}))
        if cls is ParetoSearch:  # a group's first (its fewest steps) twice, whatever first_units: the noise
            assert {c: u for c, u in first.items() if u == 2} == {
                c: 2 for c in first if sp.configs.iloc[c]["steps"] == min(STEPS)
            }
            assert len(set(sp.groups[list(first)])) == 3 and 1 in first.values()
        else:
            assert set(first.values()) == {2}, cls.name


def _told(points: dict[tuple[str, int], float]) -> ParetoSearch:
    """A pareto search over models a, b × steps 10…160 told one exact CLAP value (and energy = steps)
    for each of `points`."""
    sp = SearchSpace(pd.DataFrame([{"model": m, "steps": s} for m in "ab" for s in (10, 20, 40, 80, 160)]))
    s = ParetoSearch(sp, [("clap", "max")], Budget("trials", 100))
    for (model, steps), clap in points.items():
        c = int(np.flatnonzero((sp.configs["model"] == model) & (sp.configs["steps"] == steps))[0])
        s.tell(
            c, Measurement(units=1, cost_j=float(steps), energy=(float(steps),), quality={"clap": (clap,)})
        )
    return s


def _config(s: ParetoSearch, model: str, steps: int) -> int:
    configs = s.space.configs
    return int(np.flatnonzero((configs["model"] == model) & (configs["steps"] == steps))[0])


def test_one_noisy_row_does_not_sink_the_bound_at_the_end_of_an_axis():
    # b rose to 0.45 at 20 steps; its row at 40 came out at 0.44 (noise). The bound at 80 starts from
    # the better of the two (0.45), not from the nearer (which would give exactly 0.45 at 80).
    s = _told({("a", 10): 0.2, ("b", 10): 0.3, ("b", 20): 0.45, ("b", 40): 0.44})
    bound = s._optimistic_quality("clap", "max")(np.array([_config(s, "b", 80)]))[0]
    assert bound > 0.45 + 0.01 * 0.999  # the better value plus the secant (0.01 per step of the axis)


def test_a_group_improves_on_the_worst_it_measured_by_at_most_the_cap():
    # a's rise 10 → 20 (0.25) is the largest shown: the cap is 1.5 × 0.25. b walked 10 → 20 → 40 with a
    # steep secant; however far its bound extends that secant, it stays within its worst (0.1) + the cap.
    s = _told({("a", 10): 0.2, ("a", 20): 0.45, ("b", 10): 0.1, ("b", 20): 0.2, ("b", 40): 0.3})
    bound = s._optimistic_quality("clap", "max")(np.array([_config(s, "b", 160)]))[0]
    assert bound == pytest.approx(0.1 + 1.5 * 0.25)


def test_search_bench_first_units_is_the_rows_of_a_baselines_first_measurement(tmp_path):
    table = tmp_path / "t.csv"
    synthetic(repeats=2).to_csv(table, index=False)  # two equal rows per configuration
    args = ["search-bench", "--results", str(table), "--energy", "energy_j", "--config-cols", "model,steps"]
    args += ["--quality", "clap:max", "--strategies", "cheapest", "--seeds", "1", "--budget", "1"]
    spent = {}
    for units in (1, 2):
        out = tmp_path / f"o{units}"
        result = CliRunner().invoke(main, [*args, "--first-units", str(units), "--out", str(out)])
        assert result.exit_code == 0, result.output
        spent[units] = pd.read_csv(out / "search-bench.csv")["energy_fraction"].item()
    # cheapest-first never measures a configuration twice: one row of each is half the grid
    assert spent == {1: pytest.approx(0.5), 2: pytest.approx(1.0)}


def test_a_configuration_measured_once_is_not_ruled_out_by_the_noise_of_one_row():
    # a@10 measured twice tells the noise (sd 0.014); b@40 came out 0.01 below the cheaper b@20, one row
    # each: within that noise, so it stays on the reported front (with a CI of zero it would be off it)
    s = _told({("b", 20): 0.50, ("b", 40): 0.49})
    s.tell(
        _config(s, "a", 10),
        Measurement(units=2, cost_j=20.0, energy=(10.0, 10.0), quality={"clap": (0.30, 0.32)}),
    )
    assert _config(s, "b", 40) in s.front()["clap"]
    ruled_out = _told({("b", 20): 0.50, ("b", 40): 0.49})  # no configuration measured twice: no noise
    assert _config(ruled_out, "b", 40) not in ruled_out.front()["clap"]


def test_a_verdict_reads_hypervolume_fractions_equal_within_rounding_as_a_tie(tmp_path):
    path = tmp_path / "search-bench.csv"
    fractions = {"pareto": 1.0, "random": 0.99, "cheapest": 1.0000000000000002}
    rows = [
        {"strategy": s, "metric": "q", "energy_fraction": 0.1, "hypervolume_fraction": v}
        for s, v in fractions.items()
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    (line,) = _search_bench().verdict(path, 0.1, "")
    assert "tied with a baseline" in line
    pd.DataFrame([{**r, "hypervolume_fraction": 0.995} for r in rows[2:]] + rows[:2]).to_csv(
        path, index=False
    )
    assert "— met" in _search_bench().verdict(path, 0.1, "")[0]
