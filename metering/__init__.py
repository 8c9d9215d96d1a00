"""GPU, CPU and DRAM energy of windows of work, with named phases.

    from t2a_ray.metering import MeterSettings, open_meter
    meter = open_meter(device, MeterSettings(sample_interval_s=0.005))  # the device's GPU, or none
    meter.measure_idle(10)                           # idle baseline for net energy
    res = meter.measure(lambda phases: adapter.generate(prompts, params, seed, phases), min_window_s=2.0)
    row.update(res.as_columns())

`device` (`orchestrator.device.TorchDevice`) says whether the process computes on CUDA, how to wait
for it (`sync`) and the UUID torch sees, so that a Ray actor (which sees its GPU as CUDA 0) reports the
real NVML index, name and UUID (without a UUID the CUDA driver is asked through ctypes). A `--gpus 0`
run: ``open_meter(None)``.

Importing this package imports neither torch nor ray (nor pynvml, until a GPU is opened).
Devices and settings are passed in (`Meter(gpu, cpu, MeterSettings(...))`); `fakes.py` has stand-ins
for tests.
Figures on the H100: benchmarks/results/meter_precision_h100.md.
"""

from t2a_ray.errors import MeteringError
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.cpu import CpuReading, CpuSource, CpuTimeEstimate, RaplCpu, open_cpu
from t2a_ray.metering.gpu import GPU, NVMLGPU, cuda_device_uuid, find_visible_gpu
from t2a_ray.metering.meter import (
    Meter,
    MeteredDevice,
    MeterSettings,
    Window,
    WindowResult,
    open_meter,
    visible_gpu,
)
from t2a_ray.schema import PHASE_COLUMNS, RESULT_COLUMNS

__all__ = [
    "Clock",
    "CpuReading",
    "CpuSource",
    "CpuTimeEstimate",
    "GPU",
    "Meter",
    "MeterSettings",
    "MeteredDevice",
    "MeteringError",
    "NVMLGPU",
    "PHASE_COLUMNS",
    "RESULT_COLUMNS",
    "RaplCpu",
    "Window",
    "WindowResult",
    "cuda_device_uuid",
    "find_visible_gpu",
    "open_cpu",
    "open_meter",
    "visible_gpu",
]
