"""The GPU side of the device layer: one small interface, one NVML implementation, one discovery function.

Like Zeus's `zeus/device/gpu/common.py`, capabilities are asked with probe methods
(`supports_energy_counter`) instead of `isinstance`; unlike Zeus, the device is handed to the `Meter`
through its constructor, so tests pass a fake that subclasses `GPU` (see `fakes.py`) and nothing is
patched. Units are in the names and converted here, once: NVML speaks mJ and mW.

Every NVML failure becomes a `MeteringError` in exactly one place, `NVMLGPU._call`.
"""

from __future__ import annotations

import abc
import ctypes
import os
from collections.abc import Mapping
from typing import Any

from t2a_ray.errors import MeteringError

# NVML's field ids (nvml.h); the field API returns a value and its own status per field.
NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION = 83  # mJ since the driver was loaded
NVML_FI_DEV_POWER_INSTANT = 186  # mW, instantaneous (nvmlDeviceGetPowerUsage is a 1 s average on Hopper)
NVML_GPU_UTILIZATION_SAMPLES = 1  # nvmlSamplingType_t: GPU utilisation
_FIELD_VALUE_ATTR = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}

#: NVML's clocks-event (formerly "throttle") reason bits (nvml.h, nvmlClocksEventReason*), by our names.
CLOCKS_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
#: Reasons that are settings or idleness, not the card slowing work down: a window is not "throttled" by them.
NOT_THROTTLING = frozenset({"gpu_idle", "applications_clocks_setting", "display_clock_setting"})


def reason_names(mask: int) -> tuple[str, ...]:
    """The names of the reason bits set in `mask`, in bit order; an unknown bit is named by its value."""
    names = [CLOCKS_EVENT_REASONS.get(bit, hex(bit)) for bit in (1 << i for i in range(64)) if mask & bit]
    return tuple(names)


def throttling(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The reasons among `names` that slow the card's clocks (power, thermal, hardware slowdown)."""
    return tuple(n for n in names if n not in NOT_THROTTLING)


class GPU(abc.ABC):
    """One GPU as the meter needs it. Readings raise `MeteringError` when the device cannot answer.

    `index` is the *real* index (NVML / PCI order), not the CUDA ordinal a process sees: in a Ray actor
    the only visible GPU is CUDA device 0 whatever its real index.
    """

    index: int
    #: The raw counter counts modulo this many mJ (NVML: an unsigned 64-bit integer).
    energy_counter_range_mj: int = 2**64
    #: What the figures are called in `energy_method` (fakes of NVML keep the NVML names).
    counter_label: str = "nvml-counter"
    power_label: str = "nvml-power"

    # identity ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def name(self) -> str: ...

    @abc.abstractmethod
    def uuid(self) -> str: ...

    def driver_version(self) -> str | None:
        return None

    def nvml_version(self) -> str | None:
        return None

    def power_limit_w(self) -> float | None:
        return None

    # capabilities -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def supports_energy_counter(self) -> bool:
        """Whether `total_energy_mj` works (NVML: Volta and newer)."""

    @abc.abstractmethod
    def supports_power(self) -> bool:
        """Whether `power_mw` works."""

    def power_kind(self) -> str:
        """`instant` or `average-1s`: what a power sample means (shapes the power integral)."""
        return "instant"

    def counter_lag_hint_s(self) -> float:
        """How late the counter publishes the energy it counts, as measured for this kind of GPU."""
        return 0.0

    def power_delay_hint_s(self) -> float:
        """How late a power sample trails the power drawn, as measured for this kind of GPU."""
        return 0.0

    # readings ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def total_energy_mj(self) -> int:
        """The raw energy counter in mJ. It wraps at `energy_counter_range_mj` and moves in ticks."""

    @abc.abstractmethod
    def power_mw(self) -> int:
        """Board power in mW."""

    def energy_and_power(self) -> tuple[int | None, int | None]:
        """One sample of (counter mJ, power mW); None for what the device lacks.

        Subclasses that can read both in one driver call override this: the sampler calls it hundreds of
        times a second, and each call it saves is time the generating thread keeps.
        """
        energy = self.total_energy_mj() if self.supports_energy_counter() else None
        power = self.power_mw() if self.supports_power() else None
        return energy, power

    def temperature_c(self) -> float | None:
        return None

    def clocks_event_reasons(self) -> int | None:
        """Why the clocks are below their maximum now, as NVML's bit mask (`reason_names` names the
        bits); None where the device cannot say. A cheap read (no energy counter behind it)."""
        return None

    def supports_utilization(self) -> bool:
        """Whether `utilization_samples` works."""
        return False

    def utilization_samples(self, since_epoch_s: float) -> list[tuple[float, float]]:
        """(host wall-clock time s, % of the sample period a kernel ran) since a time, oldest first."""
        raise MeteringError(f"{type(self).__name__} keeps no utilisation samples")

    def close(self) -> None:  # noqa: B027 — most devices hold nothing to release
        """Release the driver handle (idempotent)."""


class NVMLGPU(GPU):
    """A GPU read through NVML. `nvml` is the `pynvml` module (or a stand-in with the same functions).

    Initialises NVML on construction and shuts it down on `close` (NVML counts its initialisations).
    """

    def __init__(self, index: int, nvml: Any = None):
        self._nvml = nvml if nvml is not None else import_pynvml()
        self.index = index
        self._closed = False
        self._call("nvmlInit")
        self._handle = self._call("nvmlDeviceGetHandleByIndex", index)
        self._has_counter = self._probe(self.total_energy_mj)
        # One field call returns the counter and the instantaneous power together; fall back to the
        # separate calls (and the 1 s average power) where the driver lacks a field.
        self._fields = self._probe_fields()
        self._has_power = NVML_FI_DEV_POWER_INSTANT in self._fields or self._probe(self._average_power_mw)

    # readings go through nvml_call, the one place NVML errors are translated -------------------------------
    def _call(self, fn_name: str, *args: Any) -> Any:
        return nvml_call(self._nvml, fn_name, *args, where=f" on GPU {self.index}")

    def _field_values(self, field_ids: tuple[int, ...]) -> list[Any]:
        values = self._call("nvmlDeviceGetFieldValues", self._handle, list(field_ids))
        out = []
        for field_id, value in zip(field_ids, values, strict=True):
            if value.nvmlReturn != 0:  # the field API reports each field's status instead of raising
                nvml_call(
                    self._nvml,
                    "NVMLError",
                    value.nvmlReturn,
                    where=f" for field {field_id} on GPU {self.index}",
                )
            out.append(getattr(value.value, _FIELD_VALUE_ATTR.get(value.valueType, "ullVal")))
        return out

    @staticmethod
    def _probe(read: Any) -> bool:
        try:
            read()
        except MeteringError:
            return False
        return True

    def _probe_fields(self) -> tuple[int, ...]:
        usable = []
        for field_id in (NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION, NVML_FI_DEV_POWER_INSTANT):
            try:
                self._field_values((field_id,))
            except (MeteringError, AttributeError):
                continue
            usable.append(field_id)
        return tuple(usable)

    # identity -----------------------------------------------------------------------------------------------
    def name(self) -> str:
        return _text(self._call("nvmlDeviceGetName", self._handle))

    def uuid(self) -> str:
        return _text(self._call("nvmlDeviceGetUUID", self._handle))

    def driver_version(self) -> str | None:
        return _text(self._call("nvmlSystemGetDriverVersion"))

    def nvml_version(self) -> str | None:
        return _text(self._call("nvmlSystemGetNVMLVersion"))

    def power_limit_w(self) -> float | None:
        try:
            return self._call("nvmlDeviceGetEnforcedPowerLimit", self._handle) / 1000.0
        except MeteringError:
            return None

    # capabilities -------------------------------------------------------------------------------------------
    def supports_energy_counter(self) -> bool:
        return self._has_counter

    def supports_power(self) -> bool:
        return self._has_power

    def power_kind(self) -> str:
        return "instant" if NVML_FI_DEV_POWER_INSTANT in self._fields else "average-1s"

    def counter_lag_hint_s(self) -> float:
        # H100 80GB HBM3, driver 580: the fitted lag is within one read's duration, i.e. the counter is
        # current (benchmarks/results/meter_precision_h100.md). Other GPUs: not measured.
        return 0.005 if "H100" in self.name() else 0.0

    def power_delay_hint_s(self) -> float:
        # The H100's "instantaneous" field changes once per counter tick and trails the work by about
        # one tick (benchmarks/results/meter_precision_h100.md); the 1 s average is centred half a
        # second back.
        return 0.1 if self.power_kind() == "instant" else 0.5

    # readings -----------------------------------------------------------------------------------------------
    def total_energy_mj(self) -> int:
        return int(self._call("nvmlDeviceGetTotalEnergyConsumption", self._handle))

    def _average_power_mw(self) -> int:
        return int(self._call("nvmlDeviceGetPowerUsage", self._handle))

    def power_mw(self) -> int:
        if NVML_FI_DEV_POWER_INSTANT in self._fields:
            return int(self._field_values((NVML_FI_DEV_POWER_INSTANT,))[0])
        return self._average_power_mw()

    def energy_and_power(self) -> tuple[int | None, int | None]:
        if self._has_counter and self._fields == (
            NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION,
            NVML_FI_DEV_POWER_INSTANT,
        ):
            energy, power = self._field_values(self._fields)
            return int(energy), int(power)
        return super().energy_and_power()

    def temperature_c(self) -> float | None:
        try:
            return float(self._call("nvmlDeviceGetTemperature", self._handle, 0))  # NVML_TEMPERATURE_GPU
        except MeteringError:
            return None

    def clocks_event_reasons(self) -> int | None:
        # Drivers before 535 (and pynvml before 12.535) name it "throttle reasons".
        for fn_name in (
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetCurrentClocksThrottleReasons",
        ):
            if hasattr(self._nvml, fn_name):
                try:
                    return int(self._call(fn_name, self._handle))
                except MeteringError:
                    return None
        return None

    def supports_utilization(self) -> bool:
        return True  # every NVML GPU keeps them; a read that fails says so (MeteringError)

    def utilization_samples(self, since_epoch_s: float) -> list[tuple[float, float]]:
        since_us = max(0, int(since_epoch_s * 1e6))
        _, samples = self._call("nvmlDeviceGetSamples", self._handle, NVML_GPU_UTILIZATION_SAMPLES, since_us)
        return [(s.timeStamp * 1e-6, float(s.sampleValue.uiVal)) for s in samples]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._call("nvmlShutdown")
            except MeteringError:
                pass


def nvml_call(nvml: Any, fn_name: str, *args: Any, where: str = "") -> Any:
    """Call `nvml.<fn_name>(*args)`; the one place where an NVML error becomes a `MeteringError`.

    `fn_name="NVMLError"` with a status code turns a per-field status (the field API does not raise)
    into the same error. The NVML error stays attached as `__cause__`.
    """
    try:
        result = getattr(nvml, fn_name)(*args)
    except nvml.NVMLError as e:
        raise MeteringError(f"NVML {fn_name} failed{where}: {e}") from e
    if fn_name == "NVMLError":
        raise MeteringError(f"NVML failed{where}: {result}") from result
    return result


def import_pynvml() -> Any:
    try:
        import pynvml
    except ImportError as e:
        raise MeteringError(
            "pynvml is not installed (pip install nvidia-ml-py); cannot read an NVIDIA GPU"
        ) from e
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _normal_uuid(uuid: str) -> str:
    """`GPU-abcd…` and torch's bare `abcd…` compare equal."""
    text = str(uuid).strip().lower()
    return text[4:] if text.startswith("gpu-") else text


def cuda_device_uuid(ordinal: int = 0) -> str | None:
    """The UUID of CUDA device `ordinal` as this process sees it (after CUDA_VISIBLE_DEVICES and
    CUDA_DEVICE_ORDER), asked of the CUDA driver through ctypes — no torch import, no context created.

    None when the driver library is missing or the device does not exist.
    """
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    try:
        if lib.cuInit(0) != 0:
            return None
        device = ctypes.c_int()
        if lib.cuDeviceGet(ctypes.byref(device), ordinal) != 0:
            return None
        raw = (ctypes.c_ubyte * 16)()
        get_uuid = getattr(lib, "cuDeviceGetUuid_v2", None) or lib.cuDeviceGetUuid
        if get_uuid(raw, device) != 0:
            return None
    except AttributeError:
        return None
    h = bytes(raw).hex()
    return f"GPU-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def visible_cuda_devices(value: str | None) -> list[str] | None:
    """The devices CUDA_VISIBLE_DEVICES names, read as CUDA reads it: None when it is unset (every GPU
    is visible), else its entries up to the first one CUDA cannot use — an empty or negative entry
    ("0,,1" and "0,-1,1" show GPU 0 only); "", "-1" and "NoDevFiles" hide every GPU.

    The one reading of the variable: the CLI counts GPUs with it, `find_visible_gpu` maps ordinals.
    """
    if value is None:
        return None
    entries = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry or entry.startswith("-") or entry == "NoDevFiles":
            break
        entries.append(entry)
    return entries


# Tests and CPU-only clusters run multi-GPU sweeps on Ray's logical GPUs (nothing is on them): with this
# set to 1, `--gpus N` is not checked against the GPUs NVML sees, Ray is told N, and a worker on one
# sees no CUDA device — also on a host that has real GPUs.
LOGICAL_GPUS_ENV = "T2A_RAY_LOGICAL_GPUS"


def gpus_are_logical() -> bool:
    return os.environ.get(LOGICAL_GPUS_ENV) == "1"


def visible_gpu_count(nvml: Any = None, env: Mapping[str, str] | None = None) -> int:
    """GPUs this process may use: those NVML sees (0 without a driver or pynvml), no more than
    CUDA_VISIBLE_DEVICES names where it is set (Ray and CUDA read it the same way)."""
    env = os.environ if env is None else env
    try:
        nvml = import_pynvml() if nvml is None else nvml
        nvml.nvmlInit()
        try:
            count = int(nvml.nvmlDeviceGetCount())
        finally:
            nvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 — no driver, no library: no GPUs
        return 0
    named = visible_cuda_devices(env.get("CUDA_VISIBLE_DEVICES"))
    return count if named is None else min(count, len(named))


def find_visible_gpu(
    nvml: Any,
    cuda_ordinal: int = 0,
    cuda_uuid: str | None = None,
    env: Mapping[str, str] | None = None,
    ask_cuda_driver: bool = True,
) -> tuple[int | None, str]:
    """Return (real NVML index or None, how it was found — or why not).

    The CUDA ordinal a process sees is not the NVML index: CUDA_VISIBLE_DEVICES renumbers devices (a Ray
    actor's one GPU is always CUDA 0) and may name them by UUID. The reliable link is the UUID: the one
    given (`torch.cuda.get_device_properties(0).uuid`), else the CUDA driver's, else the entry of
    CUDA_VISIBLE_DEVICES itself; a bare integer entry is taken as an NVML (PCI-order) index, which holds
    when CUDA_DEVICE_ORDER=PCI_BUS_ID or the GPUs are identical.

    `nvml` must be initialised.
    """
    env = os.environ if env is None else env
    count = nvml_call(nvml, "nvmlDeviceGetCount")
    uuids = [
        _normal_uuid(
            _text(nvml_call(nvml, "nvmlDeviceGetUUID", nvml_call(nvml, "nvmlDeviceGetHandleByIndex", i)))
        )
        for i in range(count)
    ]

    visible = env.get("CUDA_VISIBLE_DEVICES")
    valid = visible_cuda_devices(visible)
    if valid is not None:
        if not valid:
            return None, f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
        if cuda_ordinal >= len(valid):
            return None, f"CUDA device {cuda_ordinal} is not visible (CUDA_VISIBLE_DEVICES={visible!r})"

    if cuda_uuid is None and ask_cuda_driver:
        cuda_uuid = cuda_device_uuid(cuda_ordinal)
    if cuda_uuid is not None:
        wanted = _normal_uuid(cuda_uuid)
        if wanted in uuids:
            return uuids.index(wanted), f"uuid match ({cuda_uuid})"
        return None, f"CUDA device {cuda_ordinal} ({cuda_uuid}) is not an NVML GPU (a MIG instance?)"

    if valid is not None:
        entry = valid[cuda_ordinal]
        if entry.isdigit():
            index = int(entry)
            if index < count:
                return index, f"CUDA_VISIBLE_DEVICES entry {entry} (PCI order assumed)"
            return None, f"CUDA_VISIBLE_DEVICES entry {entry} but NVML sees {count} GPU(s)"
        matches = [i for i, u in enumerate(uuids) if u.startswith(_normal_uuid(entry))]
        if len(matches) == 1:
            return matches[0], f"CUDA_VISIBLE_DEVICES uuid prefix {entry}"
        return None, f"CUDA_VISIBLE_DEVICES entry {entry!r} matches {len(matches)} NVML GPUs"

    if cuda_ordinal < count:
        return cuda_ordinal, "no CUDA_VISIBLE_DEVICES: CUDA ordinal = NVML index (PCI order assumed)"
    return None, f"CUDA device {cuda_ordinal} does not exist (NVML sees {count} GPU(s))"


def open_visible_gpu(
    nvml: Any = None,
    cuda_ordinal: int = 0,
    cuda_uuid: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[NVMLGPU | None, str]:
    """The GPU this process sees as CUDA device `cuda_ordinal`, opened (`find_visible_gpu` says how it is
    found), or None and why not. Raises `MeteringError` where NVML itself cannot start."""
    nvml = nvml if nvml is not None else import_pynvml()
    nvml_call(nvml, "nvmlInit")
    try:
        index, how = find_visible_gpu(nvml, cuda_ordinal, cuda_uuid, env)
    finally:
        nvml_call(nvml, "nvmlShutdown")
    return (None if index is None else NVMLGPU(index, nvml)), how
