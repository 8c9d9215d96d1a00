"""The worker: one per GPU (or one on the CPU), holding models resident and owning that GPU's meter.

`Worker` is a plain class; `pool.py` makes it a Ray actor with `num_gpus=1`. It reads the frozen sweep
and its trials (`trials.jsonl`) from the run folder itself, so a trial is sent to it as an id, and it writes the trial's shard itself
(every node must be able to write the run folder).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from t2a_ray.adapters import Adapter, adapter_class
from t2a_ray.adapters.runtime_axes import shape_of
from t2a_ray.config import Prompt, Trial
from t2a_ray.errors import ConfigError
from t2a_ray.frozen import load_run_sweep
from t2a_ray.metering import Meter, MeterSettings, doctor
from t2a_ray.metering import open_meter as default_open_meter
from t2a_ray.orchestrator.crashes import mark_started
from t2a_ray.orchestrator.device import TorchDevice
from t2a_ray.orchestrator.models import ModelCache
from t2a_ray.orchestrator.plan import parse_unit_id
from t2a_ray.orchestrator.provenance import host_provenance, reference_workload, scheduler_ids
from t2a_ray.orchestrator.trial import TrialEnv, run_trial
from t2a_ray.runfolder import RunFolder

log = logging.getLogger(__name__)


class SetUpShapes:
    """The shapes a worker has set up (a runtime's compilation and capture) and warmed: once per
    (model, shape) and load of the model — a new batch, duration or runtime, or the model loaded again
    — not once per unit. `loads`: the worker's count of loads per model key (`ModelCache.loads`)."""

    def __init__(self, loads: Mapping[str, int]):
        self.loads = loads
        self.done: dict[tuple[str, str], int] = {}  # (model key, shape) → the load it was set up on
        self.count = 0

    @staticmethod
    def _key(trial: Trial) -> tuple[str, str]:
        return ModelCache.key_of(trial), shape_of(trial.params)

    def needed(self, trial: Trial) -> bool:
        key = self._key(trial)
        return self.done.get(key) != self.loads[key[0]]

    def record(self, trial: Trial) -> None:
        """The trial's shape was set up and warmed (a setup that failed is not recorded: it runs again)."""
        key = self._key(trial)
        self.done[key] = self.loads[key[0]]
        self.count += 1


class Worker:
    """`open_meter(device, settings)` builds the meter (`t2a_ray.metering.open_meter`, or a test's over a
    fake GPU); `find_adapter` gives a model id's adapter class (`t2a_ray.adapters.adapter_class`, or a
    test's); `lock_scope`: the driver's share of the sweep, whose worker lock it holds
    (`RunFolder.lock_file`); `see_gpus=False`: on the CPU, whatever GPUs the process could see
    (`TorchDevice.detect`)."""

    def __init__(
        self,
        run_root: str,
        worker_index: int,
        open_meter: Callable[[TorchDevice, MeterSettings], Meter] | None = None,
        find_adapter: Callable[[str], type[Adapter]] = adapter_class,
        lock_scope: str = "",
        see_gpus: bool = True,
    ):
        # 1. The run: the frozen sweep and its trials (trials.jsonl, expanded once at launch), found by id
        self.index = worker_index
        self._find_adapter = find_adapter
        self.run = RunFolder(run_root)
        self.run.check_writable()  # on a cluster, fail fast (with the fix) where the folder is not shared
        self._lock_fds = self.run.hold_worker_lock(lock_scope)  # its driver's (a share of an array job)
        self.sweep = load_run_sweep(self.run)
        # 2. The device and its meter (the meter samples in a background thread from here on)
        self.device = TorchDevice.detect(see_gpus)
        metering = self.sweep.metering
        settings = MeterSettings(
            sample_interval_s=metering.sample_interval_s,
            gpu_energy=metering.gpu,
            cooldown_c=metering.cooldown_c,
            cooldown_max_s=metering.cooldown_max_s,
        )
        self.meter = (open_meter or default_open_meter)(self.device, settings)
        self.meter.start()
        prov = self.meter.provenance()
        self.host = host_provenance()
        self.place = {
            "node": prov.get("node") or socket.gethostname(),
            "worker_id": self.index,
            "host_id": self.host["host_id"],
            "gpu_index": prov.get("gpu_index"),
            "gpu_name": prov.get("gpu_name"),
            "gpu_uuid": prov.get("gpu_uuid"),
            **scheduler_ids(),
        }
        # 3. Resident models, and quality scoring if asked for
        self.models = ModelCache(
            self.device.name, self.device.free_memory, self.device.is_out_of_memory, find_adapter
        )
        self._scorer = None
        self._prepared: dict[str, Any] | None = None
        self.activities: list[str] = []  # what it began doing, in order, for the driver's progress lines
        # Bookkeeping for the overhead figures: time inside trials, and the gaps between them
        self.created_at = time.time()
        self.busy_s = 0.0
        self.window_s = 0.0
        self.gaps_s: list[float] = []
        self._last_end: float | None = None
        self.shapes = SetUpShapes(self.models.loads)
        self.first_start_unix_s: float | None = None
        self.last_end_unix_s: float | None = None

    def ping(self) -> int:
        return os.getpid()

    def prepare(self, models: Sequence[str] = ()) -> dict[str, Any]:
        """Measure this GPU's idle power and the reference workload (once per process, before its
        first trial), return the GPU's and the host's provenance, with when each step of it ran.
        A process that Ray restarted after a crash measures its own baseline on its first trial, so its
        rows keep their net energy.

        1. The CUDA context is opened first: a GPU idles markedly higher with one open (measured in
           benchmarks/results/meter_precision_h100.md, "Idle"), and the baseline to subtract is what
           the GPU draws while this process holds it doing nothing.
        2. A background thread imports the code of `models` (model ids the plan gives this worker:
           `Adapter.prefetch`) and pandas, CPU work that would otherwise open each first load.
        3. Doctor's quick checks 1 and 6 (`check_gpu`) run inside the idle baseline's window (they read
           only NVML): a counter that is absent or frozen refuses the GPU unless the sweep meters with
           power (`metering.gpu: power-integral`).
        4. The thread is joined before the reference workload, whose launch-bound loop a busy CPU
           thread beside it would slow.
        """
        if self._prepared is None:
            steps = StepTimes()
            with steps("context"):
                self.device.open_context()
            prefetch = Prefetch(models, self._find_adapter)
            checks: list[Any] = []

            def run_checks() -> None:
                with steps("checks"):
                    checks.extend(self.check_gpu())

            idle_s = self.sweep.metering.idle_baseline_s
            try:
                if idle_s > 0:
                    self.activities.append(f"measuring the idle baseline ({idle_s:g} s)")
                    with steps("idle_baseline"):
                        self.meter.measure_idle(idle_s, during=run_checks)
                else:
                    run_checks()
            finally:
                with steps("prefetch_wait"):
                    prefetch.join()
            steps.spans["prefetch"] = [prefetch.start_unix_s - steps.t0, prefetch.end_unix_s - steps.t0]
            with steps("reference"):
                reference = reference_workload(self.meter, self.device.name)
            self._prepared = {
                "worker": self.index,
                "pid": os.getpid(),
                "device": self.device.name,
                **self.meter.provenance(),
                "idle_power_w": self.meter.idle_power_w,
                "doctor": [c.as_dict() for c in checks],
                **reference,
                **self.host,
                **scheduler_ids(),
                "prepare_started_unix_s": steps.t0,
                "prepared_unix_s": time.time(),
                "prepare_steps_s": steps.spans,
                "prefetched": prefetch.model_ids,
                "prefetch_errors": prefetch.errors,
            }
        return self._prepared

    def check_gpu(self) -> list[Any]:
        """doctor's checks 1 (counter present and advancing, 1 s) and 6 (idle state) on this GPU."""
        gpu, clock = self.meter.gpu, self.meter.clock
        if gpu is None:
            return []
        counter = doctor.check_counter(gpu, clock, 1.0)
        state = doctor.check_state(gpu, clock, 0.5)
        if counter.status == doctor.FAIL and self.sweep.metering.gpu == "counter":
            raise ConfigError(
                "metering.gpu",
                self.sweep.metering.gpu,
                f"GPU {gpu.index} ({gpu.name()}) on {self.place['node']}: {counter.figure}; "
                "add `metering: {gpu: power-integral}` to the sweep to meter it with power samples",
            )
        return [counter, state]

    def run_trial(self, unit_id: str, token: str | None = None) -> dict[str, Any]:
        """Run one unit (`plan.py`): a whole trial, or one repeat of it. `token`: the driver's name for
        this submission, marked as begun before anything else (`crashes.py`: whose crash it was)."""
        if token is not None:
            mark_started(self.run, self.index, unit_id, token)
        self.prepare()
        start = time.perf_counter()
        self.first_start_unix_s = self.first_start_unix_s or time.time()
        if self._last_end is not None:
            self.gaps_s.append(start - self._last_end)
        trial_id, repeats = parse_unit_id(unit_id, self.sweep.repeats)
        trial = self.sweep.trial(trial_id)
        key = ModelCache.key_of(trial)
        loads_before = self.models.loads[key]
        env = TrialEnv(
            run=self.run,
            sweep=self.sweep,
            get_model=self._model,
            meter=self.meter,
            device=self.device,
            place=self.place,
            scorer=self.scorer(),
            write_audio=self._write_audio if self.sweep.save_audio else None,
            needs_setup=self.shapes.needed,
            set_up=self.shapes.record,
        )
        outcome = run_trial(trial, env, repeats, unit_id)
        self._last_end = time.perf_counter()
        self.last_end_unix_s = time.time()
        self.busy_s += self._last_end - start
        self.window_s += outcome.window_s
        return {
            **outcome.as_dict(),
            "worker": self.index,
            "model_key": key,
            "load_s": self.models.load_s.get(key) if self.models.loads[key] > loads_before else None,
        }

    def activities_since(self, n: int) -> tuple[int, list[str]]:
        """How many activities it has begun, and those after the first `n` (all of them when it has
        fewer: a process Ray restarted begins a new list). Answered beside a running trial."""
        return len(self.activities), self.activities[n:] if n <= len(self.activities) else self.activities

    def _model(self, trial: Trial):
        if not self.models.has(trial.model, trial.weights, trial.dtype):
            self.activities.append(f"loading {trial.model.id} ({trial.weights} weights, {trial.dtype})")
        return self.models.get(trial.model, trial.weights, trial.dtype)

    def stats(self) -> dict[str, Any]:
        return {
            "worker": self.index,
            "pid": os.getpid(),
            "node_id": _ray_node_id(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "ray_gpus": _ray_gpus(),  # what Ray gave it: a logical GPU is held but not visible
            "ray_gpu_ids": _ray_gpu_ids(),  # which: the scheduler's ids (CUDA_VISIBLE_DEVICES of the node)
            **self.place,
            "loads": dict(self.models.loads),
            "load_s": dict(self.models.load_s),
            "busy_s": self.busy_s,
            "window_s": self.window_s,
            "gaps_s": list(self.gaps_s),
            "warmups": self.shapes.count,
            "first_start_unix_s": self.first_start_unix_s,
            "last_end_unix_s": self.last_end_unix_s,
            "idle_power_w": self.meter.idle_power_w,
        }

    def shutdown(self) -> None:
        self.meter.close()

    # ---- outside the energy windows
    def scorer(self):
        q = self.sweep.quality
        if self._scorer is None and (q.clap or q.fad_reference):
            # not at the top: the scorer's math imports pandas and scipy (seconds in every worker), and
            # only a sweep that scores quality needs it
            from t2a_ray.orchestrator.scoring import QualityScorer

            self._scorer = QualityScorer(
                q, self.sweep.weights, self.device.name, cache_dir=self.run.root / "cache"
            )
        return self._scorer

    def _write_audio(self, trial: Trial, repeat: int, prompt: Prompt, gen) -> None:
        # not at the top: `t2a_ray.analysis` imports pandas and matplotlib, which only a sweep that
        # saves its audio brings into a worker
        from t2a_ray.analysis.audio import write_wav

        for i, wave in enumerate(gen.waveforms):
            path = self.run.audio_file(trial.trial_id, repeat, prompt.id, i)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, wave, gen.sample_rate_hz)


class StepTimes:
    """When each step of a worker's preparation ran: name → [start, end], seconds from `t0` (unix s)."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.spans: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            self.spans[name] = [start - self.t0, time.time() - self.t0]


class Prefetch:
    """Imports the code of the models `model_ids` (`Adapter.prefetch`), then pandas, in a background
    thread, from construction until `join`.

    pandas: pyarrow imports it on the first shard written, which would otherwise wait for it. A model whose
    prefetch raises is logged and skipped: its `load` raises the error again where a trial records it.
    """

    def __init__(self, model_ids: Sequence[str], find_adapter: Callable[[str], type[Adapter]]):
        self.model_ids = list(dict.fromkeys(model_ids))  # each model once
        self.errors: list[str] = []
        self._find_adapter = find_adapter
        self.start_unix_s = self.end_unix_s = time.time()
        self._thread = threading.Thread(target=self._run, name="t2a-ray-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for model_id in self.model_ids:
            try:
                self._find_adapter(model_id).prefetch()
            except Exception as e:  # noqa: BLE001, PERF203 — a head start only: the load reports it
                log.warning("prefetching %s failed (its load will say why): %s", model_id, e)
                self.errors.append(f"{model_id}: {type(e).__name__}: {e}")
        import pandas  # noqa: F401

        self.end_unix_s = time.time()

    def join(self) -> None:
        self._thread.join()


def _ray_gpu_ids() -> list[str] | None:
    try:
        import ray

        return [str(i) for i in ray.get_gpu_ids()] if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 — outside Ray nothing was assigned
        return None


def _ray_gpus() -> float | None:
    try:
        import ray

        return (
            ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0)
            if ray.is_initialized()
            else None
        )
    except Exception:  # noqa: BLE001 — outside Ray nothing was assigned
        return None


def _ray_node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 — outside Ray there is no node id
        return None
