"""Stand-ins for time and devices, for CI (no GPU, no RAPL) and the benchmark's CPU smoke run.

They subclass the real base classes (`Clock`, `GPU`) and behave like the hardware they replace:

* `FakeClock` — time that moves only when someone sleeps; the periodic sampler runs inside `sleep`,
  so a whole metered window is deterministic and takes no real time.
* `FakeGPU` — power follows what the "work" sets; the energy counter ticks every `tick_s`, publishes
  the energy drawn up to `lag_s` before the tick, counts in whole mJ, wraps at `counter_range_mj`, and
  can be told to fail (as a translated NVML error).
* `FrozenCounterGPU`, `PartTimeCounterGPU` — counters that a user's card may have and `doctor` must
  catch: one that never moves (seen in VMs), one that counts only 25 ms of every 100 ms and scales it
  up, as NVML's power readings do on A100/H100 (Yang et al., "Part-time Power Measurements", SC'24).
* `PhaseEffectCounterGPU` — a counter that sees all work but reads a short burst a little high or low
  by its phase within the tick (as measured on H200s, `benchmarks/results/doctor_h200.md`): `doctor`
  must name the effect and, within its tolerance, pass.
* `ReplayGPU` — plays back a trace recorded from a real GPU (`tests/fixtures/nvml_trace_h100.csv`).
* `FakeNVML` — a stand-in for the `pynvml` module over FakeGPUs, to test `NVMLGPU` and the
  CUDA_VISIBLE_DEVICES → real-index mapping, including NVML's error codes.
"""

from __future__ import annotations

import abc
import bisect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from t2a_ray.errors import MeteringError
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.gpu import (
    GPU,
    NVML_FI_DEV_POWER_INSTANT,
    NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION,
    NVML_GPU_UTILIZATION_SAMPLES,
)


@dataclass
class _Task:
    fn: Callable[[float], float]
    scheduled_s: float
    due_s: float
    alive: bool = True


class FakeClock(Clock):
    """Simulated time. `sleep`/`advance` move it forward and run the periodic tasks that fall due, in
    time order, each at its due time. `sample_jitter_s` delays each periodic call by U(0, jitter) past
    its schedule, as a busy host delays a sampler thread. Periodic tasks run only while someone sleeps."""

    def __init__(self, start_s: float = 1000.0, sample_jitter_s: float = 0.0, seed: int = 0):
        self._now_s = float(start_s)
        self._tasks: list[_Task] = []
        self._rng = random.Random(seed)
        self.sample_jitter_s = sample_jitter_s
        self._in_task = False

    def now_s(self) -> float:
        return self._now_s

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        end_s = self._now_s + max(0.0, float(seconds))
        if self._in_task:  # a task that sleeps lets time pass but runs no other task
            self._now_s = end_s
            return
        while True:
            due = [t for t in self._tasks if t.alive and t.due_s <= end_s]
            if not due:
                break
            task = min(due, key=lambda t: t.due_s)
            self._now_s = max(self._now_s, task.due_s)
            self._in_task = True
            try:
                next_due_s = task.fn(task.scheduled_s)
            finally:
                self._in_task = False
            task.scheduled_s = max(next_due_s, self._now_s)
            task.due_s = task.scheduled_s + self._rng.uniform(0.0, self.sample_jitter_s)
        self._now_s = max(self._now_s, end_s)
        self._tasks = [t for t in self._tasks if t.alive]

    def start_periodic(self, fn: Callable[[float], float], name: str = "fake") -> Callable[[], None]:
        """Like `Clock.start_periodic`: `fn(due_s)` runs now, then whenever it says it is next due."""
        task = _Task(fn, self._now_s, self._now_s)
        self._tasks.append(task)

        def stop() -> None:
            task.alive = False

        return stop


@dataclass(frozen=True)
class FakeGPUSpec:
    """What a `FakeGPU` is: its identity; its counter, which ticks every `tick_s` (from `tick_phase_s`),
    publishing the energy drawn up to `lag_s` before the tick, counting from `counter_start_mj` and
    wrapping at `counter_range_mj`; which readings it supports; its temperature."""

    index: int = 0
    name: str = "Fake H100"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    tick_s: float = 0.1
    tick_phase_s: float = 0.0
    lag_s: float = 0.0
    counter_start_mj: int = 0
    counter_range_mj: int = 2**64
    has_counter: bool = True
    has_power: bool = True
    temperature_c: float = 40.0


class FakeGPU(GPU):
    """A GPU made of arithmetic, driven by a clock. Work sets its power: `busy(seconds, watts)`."""

    def __init__(self, clock: Clock, *, spec: FakeGPUSpec | None = None, **fields: Any):
        """`fields` are `FakeGPUSpec`'s, each overriding `spec`'s (e.g. `FakeGPU(clock, tick_s=0.02)`)."""
        spec = replace(spec or FakeGPUSpec(), **fields)
        self.clock = clock
        self.index = spec.index
        self._name, self._uuid = spec.name, spec.uuid
        self.idle_power_w = 70.0  # an H100 at rest
        self.tick_s, self.tick_phase_s, self.lag_s = spec.tick_s, spec.tick_phase_s, spec.lag_s
        self.counter_start_mj = spec.counter_start_mj
        self.energy_counter_range_mj = spec.counter_range_mj
        self._has_counter, self._has_power = spec.has_counter, spec.has_power
        self.temperature = spec.temperature_c
        self._failures_left = 0
        self._failure_message = ""
        self.reads = 0
        #: What `clocks_event_reasons` answers (NVML's bit mask): set it to make the card "throttle".
        self.reasons_mask = 0
        # piecewise-constant power: segment i starts at _seg_t[i] with _seg_w[i] watts
        self._origin_s = clock.now_s()
        self._seg_t = [self._origin_s]
        self._seg_w = [self.idle_power_w]
        self._seg_cum_j = [0.0]

    # the "work" ----------------------------------------------------------------------------------------------
    def set_power_w(self, watts: float) -> None:
        now = self.clock.now_s()
        self._seg_cum_j.append(self.true_energy_j(now))
        self._seg_t.append(now)
        self._seg_w.append(float(watts))

    def busy(self, seconds: float, watts: float) -> None:
        """Draw `watts` for `seconds` of (clock) time, then fall back to idle."""
        self.set_power_w(watts)
        self.clock.sleep(seconds)
        self.set_power_w(self.idle_power_w)

    def true_energy_j(self, t_s: float, t0_s: float | None = None) -> float:
        """The exact energy drawn up to `t_s` (or between `t0_s` and `t_s`): what a meter should report."""
        if t0_s is not None:
            return self.true_energy_j(t_s) - self.true_energy_j(t0_s)
        if t_s <= self._origin_s:
            return 0.0
        i = bisect.bisect_right(self._seg_t, t_s) - 1
        return self._seg_cum_j[i] + self._seg_w[i] * (t_s - self._seg_t[i])

    def fail_reads(self, count: int = 1, message: str = "GPU is lost") -> None:
        """Make the next `count` readings raise MeteringError (as NVMLGPU does after translation)."""
        self._failures_left, self._failure_message = count, message

    def _check(self) -> None:
        self.reads += 1
        if self._failures_left > 0:
            self._failures_left -= 1
            raise MeteringError(f"NVML read failed on GPU {self.index}: {self._failure_message}")

    # GPU -----------------------------------------------------------------------------------------------------
    def name(self) -> str:
        return self._name

    def uuid(self) -> str:
        return self._uuid

    def driver_version(self) -> str | None:
        return "fake-driver"

    def nvml_version(self) -> str | None:
        return "fake-nvml"

    def power_limit_w(self) -> float | None:
        return 700.0

    def supports_energy_counter(self) -> bool:
        return self._has_counter

    def supports_power(self) -> bool:
        return self._has_power

    def counter_lag_hint_s(self) -> float:
        return 0.0

    def last_tick_s(self, t_s: float | None = None) -> float:
        t = self.clock.now_s() if t_s is None else t_s
        return self.tick_phase_s + math.floor((t - self.tick_phase_s) / self.tick_s) * self.tick_s

    def total_energy_mj(self) -> int:
        if not self._has_counter:
            raise MeteringError(
                f"NVML nvmlDeviceGetTotalEnergyConsumption failed on GPU {self.index}: Not Supported"
            )
        self._check()
        return self._published_mj()

    def power_mw(self) -> int:
        if not self._has_power:
            raise MeteringError(f"NVML nvmlDeviceGetPowerUsage failed on GPU {self.index}: Not Supported")
        self._check()
        return self._power_now_mw()

    def energy_and_power(self) -> tuple[int | None, int | None]:
        self._check()  # one driver call for both, as NVMLGPU's field read
        return (
            self._published_mj() if self._has_counter else None,
            self._power_now_mw() if self._has_power else None,
        )

    def _published_mj(self) -> int:
        published_j = self.true_energy_j(self.last_tick_s() - self.lag_s)
        return (self.counter_start_mj + int(published_j * 1000)) % self.energy_counter_range_mj

    def _power_now_mw(self) -> int:
        i = bisect.bisect_right(self._seg_t, self.clock.now_s()) - 1
        return int(self._seg_w[i] * 1000)

    def temperature_c(self) -> float | None:
        return self.temperature

    def clocks_event_reasons(self) -> int | None:
        return self.reasons_mask


class FrozenCounterGPU(FakeGPU):
    """A counter that answers but never moves (reported in VMs): every read gives the first value."""

    def _published_mj(self) -> int:
        return self.counter_start_mj


class _PerTickCounterGPU(FakeGPU):
    """A counter that publishes, at each tick, its own account of the energy drawn during that tick
    (`_tick_j`, abstract): the fakes below count a tick's energy the way a flawed card might."""

    def __init__(self, clock: Clock, **kwargs: Any):
        super().__init__(clock, **kwargs)
        self._counted_to_s = self.last_tick_s(self._origin_s)  # ticks counted so far, and their energy
        self._counted_j = 0.0

    @abc.abstractmethod
    def _tick_j(self, start_s: float, end_s: float) -> float:
        """The energy (J) the counter adds for the tick from `start_s` to `end_s`."""

    def _published_mj(self) -> int:
        last = self.last_tick_s() - self.lag_s
        while self._counted_to_s + self.tick_s <= last + 1e-9:
            self._counted_j += self._tick_j(self._counted_to_s, self._counted_to_s + self.tick_s)
            self._counted_to_s += self.tick_s
        return (self.counter_start_mj + int(self._counted_j * 1000)) % self.energy_counter_range_mj


class PartTimeCounterGPU(_PerTickCounterGPU):
    """A counter that integrates only the last `covered_s` of each tick and scales it to the whole tick:
    right on a steady load, blind to work that falls in the uncovered part of each tick."""

    def __init__(self, clock: Clock, *, covered_s: float = 0.025, **kwargs: Any):
        self.covered_s = covered_s
        super().__init__(clock, **kwargs)

    def _tick_j(self, start_s: float, end_s: float) -> float:
        return self.true_energy_j(end_s, end_s - self.covered_s) * (end_s - start_s) / self.covered_s


class PhaseEffectCounterGPU(_PerTickCounterGPU):
    """A counter that sees all the work but weighs it by its phase within the tick: energy drawn in a
    tick's first half counts `1 + effect`, in its second half `1 - effect`. A steady load reads right
    (whole ticks); a burst within one half reads `±effect` off — a small phase effect, not a blind spot."""

    def __init__(self, clock: Clock, *, effect: float = 0.12, **kwargs: Any):
        self.effect = effect
        super().__init__(clock, **kwargs)

    def _tick_j(self, start_s: float, end_s: float) -> float:
        mid_s = 0.5 * (start_s + end_s)
        first_j, second_j = self.true_energy_j(mid_s, start_s), self.true_energy_j(end_s, mid_s)
        return (1 + self.effect) * first_j + (1 - self.effect) * second_j


class ReplayGPU(GPU):
    """Plays back a recorded trace: at clock time `origin_s + t` it answers the last recorded value at or
    before `t` — a step function, as the real counter is between its ticks."""

    def __init__(
        self,
        clock: Clock,
        times_s: Sequence[float],
        energy_mj: Sequence[int],
        power_mw: Sequence[int] | None = None,
        *,
        origin_s: float | None = None,
        name: str = "replay",
        uuid: str = "GPU-replay",
        index: int = 0,
    ):
        self.clock = clock
        self.index = index
        self._name, self._uuid = name, uuid
        self._times_s = [float(t) for t in times_s]
        self._energy_mj = [int(e) for e in energy_mj]
        self._power_mw = [int(p) for p in power_mw] if power_mw is not None else None
        self.origin_s = clock.now_s() - self._times_s[0] if origin_s is None else origin_s

    def _at(self) -> int:
        t = self.clock.now_s() - self.origin_s
        i = bisect.bisect_right(self._times_s, t) - 1
        if i < 0 or t > self._times_s[-1]:
            raise MeteringError(f"replay: t = {t:.3f} s is outside the recorded trace")
        return i

    def name(self) -> str:
        return self._name

    def uuid(self) -> str:
        return self._uuid

    def supports_energy_counter(self) -> bool:
        return True

    def supports_power(self) -> bool:
        return self._power_mw is not None

    def total_energy_mj(self) -> int:
        return self._energy_mj[self._at()]

    def power_mw(self) -> int:
        if self._power_mw is None:
            raise MeteringError("replay: the trace has no power column")
        return self._power_mw[self._at()]


class FakeNVML:
    """Enough of the `pynvml` module for `NVMLGPU` and `find_visible_gpu`, over FakeGPUs.

    `fail(function_name, code)` makes that function raise `NVMLError(code)` (3 = Not Supported,
    15 = GPU is lost …) from then on; `fields=False` makes the field API unsupported (older drivers).
    """

    NVML_SUCCESS = 0
    _MESSAGES = {
        1: "Uninitialized",
        2: "Invalid Argument",
        3: "Not Supported",
        4: "Insufficient Permissions",
        6: "Not Found",
        15: "GPU is lost",
        999: "Unknown Error",
    }

    class NVMLError(Exception):
        def __init__(self, value: int):
            self.value = value
            super().__init__(FakeNVML._MESSAGES.get(value, f"NVML error {value}"))

    def __init__(
        self, gpus: Sequence[FakeGPU], fields: bool = True, driver: str = "550.00", version: str = "12.550"
    ):
        self.gpus = list(gpus)
        self.fields = fields
        self.driver, self.version = driver, version
        self.initialised = 0
        self._failing: dict[str, int] = {}
        #: Per GPU index, NVML's utilisation samples: (host wall-clock time s, % of the period busy)
        self.utilization: dict[int, list[tuple[float, float]]] = {}

    def fail(self, function_name: str, code: int = 15) -> None:
        self._failing[function_name] = code

    def _maybe_fail(self, function_name: str) -> None:
        if function_name in self._failing:
            raise self.NVMLError(self._failing[function_name])

    def _gpu(self, handle: Any) -> FakeGPU:
        return self.gpus[handle]

    def nvmlInit(self) -> None:
        self._maybe_fail("nvmlInit")
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._maybe_fail("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._maybe_fail("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise self.NVMLError(2)
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._gpu(handle).uuid()

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return self._gpu(handle).name().encode()

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetNVMLVersion(self) -> str:
        return self.version

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        self._maybe_fail("nvmlDeviceGetEnforcedPowerLimit")
        return int((self._gpu(handle).power_limit_w() or 0) * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        self._maybe_fail("nvmlDeviceGetTotalEnergyConsumption")
        return self._read(lambda: self._gpu(handle).total_energy_mj())

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        self._maybe_fail("nvmlDeviceGetPowerUsage")
        return self._read(lambda: self._gpu(handle).power_mw())

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        self._maybe_fail("nvmlDeviceGetTemperature")
        return int(self._gpu(handle).temperature_c() or 0)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        self._maybe_fail("nvmlDeviceGetCurrentClocksEventReasons")
        return self._gpu(handle).reasons_mask

    def nvmlDeviceGetFieldValues(self, handle: int, field_ids: Sequence[int]) -> list[Any]:
        self._maybe_fail("nvmlDeviceGetFieldValues")
        if not self.fields:
            raise self.NVMLError(3)
        out = []
        for field_id in field_ids:
            value = SimpleNamespace(ullVal=0, uiVal=0)
            status, value_type = 0, 3
            try:
                if field_id == NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION:
                    self._maybe_fail("nvmlDeviceGetTotalEnergyConsumption")
                    value.ullVal = self._read(lambda: self._gpu(handle).total_energy_mj())
                elif field_id == NVML_FI_DEV_POWER_INSTANT:
                    self._maybe_fail("nvmlDeviceGetPowerUsage")
                    value.uiVal, value_type = self._read(lambda: self._gpu(handle).power_mw()), 1
                else:
                    status = 2
            except self.NVMLError as e:
                status = e.value
            out.append(
                SimpleNamespace(fieldId=field_id, nvmlReturn=status, valueType=value_type, value=value)
            )
        return out

    def nvmlDeviceGetSamples(self, handle: int, sampling_type: int, since_us: int) -> tuple[int, list[Any]]:
        """The utilisation samples newer than `since_us` (NVML: "Not Found" when there are none)."""
        self._maybe_fail("nvmlDeviceGetSamples")
        if sampling_type != NVML_GPU_UTILIZATION_SAMPLES:
            raise self.NVMLError(2)
        samples = [
            SimpleNamespace(timeStamp=round(t * 1e6), sampleValue=SimpleNamespace(uiVal=int(percent)))
            for t, percent in self.utilization.get(handle, [])
            if t * 1e6 > since_us
        ]
        if not samples:
            raise self.NVMLError(6)
        return 1, samples  # NVML_VALUE_TYPE_UNSIGNED_INT

    def _read(self, read: Callable[[], int]) -> int:
        try:
            return read()
        except MeteringError as e:  # a FakeGPU that cannot answer: NVML's "not supported"
            raise self.NVMLError(3) from e


@dataclass
class FakeCudaDevice:
    """A process's CUDA device as the meter sees it (`meter.MeteredDevice`), without torch: the UUID
    torch would report (None: the CUDA driver is asked) and a synchronisation that waits for nothing."""

    cuda_uuid: str | None = None
    is_cuda: bool = True

    def uuid(self) -> str | None:
        return self.cuda_uuid

    def sync(self) -> None:
        pass
