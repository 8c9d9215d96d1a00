"""CPU and DRAM: RAPL from a fake powercap tree (with wraparound), else a labelled estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2a_ray.errors import MeteringError
from t2a_ray.metering import CpuTimeEstimate, Meter, RaplCpu, open_cpu
from t2a_ray.metering.fakes import FakeClock, FakeGPU

RANGE_UJ = 262_143_328_850


def zone(root: Path, name: str, label: str, energy_uj: int, range_uj: int = RANGE_UJ) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(label + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return path


def set_uj(path: Path, value: int) -> None:
    (path / "energy_uj").write_text(f"{value}\n")


@pytest.fixture
def rapl_tree(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "powercap"
    return {
        "root": root,
        "pkg0": zone(root, "intel-rapl:0", "package-0", 1_000_000),
        "core0": zone(root, "intel-rapl:0:0", "core", 500_000),
        "dram0": zone(root, "intel-rapl:0:1", "dram", 2_000_000),
        "pkg1": zone(root, "intel-rapl:1", "package-1", RANGE_UJ - 1_000_000),  # about to wrap
        "psys": zone(root, "intel-rapl:2", "psys", 9_000_000),
    }


def test_rapl_sums_packages_and_dram_and_unfolds_wraparound(rapl_tree):
    rapl = RaplCpu(rapl_tree["root"])
    assert rapl.supports_dram() and not rapl.is_estimate and rapl.method == "rapl"
    assert rapl.read().cpu_uj == 0.0
    set_uj(rapl_tree["pkg0"], 3_000_000)  # +2 J
    set_uj(rapl_tree["pkg1"], 2_000_000)  # wrapped: +3 J
    set_uj(rapl_tree["dram0"], 2_500_000)  # +0.5 J
    set_uj(rapl_tree["core0"], 99_000_000)  # part of package 0: not added again
    set_uj(rapl_tree["psys"], 99_000_000)  # overlaps the packages: not added
    reading = rapl.read()
    assert reading.cpu_uj == pytest.approx(5_000_000)
    assert reading.dram_uj == pytest.approx(500_000)
    prov = rapl.provenance()
    assert prov["rapl_packages"] == 2 and prov["rapl_dram_zones"] == 1


def test_a_meter_with_rapl_measures_cpu_dram_and_phases_without_a_gpu(rapl_tree):
    clock = FakeClock()
    meter = Meter(None, RaplCpu(rapl_tree["root"]), clock=clock)
    pkg = [1_000_000]

    def work(phases):
        phases("denoise")
        pkg[0] += 4_000_000
        set_uj(rapl_tree["pkg0"], pkg[0])
        set_uj(rapl_tree["dram0"], 3_000_000)
        clock.sleep(1.0)

    r = meter.measure(work)
    assert r.energy_method == "gpu:none;cpu:rapl;dram:rapl;phases:rapl"
    assert r.cpu_energy_j == pytest.approx(4.0) and r.dram_energy_j == pytest.approx(1.0)
    assert r.as_columns()["denoise_energy_j"] == pytest.approx(4.0)


def test_gpu_and_rapl_together_keep_phases_on_the_gpu(rapl_tree):
    clock = FakeClock()
    gpu = FakeGPU(clock, tick_phase_s=0.03)
    meter = Meter(gpu, RaplCpu(rapl_tree["root"]), clock=clock)
    with meter.window() as w:
        w("denoise")
        gpu.busy(1.0, 400.0)
        set_uj(rapl_tree["pkg0"], 21_000_000)
    assert w.result.energy_method == "gpu:nvml-counter-interp;cpu:rapl;dram:rapl;phases:gpu"
    assert w.result.cpu_energy_j == pytest.approx(20.0)
    assert w.result.phase_energy_j["denoise"] == pytest.approx(w.result.gpu_energy_j)


def test_unreadable_rapl_falls_back_to_the_labelled_estimate(tmp_path):
    root = tmp_path / "powercap"
    z = zone(root, "intel-rapl:0", "package-0", 1)
    (z / "energy_uj").unlink()
    (z / "energy_uj").mkdir()  # reading it fails, as a root-only file does for a user
    with pytest.raises(MeteringError, match="usually root-only"):
        RaplCpu(root)
    with pytest.raises(MeteringError, match="no readable RAPL package zone"):
        RaplCpu(tmp_path / "missing")
    assert isinstance(open_cpu("auto", root), CpuTimeEstimate)
    with pytest.raises(MeteringError):
        open_cpu("rapl", root)
    assert open_cpu("none") is None
    with pytest.raises(ValueError, match="cpu = 'gpu'"):
        open_cpu("gpu")


def test_the_estimate_is_cpu_seconds_times_watts_per_core():
    t = [5.0]
    est = CpuTimeEstimate(watts_per_core=12.0, cpu_time_s=lambda: t[0])
    assert est.is_estimate and est.method == "estimate:cpu-time" and est.read().dram_uj is None
    t[0] = 7.5
    assert est.read().cpu_uj == pytest.approx(30e6)
    assert est.provenance()["cpu_watts_per_core"] == 12.0
    with pytest.raises(ValueError, match="watts_per_core = 0"):
        CpuTimeEstimate(watts_per_core=0)
