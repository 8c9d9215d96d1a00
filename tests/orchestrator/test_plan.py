"""The plan: cost model, assignment against the brute-force optimum, spread and pack placement, online
stealing (a dispatcher on a fake clock), setup costs."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import replace

import pytest

from t2a_ray.config import load_sweep
from t2a_ray.orchestrator.models import ModelCache
from t2a_ray.orchestrator.plan import (
    PRIOR_COMPILE_S,
    CostModel,
    Dispatcher,
    NoWorkersLeft,
    SweepStopped,
    Unit,
    chunk_units,
    make_plan,
    make_units,
    parse_unit_id,
    queue_s,
    trial_done,
)


def unit(uid: str, model: str, seconds: float, trial: str | None = None, x: float | None = None) -> Unit:
    return Unit(
        unit_id=uid,
        trial_id=trial or uid,
        model_key=model,
        shape="shape",
        x=x or seconds,
        prior_generation_s=seconds,
        windows=1,
        min_generations=1,
        repeats=(0,),
    )


def cost_with_loads(**loads_s: float) -> CostModel:
    cost = CostModel()
    for key, s in loads_s.items():
        cost.observe_load(key, s)
    return cost


def brute_force_makespan(units: list[Unit], n_workers: int, cost: CostModel) -> float:
    """The shortest makespan of every assignment of `units` to workers. A queue's time depends only on
    which units it holds (kept in the order of `units`, as an assignment makes them), so each subset's
    is computed once; the workers are alike, so the first unit goes to worker 0 alone."""
    span_of = [
        queue_s([u for i, u in enumerate(units) if subset >> i & 1], cost)
        for subset in range(1 << len(units))
    ]
    best = float("inf")
    for owners in itertools.product(range(n_workers), repeat=len(units) - 1):
        queues = [1] + [0] * (n_workers - 1)  # each worker's units, a bit per unit
        for i, owner in enumerate(owners, start=1):
            queues[owner] |= 1 << i
        best = min(best, max(span_of[q] for q in queues))
    return best


# A known mix: three models of different cost and load time, trials from 2 s to 30 s.
MIX = [
    *(unit(f"a{i}", "A", s) for i, s in enumerate([30, 24, 18, 12])),
    *(unit(f"b{i}", "B", s) for i, s in enumerate([9, 9, 7, 5])),
    *(unit(f"c{i}", "C", s) for i, s in enumerate([4, 3, 2])),
]


@pytest.mark.parametrize("n_workers", [2, 3])
def test_the_plan_is_within_ten_percent_of_the_optimum(n_workers):
    cost = cost_with_loads(A=8.0, B=3.0, C=1.0)
    plan = make_plan(MIX, n_workers, cost)
    optimum = brute_force_makespan(MIX, n_workers, cost)
    assert sorted(u.unit_id for q in plan.queues for u in q) == sorted(u.unit_id for u in MIX)
    assert plan.makespan_s == pytest.approx(max(queue_s(q, cost) for q in plan.queues))
    assert plan.makespan_s <= 1.10 * optimum, (plan.makespan_s, optimum)


def test_a_second_load_happens_only_where_it_shortens_the_sweep():
    units = [unit(f"u{i}", "A", 10.0) for i in range(4)]
    # A is resident on worker 0: a second load on worker 1 pays where it costs less than the work it takes
    cheap = make_plan(units, 2, cost_with_loads(A=1.0), resident=[{"A"}, set()])
    assert [len(q) for q in cheap.queues] == [2, 2]  # 20 s | 1 + 20 s beats 40 s on one
    dear = make_plan(units, 2, cost_with_loads(A=100.0), resident=[{"A"}, set()])
    assert [len(q) for q in dear.queues] == [4, 0]  # 40 s beats 100 + 10 s


def test_each_worker_runs_its_units_grouped_by_model():
    plan = make_plan(MIX, 2, cost_with_loads(A=8.0, B=3.0, C=1.0))
    for q in plan.queues:
        models = [u.model_key for u in q]
        assert models == sorted(models, key=models.index)  # each model in one contiguous run


def test_spread_puts_every_configurations_repeats_on_different_workers():
    units = [unit(f"t{t}.r{r}", "A", 5.0 + t, trial=f"t{t}") for t in range(5) for r in range(2)]
    plan = make_plan(units, 2, cost_with_loads(A=1.0), placement="spread")
    where = plan.worker_of()
    for t in range(5):
        assert {where[f"t{t}.r0"], where[f"t{t}.r1"]} == {0, 1}


def test_the_cost_model_refits_a_line_from_two_work_sizes():
    cost = CostModel()
    small, large = unit("s", "A", 1.0, x=100), unit("l", "A", 1.0, x=400)
    assert cost.generation_s(small) == pytest.approx(1.0)  # the prior, before any measurement
    cost.observe("A", 100, 1.0, 2.5)  # one size measured: the prior is scaled
    assert cost.generation_s(large) == pytest.approx(2.5)
    cost.observe("A", 400, 1.0, 7.0)  # two sizes: a + b·x with a = 1, b = 0.015
    assert cost.fit("A") == ("line", pytest.approx(1.0), pytest.approx(0.015))
    assert cost.generation_s(unit("m", "A", 1.0, x=200)) == pytest.approx(4.0)


def test_a_unit_costs_its_windows_at_least_min_window_s_and_warmup_only_when_cold():
    cost = CostModel(min_window_s=1.0, warmup=2)
    u = replace(unit("u", "A", 0.3, x=1), windows=3, repeats=(0, 1, 2))
    assert cost.unit_s(u) == pytest.approx(3 * 4 * 0.3)  # 4 generations reach 1 s
    assert cost.unit_s(u, warm=False) == pytest.approx(3 * 4 * 0.3 + 2 * 0.3)


def test_units_follow_the_plan_until_a_worker_falls_behind_then_the_idle_one_takes_them():
    units = [unit(f"u{i}", "A", 10.0) for i in range(6)]
    cost = cost_with_loads(A=0.5)
    plan = make_plan(units, 2, cost)
    d = Dispatcher(units, plan, cost, "pack")
    planned = plan.worker_of()
    order = plan.submission_order(cost)
    for uid in order[:4]:  # as predicted: every unit where the plan put it
        assert d.assign(uid) == planned[uid]
    d.release(0, order[0])
    d.release(1, order[1])
    assert d.stolen == 0
    late = next(uid for uid in order[4:] if planned[uid] == 1)
    d.workers[1].backlog_s += 1_000.0  # worker 1 is stuck on a unit far longer than predicted
    assert d.assign(late) == 0
    assert d.stolen == 1


def test_the_dispatcher_refits_costs_from_finished_units_and_skips_dead_workers():
    units = [unit(f"u{i}", "A", 1.0) for i in range(4)]
    cost = CostModel()
    d = Dispatcher(units, make_plan(units, 2, cost), cost, "pack")
    w = d.assign("u0")
    d.release(w, "u0", {"generation_s": 3.0, "load_s": 4.0})
    assert cost.generation_s(units[1]) == pytest.approx(3.0)
    assert cost.load_s("A") == 4.0
    assert d.workers[w].backlog_s == 0.0
    d.dead(0)
    assert {d.assign(f"u{i}") for i in (1, 2, 3)} == {1}
    d.dead(1)
    with pytest.raises(NoWorkersLeft):
        d.assign("u1")


def test_units_are_one_per_repeat_under_either_placement_whatever_the_gpu_count(write_sweep):
    sweep = load_sweep(
        write_sweep(
            """
            models: [noop]
            grid: {steps: [10, 20], step_time_s: 0.01}
            prompts: {text: [a, b]}
            repeats: 3
            """
        )
    )
    key = lambda t: ModelCache.key(t.model, t.weights, t.dtype)  # noqa: E731
    trials = sweep.trials()
    units = make_units(trials, sweep, key)
    assert [u.unit_id for u in units[:3]] == [f"{trials[0].trial_id}.r{r}" for r in range(3)]
    assert all(u.windows == 2 and len(u.repeats) == 1 for u in units)
    assert units[0].prior_generation_s == pytest.approx(10 * 0.01)  # the declared host time per step
    assert units[0].prior_load_s == 0.0  # the card declares its load time: an option, 0 unless given
    for placement in ("spread", "pack"):
        for n_workers in (1, 2, 3):
            order = make_plan(units, n_workers, CostModel(), placement).submission_order(CostModel())
            assert sorted(order) == sorted(u.unit_id for u in units)


def test_a_pack_plan_keeps_each_configurations_repeats_on_one_worker_one_after_the_other():
    lengths = {"A": [30, 24, 18, 12], "B": [9, 7, 5], "C": [4, 3]}  # seconds per repeat
    units = [
        unit(f"{m}{i}.r{r}", m, s, trial=f"{m}{i}")
        for m, seconds in lengths.items()
        for i, s in enumerate(seconds)
        for r in range(4)
    ]
    cost = cost_with_loads(A=8.0, B=3.0, C=1.0)
    plan = make_plan(units, 2, cost, "pack")
    for q in plan.queues:
        trials = [u.trial_id for u in q]
        assert trials == sorted(trials, key=trials.index)  # each configuration's repeats in a row
    where = plan.worker_of()
    for trial in {u.trial_id for u in units}:
        assert len({where[f"{trial}.r{r}"] for r in range(4)}) == 1
    # configurations as blocks: the makespan is the optimum's over whole configurations, within 10 %
    whole = [unit(t, t[0], 4 * lengths[t[0]][int(t[1])]) for t in sorted({u.trial_id for u in units})]
    assert plan.makespan_s <= 1.10 * brute_force_makespan(whole, 2, cost)


# The router's rules, kept by the dispatcher that replaced it (a load costs what the cost model says).
def dispatcher(units: list[Unit], load_s: float, n_workers: int = 2) -> Dispatcher:
    cost = cost_with_loads(A=load_s, B=load_s)
    return Dispatcher(units, make_plan(units, n_workers, cost), cost, "pack")


def test_units_go_where_the_plan_put_them_while_the_workers_keep_to_it():
    units = [unit(f"{m}{i}", m, 10.0) for m in "AB" for i in range(6)]
    d = dispatcher(units, load_s=10.0)
    plan = make_plan(units, 2, cost_with_loads(A=10.0, B=10.0))
    for uid in plan.submission_order(cost_with_loads(A=10.0, B=10.0)):
        d.assign(uid)
    assert d.assigned == plan.worker_of() and d.stolen == 0
    models = [{u.model_key for u in q} for q in plan.queues]
    assert [w.models for w in d.workers] == models  # no load beyond the plan's


def test_an_idle_worker_loads_the_model_rather_than_let_a_queue_grow():
    units = [unit(f"A{i}", "A", 10.0) for i in range(3)]
    d = dispatcher(units, load_s=10.0)
    d.planned = dict.fromkeys(d.planned, 0)
    d.planned_end = dict.fromkeys(d.planned, 10.0)  # the plan had each unit end after 10 s
    d.workers[0].models.add("A")
    assert d.assign("A0") == 0
    assert d.assign("A1") == 0  # one unit queued behind a resident model costs one load: wait
    assert d.assign("A2") == 1  # two would cost more: the idle worker loads A too


def test_a_restarted_worker_has_no_models_and_nothing_warmed():
    d = dispatcher([unit("A0", "A", 1.0)], load_s=1.0, n_workers=1)
    d.assign("A0")
    d.restarted(0)
    assert d.workers[0].models == set() and d.workers[0].warmed == set()


def test_units_are_chunked_for_tune_by_predicted_work_per_worker():
    short = {f"s{i}": unit(f"s{i}", "A", 0.5) for i in range(20)}
    chunks = chunk_units(list(short), short, CostModel(), n_workers=2)  # 4 s of work per chunk
    assert [len(c) for c in chunks] == [8, 8, 4] and sum(chunks, []) == list(short)
    long = {f"l{i}": unit(f"l{i}", "A", 30.0) for i in range(3)}
    assert chunk_units(list(long), long, CostModel(), n_workers=2) == [["l0"], ["l1"], ["l2"]]


def test_a_trial_is_done_once_its_units_cover_every_repeat():
    assert trial_done("t", {"t"}, 3)
    assert trial_done("t", {"t.r0", "t.r1", "t.r2"}, 3)
    assert not trial_done("t", {"t.r0", "t.r2"}, 3)
    assert parse_unit_id("t.r2", 3) == ("t", (2,)) and parse_unit_id("t", 3) == ("t", (0, 1, 2))


def test_with_quality_scoring_a_configuration_stays_one_unit(write_sweep):
    sweep = load_sweep(
        write_sweep(
            """
            models: [noop]
            grid: {steps: [10, 20]}
            prompts: {text: [a]}
            repeats: 3
            quality: {clap: true}
            """
        )
    )
    units = make_units(sweep.trials(), sweep, lambda t: t.model.id)
    assert [u.repeats for u in units] == [(0, 1, 2), (0, 1, 2)]


def test_a_stopped_dispatcher_assigns_no_more_units():
    d = dispatcher([unit("A0", "A", 1.0), unit("A1", "A", 1.0)], load_s=1.0)
    assert d.assign("A0") in (0, 1) and not d.is_stopped()
    d.stop()
    assert d.is_stopped()
    with pytest.raises(SweepStopped):
        d.assign("A1")


def test_a_compiled_runtime_has_a_cost_fit_of_its_own(write_sweep):
    sweep = load_sweep(
        write_sweep(
            """
            models: [audioldm]
            weights: tiny
            grid: {steps: 10, compile: [none, default]}
            prompts: {text: [a]}
            """
        )
    )
    eager, compiled = make_units(sweep.trials(), sweep, lambda t: t.model.id)
    assert eager.model_key == compiled.model_key  # one resident model, loaded once
    assert eager.cost_key != compiled.cost_key and "compile=default" in compiled.cost_key
    assert (eager.setup_generations, eager.prior_setup_s) == (0, 0.0)
    assert (compiled.setup_generations, compiled.prior_setup_s) == (1, PRIOR_COMPILE_S)  # one prompt
    cost = CostModel()
    cost.observe(compiled.cost_key, compiled.x, compiled.prior_generation_s, 5 * compiled.prior_generation_s)
    assert cost.generation_s(eager) == pytest.approx(eager.prior_generation_s)  # untouched by the other


def test_a_measured_setup_counts_for_a_shape_not_yet_set_up_and_not_for_one_that_is():
    cost = CostModel(warmup=2)
    eager = replace(unit("e", "A", 0.5, x=1), windows=4)
    u = replace(unit("u", "A", 0.5, x=1), windows=4, cost_key="A|compile=default", setup_generations=2)
    windows_s = 4 * 0.5
    assert cost.unit_s(eager, warm=False) == pytest.approx(windows_s + 2 * 0.5)  # eager: its warm-ups
    assert cost.unit_s(u, warm=False) == pytest.approx(windows_s + 4 * 0.5)  # no prior overhead given
    # a unit that set up: 40 s, of which 2 warm-ups and 2 setup generations of 0.5 s each
    cost.observe_setup(u, setup_s=40.0, generation_s=0.5)
    assert cost.setup_overhead_s(u) == pytest.approx(38.0)
    assert cost.unit_s(u, warm=False) == pytest.approx(windows_s + 4 * 0.5 + 38.0)
    assert cost.unit_s(u, warm=True) == pytest.approx(windows_s)  # set up already: windows only
    assert cost.unit_s(eager, warm=False) == pytest.approx(windows_s + 2 * 0.5)  # another cost key
    cost.observe_setup(u, setup_s=22.0, generation_s=0.5)  # a second shape: the mean of the two
    assert cost.setup_overhead_s(u) == pytest.approx(29.0)


def _two_workers_one_late(u: Unit) -> Dispatcher:
    """A dispatcher whose plan put two 10 s units, then `u`, on worker 0 and nothing on worker 1
    (cold: no shape set up), at the moment the first unit ends 5 s late and `u` is sent."""
    a, b = (replace(unit(n, "A", 10.0), prior_load_s=0.0, cost_key=u.cost_key) for n in "ab")
    cost = cost_with_loads(A=0.0)
    plan = make_plan([a, b, u], 2, cost)
    plan.queues = [[a, b, u], []]  # as planned while worker 1 had other work
    now = [0.0]
    d = Dispatcher([a, b, u], plan, cost, "pack", clock=lambda: now[0])
    assert d.assign_many(["a", "b"]) == [0, 0]
    now[0] = 15.0
    d.release(0, "a")  # planned to end at 10 s
    return d


def test_the_dispatcher_steals_an_eager_unit_but_not_a_compiled_one_for_a_slight_delay():
    eager = replace(unit("u", "A", 10.0), prior_load_s=0.0)
    d = _two_workers_one_late(eager)
    assert d.assign("u") == 1 and d.stolen == 1  # the idle worker ends it at 25 s, not 35 s
    compiled = replace(
        eager, cost_key="A|compile=default", setup_generations=1, prior_setup_s=PRIOR_COMPILE_S
    )
    d = _two_workers_one_late(compiled)
    assert d.assign("u") == 0 and d.stolen == 0  # worker 1 would compile first: later than waiting


def simulate(units: list[Unit], cost: CostModel, placement: str, true_factor: dict[str, float]):
    """Drive a `Dispatcher` as the runner does, on a fake clock: units sent in the plan's order as
    Tune's trials start (at most two per worker in flight), each worker running what it was sent in
    order; a unit of model m takes `true_factor[m]` × its prior, and its release reports that.
    Returns the dispatcher, the plan and when each worker ended its last unit."""
    plan = make_plan(units, 2, cost, placement)
    now = [0.0]
    d = Dispatcher(units, plan, cost, placement, clock=lambda: now[0])
    by_id = {u.unit_id: u for u in units}
    order = deque(plan.submission_order(cost))
    queued: list[deque[str]] = [deque(), deque()]
    running: list[tuple[float, str] | None] = [None, None]
    ended = [0.0, 0.0]
    loaded: list[set[str]] = [set(), set()]
    while order or any(running) or any(queued):
        while order and sum(map(len, queued)) + sum(r is not None for r in running) < 4:
            uid = order.popleft()
            queued[d.assign(uid)].append(uid)
        for w in (0, 1):
            if running[w] is None and queued[w]:
                u = by_id[queued[w].popleft()]
                load = 0.0 if u.model_key in loaded[w] else cost.load_s(u.model_key)
                loaded[w].add(u.model_key)
                running[w] = (now[0] + load + true_factor[u.model_key] * u.prior_generation_s, u.unit_id)
        w = min((w for w in (0, 1) if running[w]), key=lambda w: running[w][0])
        now[0], uid = running[w]
        running[w], ended[w] = None, now[0]
        u = by_id[uid]
        d.release(w, uid, {"generation_s": true_factor[u.model_key] * u.prior_generation_s})
    return d, plan, ended


def test_late_units_move_one_repeat_at_a_time_and_the_workers_end_within_one_repeat():
    # three models, five configurations each (like steps 10 to 200), four repeats: model C's prior
    # is half its true cost, so the plan's split of the work is wrong
    seconds = {
        "A": [1.0, 2.0, 4.0, 8.0, 16.0],
        "B": [0.5, 1.0, 2.0, 4.0, 8.0],
        "C": [0.8, 1.6, 3.2, 6.4, 12.8],
    }
    units = [
        unit(f"{m}{i}.r{r}", m, s, trial=f"{m}{i}")
        for m, lengths in seconds.items()
        for i, s in enumerate(lengths)
        for r in range(4)
    ]
    factor = {"A": 1.0, "B": 1.0, "C": 2.0}
    longest_repeat = max(factor[u.model_key] * u.prior_generation_s for u in units)
    d, plan, ended = simulate(units, cost_with_loads(A=1.0, B=1.0, C=1.0), "pack", factor)
    # followed to the letter, the plan would leave one worker idle for more than a repeat
    planned = [sum(factor[u.model_key] * u.prior_generation_s for u in q) for q in plan.queues]
    assert abs(planned[0] - planned[1]) > 1.5 * longest_repeat
    assert d.stolen > 0
    assert abs(ended[0] - ended[1]) <= longest_repeat, ended
    # what moved were single repeats: some configuration ran on both workers
    split = {u.trial_id for u in units if len({d.assigned[f"{u.trial_id}.r{r}"] for r in range(4)}) > 1}
    assert split


def test_a_unit_is_built_by_keyword_only():
    with pytest.raises(TypeError):
        Unit("u", "u", "A", "shape", 0.3, 0.3, 1, 1, (0,))  # nine numbers and names in a row: refused
