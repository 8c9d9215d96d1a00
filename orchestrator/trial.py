"""One unit of a trial, top to bottom: a configuration's warm-up, metered windows, quality, its shard.

A unit is one repeat of a trial, or every repeat where the trial is measured as a whole (`plan.py`);
its shard is named by the unit id. A shape's setup — a runtime's compile-and-capture generations and
the warm-up — runs where the worker has not yet set up this model at this shape
(`TrialEnv.needs_setup`), not once per unit, and counts as set up only once it succeeded
(`TrialEnv.set_up`). Only generation runs inside the energy windows. Quality scoring, audio writing
and Parquet writing happen after the last window, so they never inflate a measurement.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from t2a_ray.adapters import Adapter
from t2a_ray.adapters.base import Generation, PhaseMarker, no_phases
from t2a_ray.adapters.runtime_axes import (
    compiled_graphs,
    eager_params,
    is_eager,
    output_equivalence,
    quantised_denoisers,
)
from t2a_ray.config import Prompt, Sweep, Trial
from t2a_ray.errors import InfeasibleError
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import (
    SETUP_AXES,
    SETUP_SCHEMA,
    quality_schema,
    results_schema,
    rows_to_table,
    write_table,
)
from t2a_ray.units import carbon_g

log = logging.getLogger(__name__)


class Meter(Protocol):
    """What the trial needs of `t2a_ray.metering.Meter`."""

    def measure(
        self, fn: Callable[[PhaseMarker], None], min_window_s: float = 0.0, *, min_generations: int = 1
    ) -> Any: ...

    def busy_fraction(self, result: Any) -> float | None: ...


class Scorer(Protocol):
    """Quality of one configuration's generations, computed outside the energy windows."""

    def score(
        self, trial_id: str, texts: list[str], waveforms: np.ndarray, sample_rate_hz: int
    ) -> dict[str, Any]: ...


@dataclass
class TrialEnv:
    """What a worker lends a trial: its resident models, meter, device and place."""

    run: RunFolder
    sweep: Sweep
    get_model: Callable[[Trial], Adapter]
    meter: Meter
    device: Any  # orchestrator.device.TorchDevice
    place: Mapping[str, Any]  # PLACE_COLUMNS: node, worker, host and GPU, the scheduler's job
    scorer: Scorer | None = None
    write_audio: Callable[[Trial, int, Prompt, Generation], None] | None = None
    # Whether this trial's model needs its setup and warm-up at this trial's shape here, and the call
    # that records that they ran (the worker remembers); the defaults set up every unit.
    needs_setup: Callable[[Trial], bool] = lambda trial: True
    set_up: Callable[[Trial], None] = lambda trial: None


PLACE_COLUMNS = (
    "node",
    "worker_id",
    "host_id",
    "gpu_index",
    "gpu_name",
    "gpu_uuid",
    "slurm_job_id",
    "slurm_array_task_id",
)


@dataclass
class TrialOutcome:
    trial_id: str
    status: str
    rows: int
    energy_j: float | None  # sum over windows of the energy of the device the model ran on
    window_s: float  # time inside metered windows
    wall_s: float
    error: str | None = None
    warmup_energy_j: list[float | None] = field(default_factory=list)
    unit_id: str | None = None  # the shard's name: the trial id, or one repeat of it (`plan.unit_id`)
    generation_s: float | None = None  # mean seconds per generation in the windows (the plan's cost)
    setup_s: float = 0.0  # seconds of this unit's setup and warm-up generations (0: its shape was set up)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_trial(
    trial: Trial, env: TrialEnv, repeats: Sequence[int] | None = None, unit_id: str | None = None
) -> TrialOutcome:
    """Run `repeats` (default: all) of `trial` and write the shard `unit_id` (default: the trial id)."""
    t_start = time.perf_counter()
    unit_id = unit_id or trial.trial_id
    sweep = env.sweep
    params = trial.params  # 1. the inputs: complete and checked when the sweep was expanded
    rows: list[dict[str, Any]] = []
    warmup_j: list[float | None] = []
    setup: list[dict[str, Any]] = []
    kept: list[tuple[Prompt, Generation]] = []
    status, error = "ok", None
    setup_s = 0.0
    repeats = range(sweep.repeats) if repeats is None else repeats
    windows = [(r, p) for r in repeats for p in sweep.prompts]
    min_generations = sweep.metering.min_generations(int(params.get("batch_size", 1)))
    try:
        adapter = env.get_model(trial)  # 2. the resident model (loaded on first use)
        revision = adapter.revision

        def generate(prompt: Prompt, seed: int, sink: list[Generation]) -> Callable[[PhaseMarker], None]:
            def once(phases: PhaseMarker) -> None:
                sink[:] = [
                    adapter.generate_checked([prompt.text], params, seed, phases, sweep.negative_prompt)
                ]

            return once

        # 3. setup of a runtime other than eager, where the shape is new on this worker: each prompt's
        #    shapes compiled (or found compiled) and captured outside the windows, its time and energy
        #    metered apart (the setup table: one row per worker, model, runtime, shape and prompt)
        new_shape = env.needs_setup(trial)
        t_setup = time.perf_counter()
        if new_shape and not is_eager(params):
            for prompt in sweep.prompts:
                graphs, quantised = compiled_graphs(), quantised_denoisers()
                res = env.meter.measure(generate(prompt, sweep.seed, []), 0.0)
                work = {"graphs_compiled": compiled_graphs() - graphs}
                work["denoisers_quantised"] = quantised_denoisers() - quantised
                setup.append(_setup_row(trial, prompt, work, res.as_columns(), env))

        # 4. warm-up (new shape on this worker): measured apart, excluded from the trial's figures
        for w in range(sweep.warmup if new_shape else 0):
            prompt = sweep.prompts[w % len(sweep.prompts)]
            res = env.meter.measure(generate(prompt, sweep.seed, []), 0.0)
            warmup_j.append(device_energy_j(res.as_columns()))
        if new_shape:
            setup_s = time.perf_counter() - t_setup  # the plan's setup cost (`plan.CostModel`)
            env.set_up(trial)

        # 5. the metered windows: one per (repeat, prompt)
        for repeat, prompt in windows:
            seed = window_seed(sweep.seed, repeat, prompt.id)
            out: list[Generation] = []
            env.device.reset_peak_memory()
            graphs = compiled_graphs()
            res = env.meter.measure(
                generate(prompt, seed, out), sweep.metering.min_window_s, min_generations=min_generations
            )
            if compiled_graphs() != graphs:  # compile time would be inside the window's energy
                raise RuntimeError(
                    f"torch.compile compiled {compiled_graphs() - graphs} graph(s) inside window "
                    f"(repeat {repeat}, prompt {prompt.id!r}): a shape the setup did not cover"
                )
            measured = {**res.as_columns(), "gpu_busy_fraction": env.meter.busy_fraction(res)}
            rows.append(_row(trial, params, revision, repeat, prompt, seed, measured, out[0], env))
            kept.append((prompt, out[0]))
    except Exception as e:  # a failed trial is data: the rest of its windows become rows with the error
        infeasible = isinstance(e, InfeasibleError) or env.device.is_out_of_memory(e)
        status = "infeasible" if infeasible else "failed"
        error = f"{type(e).__name__}: {e}"
        if not infeasible:
            log.error("trial %s failed:\n%s", trial.trial_id, traceback.format_exc())
        env.device.free_memory()
        done = len(rows)
        rows += [failure_row(trial, sweep.name, r, p, status, error, env.place) for r, p in windows[done:]]

    # 6. output equivalence, outside the windows: the first window's waveform against the eager run
    if kept and status == "ok" and not is_eager(params):
        prompt, seed = kept[0][0], rows[0]["seed"]
        try:
            ref = adapter.generate_checked(
                [prompt.text], eager_params(params), seed, no_phases, sweep.negative_prompt
            )
            rel_l2, snr_db = output_equivalence(kept[0][1].waveforms, ref.waveforms)
            rows[0].update(output_rel_l2_error=rel_l2, output_snr_db=snr_db)
        except Exception:  # noqa: BLE001 — the windows stand; their equivalence stays null, logged
            log.error("eager reference of trial %s failed:\n%s", trial.trial_id, traceback.format_exc())

    # 7. quality and audio, outside the windows (scoring is metered apart)
    quality = None
    if kept and env.scorer is not None:
        texts = [p.text for p, g in kept for _ in range(len(g.waveforms))]
        waves = np.concatenate([g.waveforms for _, g in kept])
        scored: list[dict[str, Any]] = []
        try:  # a scorer that fails costs the quality row its scores, never the trial its energy rows
            res = env.meter.measure(
                lambda _: scored.append(
                    env.scorer.score(trial.trial_id, texts, waves, kept[0][1].sample_rate_hz)
                )
            )
            cols = res.as_columns()
            quality = {
                "model": trial.model.id,
                **scored[-1],
                "scoring_energy_j": device_energy_j(cols),
                "scoring_energy_method": cols["energy_method"],
            }
        except Exception as e:  # noqa: BLE001 — recorded in the quality row
            log.error("scoring trial %s failed:\n%s", trial.trial_id, traceback.format_exc())
            quality = {
                "trial_id": trial.trial_id,
                "model": trial.model.id,
                "scoring_error": f"{type(e).__name__}: {e}",
            }
    if kept and env.write_audio is not None:
        for (prompt, gen), (repeat, _) in zip(kept, windows, strict=False):
            env.write_audio(trial, repeat, prompt, gen)

    # 8. the shard: setup and quality first, then the trial's rows (done once the last exists)
    outcome = TrialOutcome(
        trial_id=trial.trial_id,
        status=status,
        rows=len(rows),
        energy_j=_sum_or_none(device_energy_j(r) for r in rows if r["status"] == "ok"),
        window_s=float(sum(r.get("window_s") or 0.0 for r in rows)),
        wall_s=time.perf_counter() - t_start,
        error=error,
        warmup_energy_j=warmup_j,
        unit_id=unit_id,
        generation_s=_mean_or_none(r["latency_s"] for r in rows if r["status"] == "ok"),
        setup_s=setup_s,
    )
    if setup:
        env.run.setup_dir.mkdir(parents=True, exist_ok=True)
        write_table(rows_to_table(setup, SETUP_SCHEMA), env.run.setup_shard(unit_id))
    if quality is not None:
        write_quality_shard(env.run, trial.trial_id, quality)
    write_shard(env.run, env.sweep, unit_id, rows, outcome)
    return outcome


def write_shard(
    run: RunFolder, sweep: Sweep, trial_id: str, rows: list[dict[str, Any]], outcome: TrialOutcome
) -> None:
    table = rows_to_table(rows, results_schema(sweep.axes()))
    keys = ("status", "wall_s", "window_s", "warmup_energy_j", "generation_s", "setup_s", "error")
    meta = {k: outcome.as_dict()[k] for k in keys}
    meta["run_id"] = run.run_id  # only shards of this run are merged (`schema.ShardOwner`)
    write_table(table, run.shard(trial_id), metadata=meta)


def write_quality_shard(run: RunFolder, trial_id: str, quality: Mapping[str, Any]) -> None:
    write_table(rows_to_table([quality], quality_schema()), run.quality_shard(trial_id))


def failure_row(
    trial: Trial,
    run_name: str,
    repeat: int,
    prompt: Prompt,
    status: str,
    error: str,
    place: Mapping[str, Any],
) -> dict[str, Any]:
    """A window that never ran: identity and outcome, every measurement null."""
    return {
        **_identity(trial, run_name, repeat, prompt.id, None),
        "seed": None,
        **{k: place.get(k) for k in PLACE_COLUMNS},
        "status": status,
        "error": error,
    }


def window_seed(base: int, repeat: int, prompt_id: str) -> int:
    """Each (repeat, prompt) its own seed, reproducible from the sweep's seed alone."""
    digest = hashlib.sha256(f"{base}:{repeat}:{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _identity(
    trial: Trial, run_name: str, repeat: int, prompt_id: str, revision: str | None
) -> dict[str, Any]:
    return {
        "run": run_name,
        "trial_id": trial.trial_id,
        "repeat": repeat,
        "prompt_id": prompt_id,
        "model": trial.model.id,
        "model_revision": revision,
        "weights": trial.weights,
        "dtype": trial.dtype,
        **trial.params,
    }


def _row(
    trial: Trial,
    params: Mapping[str, Any],
    revision: str | None,
    repeat: int,
    prompt: Prompt,
    seed: int,
    measured: Mapping[str, Any],
    gen: Generation,
    env: TrialEnv,
) -> dict[str, Any]:
    generations = measured["generations_in_window"]
    waveforms = generations * gen.waveforms.shape[0]
    audio_s = gen.waveforms.shape[-1] / gen.sample_rate_hz
    energy = device_energy_j(measured)
    intensity = env.sweep.carbon_intensity_g_per_kwh
    return {
        **_identity(trial, env.sweep.name, repeat, prompt.id, revision),
        "seed": seed,
        "prompt_truncated": bool(gen.prompts_truncated),
        **{k: env.place.get(k) for k in PLACE_COLUMNS},
        **measured,
        "latency_s": measured["window_s"] / generations,
        "energy_per_waveform_j": None if energy is None else energy / waveforms,
        "energy_per_audio_s_j": None if energy is None else energy / (waveforms * audio_s),
        "peak_memory_bytes": env.device.peak_memory_bytes(),
        "carbon_g": None if energy is None or intensity is None else carbon_g(energy, intensity),
        "status": "ok",
        "error": None,
    }


def _setup_row(
    trial: Trial, prompt: Prompt, work: Mapping[str, int], measured: Mapping[str, Any], env: TrialEnv
) -> dict[str, Any]:
    """One setup generation: the first call of a runtime at this trial's shapes and prompt, with the
    `work` it did (graphs compiled, denoisers quantised)."""
    return {
        "trial_id": trial.trial_id,
        "model": trial.model.id,
        "weights": trial.weights,
        "dtype": trial.dtype,
        **{k: trial.params.get(k) for k in SETUP_AXES},
        "prompt_id": prompt.id,
        **{k: env.place.get(k) for k in ("node", "gpu_index", "gpu_name", "gpu_uuid")},
        **work,
        "setup_s": measured["window_s"],
        "setup_energy_j": device_energy_j(measured),
        "energy_method": measured["energy_method"],
    }


def device_energy_j(columns: Mapping[str, Any]) -> float | None:
    """The energy of the device the model ran on: the GPU's when there is one, else the CPU's."""
    gpu = columns.get("gpu_energy_j")
    return gpu if gpu is not None else columns.get("cpu_energy_j")


def _mean_or_none(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals) / len(vals)) if vals else None


def _sum_or_none(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals)) if vals else None
