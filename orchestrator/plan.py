"""The plan: which worker runs which unit of work, and in what order, to finish the sweep soonest.

1. **Units.** A unit is what one worker runs in one go: one repeat of a configuration
   (`<trial_id>.r<k>`), under either placement. Where a configuration is measured as a whole (quality
   scored over all its windows, or a search asking for configurations) it is one unit, every repeat.
   Unit ids depend on the frozen sweep alone, never on the GPU count, so a resume on another number of
   GPUs finds exactly the units that are done; a shard named by the trial id (a whole trial, as `pack`
   wrote before it planned repeats) still counts for every repeat (`trial_done`).
2. **Cost.** A generation costs `a + b·x` seconds, with x = steps × batch × duration_s, per model key
   (model, weights, dtype) and runtime (compile, attention). Before a model has been measured its prior
   is a coarse constant per step, or exact where the card declares a host time per step (`step_time_s`,
   the calibration adapter). Finished units (and earlier shards of the same run) refit it: a
   least-squares line once two work sizes are known, a scale of the prior before that. A unit costs its
   windows (each at least `min_window_s` and `min_generations` long), the model's load where the model
   is not resident, and its setup where its shape is new on the worker: the warm-up generations, and
   for a runtime other than eager one setup generation per prompt plus a fixed overhead (compilation
   and capture: `PRIOR_COMPILE_S` for a compiled runtime until one has been measured, then the mean
   measured per cost key).
3. **Assignment.** Units are assigned in blocks: with `spread` a block is one unit, with `pack` a
   configuration's units, so its repeats stay on one worker, run one after the other. Longest block
   first to the worker where it would end soonest, a load and a setup counted where they would happen
   (so a second load of a model, or a second compilation, happens only where it shortens the sweep);
   with `spread`, first among the workers holding the fewest repeats of that configuration. With
   `pack` and few blocks, then moves and swaps of blocks off the busiest worker while they shorten the
   makespan. Each worker runs its units grouped by model (shuffled within a model under `spread`:
   randomised blocks).
4. **Online.** `Dispatcher` (the router actor) sends each unit to its planned worker unless another,
   counting what is queued on it now, would finish it sooner — an idle worker takes queued work from a
   busy one, one repeat at a time, so the sweep's tail is balanced to about one repeat — and refits the
   costs from every finished unit, so later decisions use measured costs. Units reach Tune in chunks of
   about `CHUNK_S_PER_WORKER` seconds of predicted work per worker.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from t2a_ray.adapters import get_card
from t2a_ray.adapters.runtime_axes import COMPILE, RUNTIME_PARAMS, is_eager, shape_of
from t2a_ray.config import Placement
from t2a_ray.runfolder import parse_unit_id, trial_done, unit_id  # noqa: F401 — a unit's id names its shard

# Seconds per step × waveform × audio second before a model is measured: only an order of magnitude,
# replaced by the fit after the model's first finished unit.
PRIOR_STEP_S = 0.002
PRIOR_LOAD_S = 10.0  # a model's load time before one has been measured
# A compiled runtime's setup beyond its generations (compilation and capture, per shape and worker)
# before one has been measured: an order of magnitude, replaced by the mean measured per cost key.
PRIOR_COMPILE_S = 60.0
UNSTEALABLE_MARGIN = 0.05  # a worker is late once it would end a unit this much (relative) after plan
# A Tune trial costs the driver a fraction of a second whatever it holds: short units go to Tune in
# chunks of about this much predicted work per worker.
CHUNK_S_PER_WORKER = 2.0
LOCAL_SEARCH_MAX_BLOCKS = 60  # beyond this, LPT alone: its bound tightens as blocks grow, moves cost O(n³)


class NoWorkersLeft(RuntimeError):
    """Every worker has died and none came back."""


class SweepStopped(RuntimeError):
    """The driver is stopping the sweep (Ctrl-C): no unit starts, none writes a `failed` row."""


@dataclass(frozen=True, kw_only=True)
class Unit:
    """One piece of work for one worker: a configuration's repeats `repeats` (all, or one). Built by
    keyword: its fields are many numbers of one kind, which a position would silently mix up."""

    unit_id: str
    trial_id: str
    model_key: str
    shape: str  # what a setup depends on (`runtime_axes.shape_of`): the parameters other than the step count
    x: float  # steps × batch × duration_s
    prior_generation_s: float
    windows: int
    min_generations: int
    repeats: tuple[int, ...]
    prior_load_s: float = PRIOR_LOAD_S
    cost_key: str = ""  # model key and runtime (compile, attention): what one cost fit covers
    setup_generations: int = 0  # where its shape is new: a runtime's setup generations (one per prompt)
    prior_setup_s: float = 0.0  # that setup's overhead beyond its generations, before one is measured

    def __post_init__(self) -> None:
        if not self.cost_key:
            object.__setattr__(self, "cost_key", self.model_key)


def make_units(trials: Sequence[Any], sweep: Any, model_key) -> list[Unit]:
    """The units of `trials` (config.Trial): one per repeat, or one per trial where it is measured as a
    whole; `model_key(trial)` names the model."""
    # One unit per configuration where it is measured as a whole: quality is scored over its windows
    # together (FAD needs all of them), and a search asks for (and is told) whole configurations.
    whole = bool(sweep.quality.clap or sweep.quality.fad_reference) or sweep.search.strategy != "grid"
    split = sweep.repeats > 1 and not whole
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
        min_gens = sweep.metering.min_generations(batch)
        key = model_key(t)
        compiled = p.get(COMPILE.name, COMPILE.default) != COMPILE.default
        blocks = [(r,) for r in range(sweep.repeats)] if split else [tuple(range(sweep.repeats))]
        for block in blocks:
            units.append(
                Unit(
                    unit_id=unit_id(t.trial_id, block[0] if split else None),
                    trial_id=t.trial_id,
                    model_key=key,
                    shape=shape,
                    x=x,
                    prior_generation_s=prior,
                    windows=len(block) * len(sweep.prompts),
                    min_generations=min_gens,
                    repeats=block,
                    prior_load_s=prior_load,
                    cost_key="|".join(
                        [key, *(f"{r.name}={p[r.name]}" for r in RUNTIME_PARAMS if r.name in p)]
                    ),
                    setup_generations=0 if is_eager(p) else len(sweep.prompts),
                    prior_setup_s=PRIOR_COMPILE_S if compiled else 0.0,
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
    _setup: dict[str, tuple[float, int]] = field(default_factory=dict)  # Σ overhead_s, n per cost key

    def observe(self, model_key: str, x: float, prior_s: float, generation_s: float) -> None:
        self._obs[model_key].add(x, prior_s, generation_s)

    def observe_load(self, model_key: str, load_s: float) -> None:
        self._load_s[model_key] = load_s

    def observe_unit(self, unit: Unit, measured: Mapping[str, Any]) -> bool:
        """What a finished unit measured ({generation_s, setup_s, load_s}, any of them absent), learnt;
        whether it held the seconds per generation."""
        if measured.get("load_s"):
            self.observe_load(unit.model_key, measured["load_s"])
        if not measured.get("generation_s"):
            return False
        self.observe(unit.cost_key, unit.x, unit.prior_generation_s, measured["generation_s"])
        if measured.get("setup_s"):
            self.observe_setup(unit, measured["setup_s"], measured["generation_s"])
        return True

    def observe_setup(self, unit: Unit, setup_s: float, generation_s: float) -> None:
        """A unit that set its shape up on its worker: `setup_s` seconds of warm-up and setup generations
        (of `generation_s` each, as its windows measured) and the overhead beyond them, learnt."""
        overhead_s = max(setup_s - (self.warmup + unit.setup_generations) * generation_s, 0.0)
        total, n = self._setup.get(unit.cost_key, (0.0, 0))
        self._setup[unit.cost_key] = (total + overhead_s, n + 1)

    def setup_overhead_s(self, unit: Unit) -> float:
        """Seconds a shape's setup costs beyond its generations: the mean measured, else the prior."""
        total, n = self._setup.get(unit.cost_key, (0.0, 0))
        return total / n if n else unit.prior_setup_s

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
        o = self._obs.get(model_key) or _Sums()
        if o.two_sizes:
            mx, my = o.sx / o.n, o.sy / o.n
            b = max((o.sxy - o.n * mx * my) / (o.sxx - o.n * mx * mx), 0.0)
            return ("line", max(my - b * mx, 0.0), b)
        return ("scale", 0.0, o.ratios / o.n_ratios if o.n_ratios else 1.0)

    def on_worker_s(self, unit: Unit, loaded: set[str], warmed: set[tuple[str, str]]) -> float:
        """A unit's seconds on a worker that holds the models `loaded` and has set up the (model key,
        shape) pairs `warmed`: its model's load where it is not held, its shape's setup where it is new."""
        load = 0.0 if unit.model_key in loaded else self.load_s(unit.model_key)
        return load + self.unit_s(unit, warm=(unit.model_key, unit.shape) in warmed)

    def unit_s(self, unit: Unit, warm: bool = True) -> float:
        """A unit's seconds on a worker where its model is resident; unless `warm` (its shape already
        set up there), with the shape's setup: warm-up and setup generations and the setup overhead."""
        g = self.generation_s(unit)
        per_window = max(unit.min_generations, math.ceil(self.min_window_s / g - 1e-9)) * g
        setup_s = 0.0 if warm else (self.warmup + unit.setup_generations) * g + self.setup_overhead_s(unit)
        return setup_s + unit.windows * per_window


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
    """Seconds a worker needs for `units`: one load per model not resident, one setup per shape."""
    return list(_start_times(units, cost, resident, end=True))[-1]


def _start_times(units: Iterable[Unit], cost: CostModel, resident: Iterable[str] = (), end: bool = False):
    """Each unit's start on one worker in running order (and, with `end`, when the last one ends)."""
    loaded, warmed, t = set(resident), set(), 0.0
    for u in units:
        yield t
        t += cost.on_worker_s(u, loaded, warmed)
        loaded.add(u.model_key)
        warmed.add((u.model_key, u.shape))
    if end:
        yield t


def make_plan(
    units: Sequence[Unit],
    n_workers: int,
    cost: CostModel,
    placement: Placement = Placement.PACK,
    resident: Sequence[Iterable[str]] | None = None,
    seed: int = 0,
) -> Plan:
    """Assign `units` to `n_workers` in blocks (`_blocks`: longest first, earliest finish, model
    affinity), then improve (`pack`), then order each worker's queue (`_running_order`)."""
    resident_sets = [set(r) for r in (resident or [()] * n_workers)]
    queues: list[list[Block]] = [[] for _ in range(n_workers)]
    ready = [0.0] * n_workers
    loaded = [set(r) for r in resident_sets]
    warmed: list[set[tuple[str, str]]] = [set() for _ in range(n_workers)]
    repeats_on: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    blocks = _blocks(units, placement)
    for b in sorted(blocks, key=lambda b: (-_block_s(b, cost), b[0].unit_id)):
        u = b[0]

        def finish(w: int, u: Unit = u, b: Block = b) -> tuple[float, bool, int]:
            extra = 0.0 if u.model_key in loaded[w] else cost.load_s(u.model_key)
            return (ready[w] + extra + _block_s(b, cost, (u.model_key, u.shape) in warmed[w]), extra > 0, w)

        workers = (
            _fewest(range(n_workers), repeats_on[u.trial_id])
            if placement == Placement.SPREAD
            else range(n_workers)
        )
        ends, _, w = min(finish(w) for w in workers)
        queues[w].append(b)
        ready[w] = ends
        loaded[w].add(u.model_key)
        warmed[w].add((u.model_key, u.shape))
        repeats_on[u.trial_id][w] += len(b)
    if placement == Placement.PACK and len(blocks) <= LOCAL_SEARCH_MAX_BLOCKS:
        _improve(queues, cost, resident_sets)
    rng = random.Random(seed)
    ordered = [_running_order(q, placement, cost, rng) for q in queues]
    return Plan(ordered, [queue_s(q, cost, r) for q, r in zip(ordered, resident_sets, strict=True)])


Block = tuple[Unit, ...]  # units the plan keeps together on one worker, run one after the other


def _fewest(workers: Iterable[int], held: Mapping[int, int]) -> list[int]:
    """`spread`: the workers holding the fewest repeats of a configuration (`held`: repeats per worker)."""
    workers = list(workers)
    fewest = min(held[w] for w in workers)
    return [w for w in workers if held[w] == fewest]


def _blocks(units: Sequence[Unit], placement: Placement) -> list[Block]:
    """`pack`: each configuration's units together (its repeats on one worker, in order, so that
    only the dispatcher moves a single repeat, where its worker is late); `spread`: one unit each."""
    if placement == Placement.SPREAD:
        return [(u,) for u in units]
    by_trial: dict[str, list[Unit]] = {}
    for u in units:
        by_trial.setdefault(u.trial_id, []).append(u)
    return [tuple(sorted(b, key=lambda u: u.repeats)) for b in by_trial.values()]


def _block_s(block: Block, cost: CostModel, warm: bool = True) -> float:
    """A block's seconds on a worker where its model is resident: one setup at most (one shape)."""
    return sum(cost.unit_s(u, warm or i > 0) for i, u in enumerate(block))


def _flat(blocks: Iterable[Block]) -> list[Unit]:
    return list(itertools.chain.from_iterable(blocks))


def _improve(queues: list[list[Block]], cost: CostModel, resident: list[set[str]]) -> None:
    """Move blocks off the busiest worker, or swap one with another worker's, while the makespan drops."""
    while True:
        times = [queue_s(_flat(q), cost, r) for q, r in zip(queues, resident, strict=True)]
        worst = max(range(len(queues)), key=times.__getitem__)
        best: tuple[float, int, int, int | None] | None = None
        for i, b in enumerate(queues[worst]):
            rest = queues[worst][:i] + queues[worst][i + 1 :]
            for w in range(len(queues)):
                if w == worst:
                    continue
                candidates = [None, *range(len(queues[w]))]
                for j in candidates:
                    mine = rest if j is None else [*rest, queues[w][j]]
                    theirs = [*queues[w], b] if j is None else [*queues[w][:j], *queues[w][j + 1 :], b]
                    new = max(
                        queue_s(_flat(mine), cost, resident[worst]), queue_s(_flat(theirs), cost, resident[w])
                    )
                    others = max((t for k, t in enumerate(times) if k not in (w, worst)), default=0.0)
                    span = max(new, others)
                    if span < times[worst] - 1e-9 and (best is None or span < best[0]):
                        best = (span, i, w, j)
        if best is None:
            return
        _, i, w, j = best
        b = queues[worst].pop(i)
        if j is not None:
            queues[worst].append(queues[w].pop(j))
        queues[w].append(b)


def _running_order(
    queue: list[Block], placement: Placement, cost: CostModel, rng: random.Random
) -> list[Unit]:
    """Grouped by model (one load each); within a model longest block first (pack: a configuration's
    repeats one after the other) or shuffled (spread: randomised blocks, so a configuration's position
    in time on a GPU is not systematic)."""
    by_model: dict[str, list[Block]] = {}
    for b in queue:
        by_model.setdefault(b[0].model_key, []).append(b)
    out: list[Unit] = []
    for blocks in by_model.values():
        if placement == Placement.SPREAD:
            rng.shuffle(blocks)
        else:
            blocks.sort(key=lambda b: -_block_s(b, cost))
        out += _flat(blocks)
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
        self, units: Sequence[Unit], plan: Plan, cost: CostModel, placement: Placement, clock=time.monotonic
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
        self.quarantined: list[str] = []  # units that crashed their worker: run last, alone
        self.requeued = 0  # units sent again, uncharged, after a crash of another unit

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
        if self.placement == Placement.SPREAD:
            alive = _fewest(alive, self.repeats_on[u.trial_id])

        now = self.clock()
        self.t0 = now if self.t0 is None else self.t0

        def free_at(i: int) -> float:
            w = self.workers[i]
            return max(now, w.since_s + w.backlog_s) if w.backlog_s > 0 else now

        def finish(i: int) -> float:
            return free_at(i) + self.cost.on_worker_s(u, self.workers[i].models, self.workers[i].warmed)

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
        """A unit left worker `index`; `measured` ({generation_s, load_s, setup_s}) refits the costs."""
        w = self.workers[index]
        w.backlog_s = max(0.0, w.backlog_s - self._estimate.pop(unit_id, 0.0))
        w.since_s = self.clock()  # its next unit, if one is queued, starts now
        if unit_id in self.units and measured:
            self.cost.observe_unit(self.units[unit_id], measured)

    def restarted(self, index: int) -> None:
        """The worker's process was replaced: it has no models and nothing warmed any more."""
        self.workers[index].models.clear()
        self.workers[index].warmed.clear()

    def dead(self, index: int) -> None:
        self.workers[index].alive = False
        self.restarted(index)

    def quarantine(self, unit_id: str) -> None:
        """`unit_id` crashed its worker: the driver runs its retries once every other unit has ended."""
        self.quarantined.append(unit_id)

    def quarantined_units(self) -> list[str]:
        return list(self.quarantined)

    def requeue(self, unit_id: str) -> None:
        """`unit_id` was only queued on a worker that died: it is sent again, at no cost to its retries."""
        self.requeued += 1

    def summary(self) -> dict[str, Any]:
        return {
            "stolen": self.stolen,
            "assigned": len(self.assigned),
            "requeued": self.requeued,
            "quarantined": len(self.quarantined),
        }


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
