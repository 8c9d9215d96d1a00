"""GPU, CPU and DRAM energy of windows of work, with named phases.

    from t2a_ray.metering import open_meter
    meter = open_meter(sample_interval_s=0.005)      # this process's GPU, or none
    meter.sync = torch.cuda.synchronize              # how to wait for the device (default: no-op)
    meter.measure_idle(10)                           # idle baseline for net energy
    res = meter.measure(lambda phases: adapter.generate(prompts, params, seed, phases), min_window_s=2.0)
    row.update(res.as_columns())

In a Ray actor (which sees its GPU as CUDA 0), pass the UUID torch sees so that the real NVML index,
name and UUID are reported: ``open_meter(cuda_uuid=str(torch.cuda.get_device_properties(0).uuid))``
(without it the CUDA driver is asked through ctypes). A `--gpus 0` run: ``open_meter(use_gpu=False)``.

Importing this package imports neither torch nor ray (nor pynvml, until a GPU is opened).
Devices are passed in (`Meter(gpu=..., cpu=...)`); `fakes.py` has stand-ins for tests.
Figures on the H100: benchmarks/results/meter_precision_h100.md.
"""

from t2a_ray.errors import MeteringError
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.cpu import CpuReading, CpuSource, CpuTimeEstimate, RaplCpu, open_cpu
from t2a_ray.metering.gpu import GPU, NVMLGPU, cuda_device_uuid, find_visible_gpu
from t2a_ray.metering.meter import PHASE_COLUMNS, RESULT_COLUMNS, Meter, Window, WindowResult, open_meter

__all__ = [
    "Clock",
    "CpuReading",
    "CpuSource",
    "CpuTimeEstimate",
    "GPU",
    "Meter",
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
]
