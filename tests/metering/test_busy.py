"""The GPU's busy fraction over a window, from NVML's utilisation samples read after it."""

from __future__ import annotations

import time

import pytest

from t2a_ray.metering import NVMLGPU
from t2a_ray.metering.busy import busy_fraction, window_busy_fraction
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.fakes import FakeClock, FakeGPU, FakeNVML


def test_each_sample_weighs_by_the_part_of_its_period_inside_the_window():
    samples = [(0.0, 100.0), (1.0, 100.0), (2.0, 50.0), (3.0, 0.0)]  # each covers the second before it
    assert busy_fraction(samples, 1.0, 3.0) == pytest.approx(0.25)  # (50 + 0) / 2 seconds
    assert busy_fraction(samples, 0.5, 2.0) == pytest.approx((0.5 * 1.0 + 1.0 * 0.5) / 1.5)
    assert busy_fraction(samples, -0.5, 0.0) == pytest.approx(1.0)  # the first sample: the median period


def test_too_few_samples_inside_the_window_give_no_figure():
    samples = [(0.0, 100.0), (1.0, 100.0)]
    assert busy_fraction(samples, 0.5, 4.0) is None  # covers 0.5 s of 3.5 s
    assert busy_fraction(samples[:1], 0.0, 1.0) is None


def test_nvml_samples_are_read_after_the_window_on_the_host_clock():
    nvml = FakeNVML([FakeGPU(FakeClock(), index=0, uuid="GPU-0", name="NVIDIA H200")])
    gpu, clock = NVMLGPU(0, nvml), Clock()
    now = time.time()
    nvml.utilization[0] = [(now - 3 + 0.5 * i, 80.0 if i < 5 else 20.0) for i in range(8)]
    end_s = clock.now_s() - 1.0  # the window: the 2 s before the last second, in the meter's clock
    busy = window_busy_fraction(gpu, clock, end_s - 2.0, end_s)
    assert busy == pytest.approx(0.8, abs=0.02)  # the busy part; the idle second after it left out
    assert window_busy_fraction(None, clock, 0.0, 1.0) is None  # the CPU: no figure
    nvml.fail("nvmlDeviceGetSamples", 3)
    assert window_busy_fraction(gpu, clock, end_s - 2.0, end_s) is None  # a failed read: null, not 0
