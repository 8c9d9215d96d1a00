"""NVML behind the device layer: readings, error translation, and the real index behind CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import subprocess
import sys

import pytest

from t2a_ray.errors import MeteringError
from t2a_ray.metering import NVMLGPU, CpuTimeEstimate, Meter, find_visible_gpu, open_meter, visible_gpu
from t2a_ray.metering.fakes import FakeClock, FakeCudaDevice, FakeGPU, FakeNVML
from t2a_ray.metering.gpu import reason_names, throttling

UUIDS = [f"GPU-{i}{i}{i}{i}aaaa-0000-0000-0000-00000000000{i}" for i in range(4)]


def fleet(**kw) -> FakeNVML:
    clock = FakeClock()
    return FakeNVML(
        [FakeGPU(clock, index=i, uuid=UUIDS[i], name="NVIDIA H100 80GB HBM3") for i in range(4)], **kw
    )


def test_nvml_gpu_reads_counter_and_instant_power_in_one_field_call():
    nvml = fleet()
    gpu = NVMLGPU(2, nvml)
    assert gpu.supports_energy_counter() and gpu.supports_power() and gpu.power_kind() == "instant"
    energy, power = gpu.energy_and_power()
    assert energy == 0 and power == 70_000
    assert (gpu.name(), gpu.uuid(), gpu.index) == ("NVIDIA H100 80GB HBM3", UUIDS[2], 2)
    assert gpu.power_limit_w() == 700.0 and gpu.temperature_c() == 40.0
    assert gpu.driver_version() == "550.00" and gpu.nvml_version() == "12.550"
    assert gpu.counter_lag_hint_s() == 0.005 and gpu.power_delay_hint_s() == 0.1
    gpu.close()
    gpu.close()
    assert nvml.initialised == 0


def test_clocks_event_reasons_are_read_and_named_and_a_failure_is_none():
    nvml = fleet()
    gpu = NVMLGPU(1, nvml)
    nvml.gpus[1].reasons_mask = 0x1 | 0x40
    assert gpu.clocks_event_reasons() == 0x41
    assert reason_names(0x41) == ("gpu_idle", "hw_thermal_slowdown")
    assert throttling(reason_names(0x41)) == ("hw_thermal_slowdown",)
    assert reason_names(0x1000) == ("0x1000",)  # a bit a newer driver adds keeps its value
    nvml.fail("nvmlDeviceGetCurrentClocksEventReasons", 3)
    assert gpu.clocks_event_reasons() is None


def test_without_the_field_api_it_reads_separately_and_says_the_power_is_a_1s_average():
    gpu = NVMLGPU(0, fleet(fields=False))
    assert gpu.power_kind() == "average-1s" and gpu.power_delay_hint_s() == 0.5
    assert gpu.energy_and_power() == (0, 70_000)


def test_unsupported_counter_is_probed_not_raised():
    nvml = fleet()
    nvml.fail("nvmlDeviceGetTotalEnergyConsumption", 3)
    gpu = NVMLGPU(0, nvml)
    assert not gpu.supports_energy_counter() and gpu.supports_power()
    assert gpu.energy_and_power() == (None, 70_000)


def test_nvml_errors_become_metering_errors_with_the_nvml_error_as_cause():
    nvml = fleet()
    gpu = NVMLGPU(1, nvml)
    nvml.fail("nvmlDeviceGetFieldValues", 15)
    with pytest.raises(
        MeteringError, match="NVML nvmlDeviceGetFieldValues failed on GPU 1: GPU is lost"
    ) as info:
        gpu.energy_and_power()
    assert isinstance(info.value.__cause__, FakeNVML.NVMLError)
    nvml2 = fleet()
    gpu2 = NVMLGPU(1, nvml2)
    nvml2.fail("nvmlDeviceGetTotalEnergyConsumption", 15)  # a per-field status, not an exception
    with pytest.raises(MeteringError, match="for field 83 on GPU 1: GPU is lost"):
        gpu2.energy_and_power()
    broken = fleet()
    broken.fail("nvmlInit", 999)
    with pytest.raises(MeteringError, match="NVML nvmlInit failed"):
        NVMLGPU(0, broken)


@pytest.mark.parametrize(
    "visible, ordinal, expected",
    [
        (None, 0, 0),  # nothing hidden: CUDA 0 is NVML 0
        (None, 3, 3),
        ("2", 0, 2),  # a Ray actor given GPU 2 sees it as CUDA 0
        ("3,1", 1, 1),
        (UUIDS[3][:12], 0, 3),  # a UUID prefix
        ("", 0, None),
        ("-1", 0, None),
        ("1,-1,2", 1, None),  # CUDA stops at the first invalid entry
        ("2", 1, None),
        ("7", 0, None),
        (None, 5, None),
    ],
)
def test_cuda_visible_devices_maps_to_the_real_index(visible, ordinal, expected):
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    index, how = find_visible_gpu(fleet(), ordinal, env=env, ask_cuda_driver=False)
    assert index == expected, how
    assert how


def test_a_cuda_uuid_decides_whatever_the_environment_says():
    nvml = fleet()
    bare = UUIDS[1][4:]  # torch prints UUIDs without the "GPU-" prefix
    assert (
        find_visible_gpu(nvml, 0, cuda_uuid=bare, env={"CUDA_VISIBLE_DEVICES": "0"}, ask_cuda_driver=False)[0]
        == 1
    )
    index, how = find_visible_gpu(nvml, 0, cuda_uuid="MIG-1234", env={}, ask_cuda_driver=False)
    assert index is None and "MIG" in how


def test_open_meter_reports_the_real_gpu_of_a_ray_actor():
    gpu, notes = visible_gpu(FakeCudaDevice(UUIDS[2]), nvml=fleet(), env={"CUDA_VISIBLE_DEVICES": "2"})
    meter = Meter(gpu, CpuTimeEstimate(), notes=notes)
    prov = meter.provenance()
    assert (
        prov["gpu_index"] == 2
        and prov["gpu_uuid"] == UUIDS[2]
        and prov["gpu_name"] == "NVIDIA H100 80GB HBM3"
    )
    assert prov["driver_version"] == "550.00" and prov["power_limit_w"] == 700.0
    assert prov["cuda_visible_devices"] == "2" and "uuid match" in prov["gpu_found_by"]
    assert prov["cpu_method"] == "estimate:cpu-time"
    assert meter.counter_lag_s == 0.005 and meter.interpolation == "step"


def test_open_meter_without_a_visible_gpu():
    cuda = FakeCudaDevice()
    gpu, notes = visible_gpu(cuda, nvml=fleet(), env={"CUDA_VISIBLE_DEVICES": ""})
    assert gpu is None and "hides every GPU" in Meter(gpu, None, notes=notes).provenance()["gpu_found_by"]
    with pytest.raises(
        MeteringError, match="no NVIDIA GPU visible .*; run with --gpus 0 to measure on the CPU"
    ):
        visible_gpu(cuda, nvml=fleet(), env={"CUDA_VISIBLE_DEVICES": ""}, require_gpu=True)
    broken = fleet()
    broken.fail("nvmlInit", 999)
    gpu, notes = visible_gpu(cuda, nvml=broken, env={})
    assert gpu is None and "nvmlInit failed" in Meter(gpu, None, notes=notes).provenance()["gpu_found_by"]
    with pytest.raises(MeteringError, match="run with --gpus 0"):
        visible_gpu(cuda, nvml=broken, env={}, require_gpu=True)
    assert open_meter(None).gpu is None
    assert open_meter(FakeCudaDevice(is_cuda=False)).gpu is None


def test_importing_the_meter_imports_neither_torch_nor_ray():
    code = "import sys, t2a_ray.metering; print(sorted(m for m in ('torch', 'ray', 'pynvml') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
