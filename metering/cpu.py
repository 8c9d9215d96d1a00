"""The CPU side of the device layer: RAPL counters when readable, else a labelled estimate.

Two sources behind one interface (`CpuSource`), both cumulative and read at window boundaries and phase
marks. Which one produced a figure is part of the result's `energy_method`, because the two are not the
same kind of number:

* `RaplCpu` *measures*: the kernel's powercap counters (`/sys/class/powercap/intel-rapl:N/energy_uj`,
  DRAM in the `intel-rapl:N:M` subzone named `dram`). They wrap at `max_energy_range_uj` (tens of
  minutes at full load), so the meter's sampler also reads them about once a second to see every wrap.
  Since 2020 most kernels make `energy_uj` readable by root only; then it is simply not available.
* `CpuTimeEstimate` *estimates*: this process's CPU time (all threads, user + system) × a power figure
  per busy core. It counts no idle power and no other process, and it is never called a measurement.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from t2a_ray.errors import MeteringError

RAPL_ROOT = Path("/sys/class/powercap")

#: Watts per busy core for the estimate: the thermal design power of current server CPUs divided by
#: their cores is 5–12 W (e.g. 280 W / 32 cores ≈ 9 W). A round 10 W; say so wherever it is used.
DEFAULT_WATTS_PER_CORE = 10.0


@dataclass(frozen=True)
class CpuReading:
    """Cumulative energy since the source was opened, in µJ (None where the source has no DRAM)."""

    cpu_uj: float
    dram_uj: float | None


class CpuSource(abc.ABC):
    """Cumulative CPU (and DRAM) energy of this machine or process."""

    #: The label of its figures in `energy_method`, e.g. "rapl" or "estimate:cpu-time".
    method: str
    #: True for a model-based estimate, False for a measurement.
    is_estimate: bool

    @abc.abstractmethod
    def read(self) -> CpuReading:
        """Cumulative energy, wraparound already unfolded. Raises MeteringError."""

    def supports_dram(self) -> bool:
        return False

    def provenance(self) -> dict[str, object]:
        return {"cpu_method": self.method}


@dataclass
class _RaplZone:
    path: Path
    range_uj: int
    last_raw_uj: int = 0
    total_uj: int = 0


class RaplCpu(CpuSource):
    """Package (and DRAM) energy from the powercap tree under `root`, all packages summed.

    Counters wrap at each zone's `max_energy_range_uj`: a reading below the previous one adds the range.
    That is exact as long as the zone is read at least once per wrap period (the meter's sampler reads
    every second; a wrap takes minutes).
    """

    method = "rapl"
    is_estimate = False

    def __init__(self, root: Path | str = RAPL_ROOT):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._packages: list[_RaplZone] = []
        self._dram: list[_RaplZone] = []
        zones = sorted(self.root.glob("intel-rapl:*")) if self.root.is_dir() else []
        for zone in zones:
            parts = zone.name.split(":")
            name = _read_text(zone / "name")
            if len(parts) == 2 and name.startswith("package"):
                self._packages.append(self._open(zone))
            elif len(parts) == 3 and name == "dram":
                self._dram.append(self._open(zone))
            # psys (the whole SoC on laptops) overlaps the packages; other subzones (core, uncore) are
            # parts of the package: neither is added.
        if not self._packages:
            raise MeteringError(f"no readable RAPL package zone under {self.root}")

    @staticmethod
    def _open(zone: Path) -> _RaplZone:
        try:
            raw = int(_read_text(zone / "energy_uj"))
            range_uj = int(_read_text(zone / "max_energy_range_uj"))
        except (OSError, ValueError) as e:
            raise MeteringError(f"RAPL zone {zone} is not readable ({e}); it is usually root-only") from e
        return _RaplZone(zone, range_uj, last_raw_uj=raw)

    @staticmethod
    def _advance(zone: _RaplZone) -> int:
        try:
            raw = int(_read_text(zone.path / "energy_uj"))
        except (OSError, ValueError) as e:
            raise MeteringError(f"RAPL zone {zone.path} could not be read: {e}") from e
        step = raw - zone.last_raw_uj
        if step < 0:  # wrapped (once; the sampler reads often enough that it cannot wrap twice)
            step += zone.range_uj
        zone.last_raw_uj = raw
        zone.total_uj += step
        return zone.total_uj

    def read(self) -> CpuReading:
        with self._lock:
            cpu = sum(self._advance(z) for z in self._packages)
            dram = sum(self._advance(z) for z in self._dram) if self._dram else None
        return CpuReading(float(cpu), None if dram is None else float(dram))

    def supports_dram(self) -> bool:
        return bool(self._dram)

    def provenance(self) -> dict[str, object]:
        return {
            "cpu_method": self.method,
            "cpu_source": str(self.root),
            "rapl_packages": len(self._packages),
            "rapl_dram_zones": len(self._dram),
        }


class CpuTimeEstimate(CpuSource):
    """Energy ≈ this process's CPU seconds × `watts_per_core`. An estimate, labelled as one.

    `cpu_time_s` is injectable for tests; by default `time.process_time` (all threads of the process).
    """

    method = "estimate:cpu-time"
    is_estimate = True

    def __init__(
        self, watts_per_core: float = DEFAULT_WATTS_PER_CORE, cpu_time_s: Callable[[], float] | None = None
    ):
        if not watts_per_core > 0:
            raise ValueError(f"watts_per_core = {watts_per_core!r}: must be a positive number of watts")
        self.watts_per_core = float(watts_per_core)
        self._cpu_time_s = cpu_time_s or time.process_time
        self._origin_s = self._cpu_time_s()

    def read(self) -> CpuReading:
        return CpuReading((self._cpu_time_s() - self._origin_s) * self.watts_per_core * 1e6, None)

    def provenance(self) -> dict[str, object]:
        return {
            "cpu_method": self.method,
            "cpu_source": "process CPU time (user+system, all threads) × watts per busy core",
            "cpu_watts_per_core": self.watts_per_core,
        }


def open_cpu(
    kind: str = "auto", rapl_root: Path | str = RAPL_ROOT, watts_per_core: float = DEFAULT_WATTS_PER_CORE
) -> CpuSource | None:
    """`auto`: RAPL if readable, else the estimate. `rapl`: RAPL or MeteringError. `estimate`, `none`."""
    if kind not in ("auto", "rapl", "estimate", "none"):
        raise ValueError(f"cpu = {kind!r}: must be one of 'auto', 'rapl', 'estimate', 'none'")
    if kind == "none":
        return None
    if kind in ("auto", "rapl"):
        try:
            return RaplCpu(rapl_root)
        except MeteringError:
            if kind == "rapl":
                raise
    return CpuTimeEstimate(watts_per_core)


def _read_text(path: Path) -> str:
    return path.read_text().strip()
