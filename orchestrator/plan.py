"""The plan: which worker runs which unit of work, and in what order, to finish the sweep soonest.

1. **Units.** A unit is what one worker runs in one go. With `placement: pack` it is a whole trial (a
   configuration, every repeat); with `spread` it is one repeat of a configuration (`<trial_id>.r<k>`),
   so a configuration's repeats can run on different GPUs and GPU and configuration are not confounded.
   Unit ids depend on the frozen sweep alone, never on the GPU count, so a resume on another number of
   GPUs finds exactly the units that are done.
2. **Cost.** A generation costs `a + b·x` seconds, with x = steps × batch × duration_s, per model key
   (model, weights, dtype) and runtime (compile, attention). Before a model has been measured its prior is a coarse constant per step,
   or exact where the card declares a host time per step (`step_time_s`, the calibration adapter).
   Finished units (and earlier shards of the same run) refit it: a least-squares line once two work sizes are
   known, a scale of the prior before that. A unit costs its warm-up (where its shape is new on the
   worker), its windows (each at least `min_window_s` and `min_generations` long) and the model's load
   where the model is not resident.
3. **Assignment.** Longest unit first to the worker where it would end soonest, a load counted where the
   model is not resident (so a second load of a model happens only where it shortens the sweep); with
   `spread`, first among the workers holding the fewest repeats of that configuration. With `pack` and
   few units, then moves and swaps off the busiest worker while they shorten the makespan. Each worker
   runs its units grouped by model (shuffled within a model under `spread`: randomised blocks).
4. **Online.** `Dispatcher` (the router actor) sends each unit to its planned worker unless another,
   counting what is queued on it now, would finish it sooner — an idle worker takes queued work from a
   busy one — and refits the costs from every finished unit, so later decisions use measured costs.
   Units reach Tune in chunks of about `CHUNK_S_PER_WORKER` seconds of predicted work per worker.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from t2a_ray.adapters import get_card
from t2a_ray.adapters.runtime import RUNTIME_PARAMS

# Seconds per step × waveform × audio second before a model is measured: only an order of magnitude,
# replaced by the fit after the model's first finished unit.
PRIOR_STEP_S = 0.002
PRIOR_LOAD_S = 10.0  # a model's load time before one has been measured
UNSTEALABLE_MARGIN = 0.05  # a worker is late once it would end a unit this much (relative) after plan
# A Tune trial costs the driver a fraction of a second whatever it holds: short units go to Tune in
# chunks of about this much predicted work per worker.
CHUNK_S_PER_WORKER = 2.0
LOCAL_SEARCH_MAX_UNITS = 60  # beyond this, LPT alone: its bound tightens as units grow, moves cost O(n³)


class NoWorkersLeft(RuntimeError):
    """Every worker has died and none came back."""


class SweepStopped(RuntimeError):
    """The driver is stopping the sweep (Ctrl-C): no unit starts, none writes a `failed` row."""


@dataclass(frozen=True)
class Unit:
    """One piece of work for one worker: a configuration's repeats `repeats` (all, or one)."""

    unit_id: str
    trial_id: str
    model_key: str
    shape: str  # what a warm-up depends on: the parameters other than the step count
    x: float  # steps × batch × duration_s
    prior_generation_s: float
    windows: int
    min_generations: int
    repeats: tuple[int, ...]
    prior_load_s: float = PRIOR_LOAD_S
    cost_key: str = ""  # model key and runtime (compile, attention): what one cost fit covers

    def __post_init__(self) -> None:
        if not self.cost_key:
            object.__setattr__(self, "cost_key", self.model_key)


def shape_of(params: Mapping[str, Any]) -> str:
    """What a warm-up depends on: every parameter but the step count (batch, duration, guidance, …)."""
    return repr(sorted((k, v) for k, v in params.items() if k != "steps"))


def unit_id(trial_id: str, repeat: int | None) -> str:
    return trial_id if repeat is None else f"{trial_id}.r{repeat}"


def parse_unit_id(uid: str, repeats: int) -> tuple[str, tuple[int, ...]]:
    """(trial id, its repeats) of a unit id: `<trial_id>` is every repeat, `<trial_id>.r<k>` repeat k."""
    trial, sep, k = uid.rpartition(".r")
    if sep and k.isdigit():
        return trial, (int(k),)
    return uid, tuple(range(repeats))


def resolve_placement(placement: str, n_workers: int) -> str:
    """`auto` is `spread` with two workers or more (GPU and configuration not confounded), else `pack`."""
    if placement == "auto":
        return "spread" if n_workers >= 2 else "pack"
    return placement


def make_units(trials: Sequence[Any], sweep: Any, placement: str, model_key) -> list[Unit]:
    """The units of `trials` (config.Trial) under `placement`; `model_key(trial)` names the model."""
    # One unit per configuration where it is measured as a whole: quality is scored over its windows
    # together (FAD needs all of them), and a search asks for (and is told) whole configurations.
    whole = bool(sweep.quality.clap or sweep.quality.fad_reference) or sweep.search.strategy != "grid"
    split = placement == "spread" and sweep.repeats > 1 and not whole
    units = []
    for t in trials:
        p = t.params
        batch = int(p.get("batch_size", 1))
        x = float(p.get("steps", 1)) * batch * float(p.get("duration_s", 1.0))
        prior = float(p["steps"]) * float(p["step_time_s"]) if "step_time_s" in p else PRIOR_STEP_S * x
        shape = shape_of(p)
        # a card that declares the load time as an option (the calibration adapter) loads in exactly that
        declared = "load_time_s" in get_card(t.model.id).options
        prior_load = float(t.model.options.get("load_time_s", 0.0)) if declared else PRIOR_LOAD_S
        min_gens = -(-sweep.metering.min_waveforms_per_window // batch)
        blocks = [(r,) for r in range(sweep.repeats)] if split else [tuple(range(sweep.repeats))]
        for block in blocks:
            units.append(
                Unit(
                    unit_id(t.trial_id, block[0] if split else None),
                    t.trial_id,
                    model_key(t),
                    shape,
                    x,
                    prior,
                    len(block) * len(sweep.prompts),
                    min_gens,
                    block,
                    prior_load,
                    "|".join(
                        [model_key(t), *(f"{r.name}={p[r.name]}" for r in RUNTIME_PARAMS if r.name in p)]
                    ),
                )
            )
    return units


# ---- 2. cost
@dataclass
class _Sums:
    """Running sums of one model's measurements: a fit costs O(1) however many units have finished."""

    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0
    ratios: float = 0.0  # Σ measured / prior
    n_ratios: int = 0
    first_x: float | None = None
    two_sizes: bool = False

    def add(self, x: float, prior_s: float, y: float) -> None:
        self.n += 1
        self.sx, self.sy, self.sxx, self.sxy = self.sx + x, self.sy + y, self.sxx + x * x, self.sxy + x * y
        if prior_s > 0:
            self.ratios, self.n_ratios = self.ratios + y / prior_s, self.n_ratios + 1
        self.first_x = x if self.first_x is None else self.first_x
        self.two_sizes = self.two_sizes or x != self.first_x


@dataclass
class CostModel:
    """Seconds per generation and per load, per model key; refitted from measurements."""

    min_window_s: float = 0.0
    warmup: int = 0
    _obs: dict[str, _Sums] = field(default_factory=lambda: defaultdict(_Sums))
    _load_s: dict[str, float] = field(default_factory=dict)
    _load_prior: dict[str, float] = field(default_factory=dict)
    _fit: dict[str, tuple[str, float, float]] = field(default_factory=dict)

    def observe(self, model_key: str, x: float, prior_s: float, generation_s: float) -> None:
        self._obs[model_key].add(x, prior_s, generation_s)
        self._fit.pop(model_key, None)

    def observe_load(self, model_key: str, load_s: float) -> None:
        self._load_s[model_key] = load_s

    def prior_load(self, units: Iterable[Unit]) -> None:
        """Load times before any is measured: what the units' cards say (`Unit.prior_load_s`)."""
        for u in units:
            self._load_prior[u.model_key] = u.prior_load_s

    def load_s(self, model_key: str) -> float:
        return self._load_s.get(model_key, self._load_prior.get(model_key, PRIOR_LOAD_S))

    def generation_s(self, unit: Unit) -> float:
        kind, c0, c1 = self.fit(unit.cost_key)
        if kind == "line":
            return max(c0 + c1 * unit.x, 1e-6)
        return max(c1 * unit.prior_generation_s, 1e-6)

    def fit(self, model_key: str) -> tuple[str, float, float]:
        """("line", a, b) once two work sizes are measured, else ("scale", 0, factor over the prior)."""
        if model_key in self._fit:
            return self._fit[model_key]
        o = self._obs.get(model_key) or _Sums()
        if o.two_sizes:
            mx, my = o.sx / o.n, o.sy / o.n
            b = max((o.sxy - o.n * mx * my) / (o.sxx - o.n * mx * mx), 0.0)
            result = ("line", max(my - b * mx, 0.0), b)
        else:
            result = ("scale", 0.0, o.ratios / o.n_ratios if o.n_ratios else 1.0)
        self._fit[model_key] = result
        return result

    def unit_s(self, unit: Unit, warm: bool = True) -> float:
        """A unit's seconds on a worker where its model is resident (`warm`: its shape already warmed)."""
        g = self.generation_s(unit)
        per_window = max(unit.min_generations, math.ceil(self.min_window_s / g - 1e-9)) * g
        return (0 if warm else self.warmup) * g + unit.windows * per_window


# ---- 3. assignment
@dataclass
class Plan:
    """Units per worker in running order, and the finish time predicted for each worker."""

    queues: list[list[Unit]]
    finish_s: list[float]

    @property
    def makespan_s(self) -> float:
        return max(self.finish_s, default=0.0)

    def worker_of(self) -> dict[str, int]:
        return {u.unit_id: w for w, q in enumerate(self.queues) for u in q}

    def submission_order(self, cost: CostModel) -> list[str]:
        """Unit ids by planned start time, the workers interleaved: the order Tune is given them."""
        starts = [
            (start, w, u.unit_id)
            for w, q in enumerate(self.queues)
            for u, start in zip(q, _start_times(q, cost), strict=False)
        ]
        return [uid for _, _, uid in sorted(starts)]

    def summary(self) -> dict[str, Any]:
        return {
            "makespan_s": self.makespan_s,
            "workers": [
                {
                    "worker": w,
                    "units": len(q),
                    "models": sorted({u.model_key for u in q}),
                    "predicted_s": self.finish_s[w],
                }
                for w, q in enumerate(self.queues)
            ],
        }


def queue_s(units: Iterable[Unit], cost: CostModel, resident: Iterable[str] = ()) -> float:
    """Seconds a worker needs for `units`: one load per model not resident, one warm-up per shape."""
    return list(_start_times(units, cost, resident, end=True))[-1]


def _start_times(units: Iterable[Unit], cost: CostModel, resident: Iterable[str] = (), end: bool = False):
    """Each unit's start on one worker in running order (and, with `end`, when the last one ends)."""
    loaded, warmed, t = set(resident), set(), 0.0
    for u in units:
        yield t
        if u.model_key not in loaded:
            t += cost.load_s(u.model_key)
            loaded.add(u.model_key)
        t += cost.unit_s(u, warm=(u.model_key, u.shape) in warmed)
        warmed.add((u.model_key, u.shape))
    if end:
        yield t


def make_plan(
    units: Sequence[Unit],
    n_workers: int,
    cost: CostModel,
    placement: str = "pack",
    resident: Sequence[Iterable[str]] | None = None,
    seed: int = 0,
) -> Plan:
    """Assign `units` to `n_workers` (longest first, earliest finish, model affinity), then improve."""
    resident_sets = [set(r) for r in (resident or [()] * n_workers)]
    queues: list[list[Unit]] = [[] for _ in range(n_workers)]
    ready = [0.0] * n_workers
    loaded = [set(r) for r in resident_sets]
    warmed: list[set[tuple[str, str]]] = [set() for _ in range(n_workers)]
    repeats_on: dict[tuple[str, int], int] = defaultdict(int)
    for u in sorted(units, key=lambda u: (-cost.unit_s(u), u.unit_id)):

        def finish(w: int, u: Unit = u) -> tuple[float, bool, int]:
            extra = 0.0 if u.model_key in loaded[w] else cost.load_s(u.model_key)
            return (ready[w] + extra + cost.unit_s(u, (u.model_key, u.shape) in warmed[w]), extra > 0, w)

        workers = range(n_workers)
        if placement == "spread":
            fewest = min(repeats_on[(u.trial_id, w)] for w in workers)
            workers = [w for w in workers if repeats_on[(u.trial_id, w)] == fewest]
        ends, _, w = min(finish(w) for w in workers)
        queues[w].append(u)
        ready[w] = ends
        loaded[w].add(u.model_key)
        warmed[w].add((u.model_key, u.shape))
        repeats_on[(u.trial_id, w)] += 1
    if placement == "pack" and len(units) <= LOCAL_SEARCH_MAX_UNITS:
        _improve(queues, cost, resident_sets)
    rng = random.Random(seed)
    queues = [_running_order(q, placement, cost, rng) for q in queues]
    return Plan(queues, [queue_s(q, cost, r) for q, r in zip(queues, resident_sets, strict=True)])


def _improve(queues: list[list[Unit]], cost: CostModel, resident: list[set[str]]) -> None:
    """Move units off the busiest worker, or swap one with another worker's, while the makespan drops."""
    while True:
        times = [queue_s(q, cost, r) for q, r in zip(queues, resident, strict=True)]
        worst = max(range(len(queues)), key=times.__getitem__)
        best: tuple[float, int, int, int | None] | None = None
        for i, u in enumerate(queues[worst]):
            rest = queues[worst][:i] + queues[worst][i + 1 :]
            for w in range(len(queues)):
                if w == worst:
                    continue
                candidates = [None, *range(len(queues[w]))]
                for j in candidates:
                    mine = rest if j is None else [*rest, queues[w][j]]
                    theirs = [*queues[w], u] if j is None else [*queues[w][:j], *queues[w][j + 1 :], u]
                    new = max(queue_s(mine, cost, resident[worst]), queue_s(theirs, cost, resident[w]))
                    others = max((t for k, t in enumerate(times) if k not in (w, worst)), default=0.0)
                    span = max(new, others)
                    if span < times[worst] - 1e-9 and (best is None or span < best[0]):
                        best = (span, i, w, j)
        if best is None:
            return
        _, i, w, j = best
        u = queues[worst].pop(i)
        if j is not None:
            queues[worst].append(queues[w].pop(j))
        queues[w].append(u)


def _running_order(queue: list[Unit], placement: str, cost: CostModel, rng: random.Random) -> list[Unit]:
    """Grouped by model (one load each); within a model longest first (pack) or shuffled (spread:
    randomised blocks, so a configuration's position in time on a GPU is not systematic)."""
    by_model: dict[str, list[Unit]] = {}
    for u in queue:
        by_model.setdefault(u.model_key, []).append(u)
    out: list[Unit] = []
    for units in by_model.values():
        if placement == "spread":
            rng.shuffle(units)
        else:
            units.sort(key=lambda u: -cost.unit_s(u))
        out += units
    return out


# ---- 4. online
@dataclass
class _WorkerState:
    backlog_s: float = 0.0  # predicted seconds of the units sent to it and not yet back
    since_s: float = 0.0  # when its current unit started (clock time)
    models: set[str] = field(default_factory=set)
    warmed: set[tuple[str, str]] = field(default_factory=set)
    alive: bool = True


class Dispatcher:
    """The router actor: follows the plan; where a unit's planned worker is late (it would end the
    unit more than `UNSTEALABLE_MARGIN` after the plan said) and another worker would end it sooner,
    that one takes it. Refits the cost model from each finished unit. Only ids and small numbers
    cross to it. `clock`: seconds, monotonic (injectable for tests)."""

    def __init__(
        self, units: Sequence[Unit], plan: Plan, cost: CostModel, placement: str, clock=time.monotonic
    ):
        self.units = {u.unit_id: u for u in units}
        self.planned = plan.worker_of()
        # when the plan has each unit end, in seconds from the first assignment
        self.planned_end = {
            u.unit_id: end
            for q in plan.queues
            for u, end in zip(q, list(_start_times(q, cost, end=True))[1:], strict=True)
        }
        self.clock = clock
        self.t0: float | None = None
        self.cost = cost
        self.placement = placement
        self.workers = [_WorkerState() for _ in plan.queues]
        self.assigned: dict[str, int] = {}
        self.stopped = False
        self._estimate: dict[str, float] = {}
        self.stolen = 0
        self.repeats_on: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    def stop(self) -> None:
        self.stopped = True

    def is_stopped(self) -> bool:
        return self.stopped

    def assign(self, unit_id: str) -> int:
        if self.stopped:
            raise SweepStopped("the sweep is stopping")
        alive = [i for i, w in enumerate(self.workers) if w.alive]
        if not alive:
            raise NoWorkersLeft("every worker process has died")
        u = self.units[unit_id]
        if self.placement == "spread":
            held = self.repeats_on[u.trial_id]
            fewest = min(held[i] for i in alive)
            alive = [i for i in alive if held[i] == fewest]

        now = self.clock()
        self.t0 = now if self.t0 is None else self.t0

        def free_at(i: int) -> float:
            w = self.workers[i]
            return max(now, w.since_s + w.backlog_s) if w.backlog_s > 0 else now

        def finish(i: int) -> float:
            w = self.workers[i]
            load = 0.0 if u.model_key in w.models else self.cost.load_s(u.model_key)
            return free_at(i) + load + self.cost.unit_s(u, (u.model_key, u.shape) in w.warmed)

        planned = self.planned.get(unit_id)
        best = min(alive, key=lambda i: (finish(i), i != planned, i))
        choice = planned
        if planned not in alive:
            choice = best
        elif best != planned and finish(best) < finish(planned):
            due = self.t0 + self.planned_end.get(unit_id, 0.0) * (1 + UNSTEALABLE_MARGIN)
            if finish(planned) > due:  # the planned worker is late: the other one takes the unit
                choice = best
                self.stolen += 1
        w = self.workers[choice]
        if w.backlog_s == 0:
            w.since_s = now
        self._estimate[unit_id] = finish(choice) - free_at(choice)
        w.backlog_s += self._estimate[unit_id]
        w.models.add(u.model_key)
        w.warmed.add((u.model_key, u.shape))
        self.assigned[unit_id] = choice
        self.repeats_on[u.trial_id][choice] += 1
        return choice

    def assign_many(self, unit_ids: Sequence[str]) -> list[int]:
        return [self.assign(uid) for uid in unit_ids]

    def release(self, index: int, unit_id: str | None = None, measured: Mapping[str, Any] | None = None):
        """A unit left worker `index`; `measured` ({generation_s, load_s}) refits the costs."""
        w = self.workers[index]
        w.backlog_s = max(0.0, w.backlog_s - self._estimate.pop(unit_id, 0.0))
        w.since_s = self.clock()  # its next unit, if one is queued, starts now
        if unit_id in self.units and measured:
            u = self.units[unit_id]
            if measured.get("generation_s"):
                self.cost.observe(u.cost_key, u.x, u.prior_generation_s, measured["generation_s"])
            if measured.get("load_s"):
                self.cost.observe_load(u.model_key, measured["load_s"])

    def restarted(self, index: int) -> None:
        """The worker's process was replaced: it has no models and nothing warmed any more."""
        self.workers[index].models.clear()
        self.workers[index].warmed.clear()

    def dead(self, index: int) -> None:
        self.workers[index].alive = False
        self.restarted(index)

    def summary(self) -> dict[str, Any]:
        return {"stolen": self.stolen, "assigned": len(self.assigned)}


def trial_done(trial_id: str, done_units: set[str], repeats: int) -> bool:
    """Whether the finished units `done_units` cover every repeat of the trial."""
    return trial_id in done_units or all(unit_id(trial_id, r) in done_units for r in range(repeats))


def chunk_units(order: Sequence[str], units: Mapping[str, Unit], cost: CostModel, n_workers: int):
    """Consecutive units of `order` grouped into Tune trials of about `CHUNK_S_PER_WORKER` seconds of
    predicted work per worker (one unit where units are longer)."""
    target_s = CHUNK_S_PER_WORKER * n_workers
    chunks: list[list[str]] = []
    current, total = [], 0.0
    for uid in order:
        current.append(uid)
        total += cost.unit_s(units[uid])
        if total >= target_s:
            chunks.append(current)
            current, total = [], 0.0
    if current:
        chunks.append(current)
    return chunks
