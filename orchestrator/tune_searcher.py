"""`search: {strategy: pareto}` in Ray Tune: a Tune `Searcher` that asks `ParetoSearch` for the next trial.

The search's state is the run folder. On start, the strategy is told every finished trial (its shard's
energy rows and its quality row), so a resumed sweep continues the search where it stopped: finished
trials are never asked again, and a trial in flight when the driver died had no shard, so it is simply
asked again if it is still the best choice. Nothing else is saved.

One unit of the search is one trial (every repeat and prompt of a configuration). The energy objective
is `energy_per_waveform_j`; the cost of a trial is the energy of its device over its windows (the GPU's,
else the CPU's, as in its rows). Qualities: `clap_mean` (max) and `fad` (min), whichever the sweep scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
from ray import tune
from ray.tune.search import Searcher

from t2a_ray.analysis.search import Budget, Measurement, ParetoSearch, SearchSpace, trial_grid
from t2a_ray.config import Sweep, Trial
from t2a_ray.orchestrator.trial import device_energy_j
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import QUALITY_METRICS


@dataclass
class TunePlan:
    """What the Tuner gets from the sweep's `search` key: its param space and extra TuneConfig fields."""

    param_space: dict[str, Any]
    tune_config: dict[str, Any] = field(default_factory=dict)


def tune_plan(run: RunFolder, sweep: Sweep, pending: list[Trial], n_chunks: int) -> TunePlan:
    """`grid`: every pending unit, in the plan's `n_chunks` chunks. `pareto`: the trials the search asks
    for, one unit each."""
    if sweep.search.strategy == "grid":
        return TunePlan({"chunk": tune.grid_search(list(range(n_chunks)))})
    searcher = ParetoSearcher(run, resume_search(run, sweep), [t.trial_id for t in sweep.trials()])
    return TunePlan({}, {"search_alg": searcher, "num_samples": len(pending)})


def search_asks_now(run: RunFolder, sweep: Sweep) -> bool:
    """Whether a launch or resume has a trial to run: a grid, always; a search, where it asks for one
    now, told what the folder holds (not once its budget is spent): otherwise no Ray, no worker."""
    return sweep.search.strategy == "grid" or resume_search(run, sweep).ask() is not None


def qualities(sweep: Sweep) -> list[tuple[str, str]]:
    """The quality columns a sweep scores, each with its direction."""
    scored = (("clap_mean", sweep.quality.clap), ("fad", sweep.quality.fad_reference))
    return [(metric, QUALITY_METRICS[metric]) for metric, on in scored if on]


def resume_search(run: RunFolder, sweep: Sweep) -> ParetoSearch:
    """The sweep's search, told every trial the run folder holds a shard of."""
    trials = sweep.trials()
    space = SearchSpace(trial_grid(trials).drop(columns="trial_id"), max_units=[1] * len(trials))
    budget = Budget(sweep.search.budget_kind, sweep.search.budget)
    strategy = ParetoSearch(space, qualities(sweep), budget, seed=sweep.search.seed)
    done = run.finished_trial_ids()
    for i, t in enumerate(trials):
        if t.trial_id in done:
            strategy.tell(i, measurement(run, t.trial_id))
    return strategy


def measurement(run: RunFolder, trial_id: str) -> Measurement:
    """A finished trial as the search sees it (a trial without rows or scores: no samples)."""
    rows = pq.read_table(run.shard(trial_id)).to_pylist() if run.shard(trial_id).exists() else []
    quality: dict[str, tuple[float, ...]] = {}
    if run.quality_shard(trial_id).exists():
        scores = pq.read_table(run.quality_shard(trial_id)).to_pylist()[0]
        quality = {m: (float(scores[m]),) for m in ("clap_mean", "fad") if scores.get(m) is not None}
    energies = [device_energy_j(r) for r in rows]
    known = [e for e in energies if e is not None]
    return Measurement(
        units=1,
        cost_j=float(sum(known)) if known else None,
        energy=tuple(
            float(r["energy_per_waveform_j"])
            for r in rows
            if r["status"] == "ok" and r["energy_per_waveform_j"] is not None
        ),
        quality=quality,
    )


class ParetoSearcher(Searcher):
    """Tune's view of a `ParetoSearch`: suggest = ask, a completed trial = tell (read from its shard)."""

    def __init__(self, run: RunFolder, strategy: ParetoSearch, trial_ids: list[str]):
        super().__init__()
        self.run, self.strategy, self.trial_ids = run, strategy, trial_ids  # trial_ids: the space's order
        self._live: dict[str, int] = {}  # Tune's trial id -> configuration index

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        ask = self.strategy.ask()
        if ask is None:
            return Searcher.FINISHED if self.strategy.finished else None  # None: wait for results
        self._live[trial_id] = ask.config
        return {"trial_id": self.trial_ids[ask.config]}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        config = self._live.pop(trial_id, None)
        if config is None:
            return
        self.strategy.tell(config, measurement(self.run, self.trial_ids[config]))

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the run folder's shards are the search's state (see the module docstring)."""

    def restore(self, checkpoint_path: str) -> None:
        """Tune's own restore is never used: a resume rebuilds the search from the run folder."""
