"""Windows, phases, repetition, idle baseline and errors — a FakeGPU on a FakeClock (deterministic)."""

from __future__ import annotations

import itertools
import random
import statistics
import time

import pytest

from t2a_ray.errors import MeteringError
from t2a_ray.metering import RESULT_COLUMNS, Clock, CpuTimeEstimate, Meter, MeterSettings
from t2a_ray.metering.fakes import FakeClock, FakeGPU, ReplayGPU


def rig(lag_s=0.0, interpolation="step", jitter_s=0.002, seed=0, **gpu_kw):
    clock = FakeClock(sample_jitter_s=jitter_s, seed=seed)
    gpu = FakeGPU(clock, tick_phase_s=random.Random(seed).random() * 0.1, lag_s=lag_s, **gpu_kw)
    meter = Meter(gpu, None, MeterSettings(counter_lag_s=lag_s, interpolation=interpolation), clock=clock)
    return clock, gpu, meter


def true_j(gpu, result):
    return gpu.true_energy_j(result.end_s, result.start_s)


@pytest.mark.parametrize("lag_s", [0.0, 0.05])
def test_step_windows_match_the_true_energy_below_the_tick(lag_s):
    clock, gpu, meter = rig(lag_s=lag_s, seed=int(lag_s * 100))
    rng = random.Random(1)
    errors = []
    for _ in range(25):
        clock.sleep(rng.uniform(0.05, 0.4))
        with meter.window() as w:
            gpu.busy(rng.uniform(0.3, 2.0), rng.choice([300.0, 650.0]))
        errors.append(w.result.gpu_energy_j / true_j(gpu, w.result) - 1)
        assert w.result.energy_method.startswith("gpu:nvml-counter-interp;")
    assert abs(statistics.mean(errors)) < 0.002
    assert max(abs(e) for e in errors) < 0.01
    # endpoint reads of the same counter would be off by up to a tick of energy (65 J at 650 W)


def test_inside_windows_the_sampler_reads_once_per_tick_and_never_merges_two():
    """The counter's tick is 100.3 ms here (not the nominal 100): the sampler learns it and reads midway
    between ticks inside windows — ~10 reads/s instead of 20 — without missing a tick."""
    clock, gpu, meter = rig(tick_s=0.1003, seed=3)
    rng = random.Random(3)
    windows = []
    for _ in range(6):
        clock.sleep(rng.uniform(0.05, 0.4))
        with meter.window() as w:
            for _ in range(5):  # power steps inside the window, as phases would make
                gpu.busy(rng.uniform(0.5, 2.0), rng.choice([300.0, 650.0]))
        windows.append(w.result)
        assert w.result.gpu_energy_j / true_j(gpu, w.result) - 1 == pytest.approx(0, abs=0.002)
    samples = meter.samples()
    reads_per_s = []
    for r in windows:
        ticks_seen = sorted({gpu.last_tick_s(t) for t in samples["t_s"] if r.start_s < t < r.end_s})
        assert all(
            b - a == pytest.approx(gpu.tick_s) for a, b in itertools.pairwise(ticks_seen)
        )  # none skipped
        reads_per_s.append(sum(r.start_s < t < r.end_s for t in samples["t_s"]) / r.window_s)
    # The first window still tightens the grid (a few dense reads around a tick, each time its error
    # doubles); after it, one read per tick. The plain 50 ms sampler would read 20 times a second.
    assert reads_per_s[0] < 14
    assert max(reads_per_s[1:]) < 11
    assert meter.provenance()["counter_period_s"] == pytest.approx(0.1003, abs=2e-4)


def test_read_per_tick_off_reads_at_the_plain_interval():
    clock, gpu, meter = rig(tick_s=0.1003, seed=3)
    meter.read_per_tick = False
    clock.sleep(1.0)
    with meter.window() as w:
        gpu.busy(5.0, 300.0)
    reads = sum(w.result.start_s < t < w.result.end_s for t in meter.samples()["t_s"])
    assert reads / w.result.window_s == pytest.approx(20, abs=1)
    assert meter.provenance()["in_window_sampling"] == "every window_sample_interval_s"


def test_linear_interpolation_leaks_energy_across_steps_which_step_does_not():
    results = {}
    for interpolation in ("linear", "step"):
        clock, gpu, meter = rig(interpolation=interpolation, seed=3)
        errs = []
        for _ in range(15):
            clock.sleep(0.17)
            with meter.window() as w:
                gpu.busy(1.0, 650.0)
            errs.append(w.result.gpu_energy_j / true_j(gpu, w.result) - 1)
        results[interpolation] = statistics.mean(errs)
    assert results["linear"] < -0.01  # −(P_busy − P_idle)·T/6 per end, as measured on the H100
    assert abs(results["step"]) < 0.002


def test_counter_wraparound_is_unfolded():
    # 200 J range: wraps every ~0.3 s at 650 W; a tick adds at most 65 J, so every wrap is seen
    clock, gpu, meter = rig(counter_range_mj=200_000, counter_start_mj=150_000)
    with meter.window() as w:
        gpu.busy(2.5, 650.0)
    assert w.result.gpu_energy_j == pytest.approx(true_j(gpu, w.result), rel=3e-3)
    assert w.result.gpu_energy_j > 1000


def test_phases_sum_to_the_window_and_unmarked_phases_are_none():
    clock, gpu, meter = rig()
    with meter.window() as w:
        clock.sleep(0.01)  # before the first mark: belongs to the first phase
        w("text_encoder")
        gpu.busy(0.15, 200.0)
        w("denoise")
        gpu.busy(1.2, 650.0)
        w("decode")
        gpu.busy(0.3, 250.0)
    r = w.result
    assert sum(r.phase_energy_j.values()) == pytest.approx(r.gpu_energy_j, rel=1e-12)
    assert r.phase_energy_j["denoise"] == pytest.approx(650 * 1.2, rel=0.03)
    cols = r.as_columns()
    assert tuple(cols) == RESULT_COLUMNS
    assert cols["vocoder_energy_j"] is None  # never marked: None, not 0
    assert cols["denoise_energy_j"] == r.phase_energy_j["denoise"]
    assert r.energy_method.endswith(";phases:gpu")


def test_no_marks_means_no_phase_energies():
    clock, gpu, meter = rig()
    with meter.window() as w:
        gpu.busy(0.5, 300.0)
    cols = w.result.as_columns()
    assert all(cols[f"{p}_energy_j"] is None for p in ("text_encoder", "denoise", "decode", "vocoder"))
    assert w.result.energy_method.endswith(";phases:none")


def test_measure_repeats_until_the_minimum_window_and_sums_phases_over_generations():
    clock, gpu, meter = rig()
    calls = []

    def generate(phases):
        calls.append(1)
        phases("text_encoder")
        gpu.busy(0.05, 200.0)
        phases("denoise")
        gpu.busy(0.6, 650.0)

    r = meter.measure(generate, min_window_s=2.0)
    assert r.generations_in_window == len(calls) == 4  # 3 × 0.65 s < 2 s ≤ 4 × 0.65 s
    assert r.window_s >= 2.0
    assert r.phase_energy_j["denoise"] == pytest.approx(4 * 0.6 * 650, rel=0.02)
    assert sum(r.phase_energy_j.values()) == pytest.approx(r.gpu_energy_j)
    assert meter.measure(generate, min_window_s=0.0).generations_in_window == 1  # at least once
    assert meter.measure(generate, min_window_s=100.0, max_generations=2).generations_in_window == 2
    with pytest.raises(ValueError, match="min_window_s = -1"):
        meter.measure(generate, min_window_s=-1)


def test_measure_runs_at_least_min_generations_and_both_minimums_must_hold():
    clock, gpu, meter = rig()
    calls = []

    def generate(phases):
        calls.append(1)
        phases("denoise")
        gpu.busy(0.65, 650.0)

    r = meter.measure(generate, min_generations=3)
    assert r.generations_in_window == len(calls) == 3
    assert r.window_s == pytest.approx(3 * 0.65, abs=0.05)
    assert r.gpu_energy_j == pytest.approx(3 * 0.65 * 650, rel=0.03)
    assert r.phase_energy_j["denoise"] == pytest.approx(r.gpu_energy_j)
    # the window's length decides when it needs more calls than min_generations ...
    assert meter.measure(generate, min_window_s=2.0, min_generations=2).generations_in_window == 4
    # ... and min_generations when the window is long enough sooner
    assert meter.measure(generate, min_window_s=0.5, min_generations=5).generations_in_window == 5
    assert meter.measure(generate, min_window_s=2.0, min_generations=4).generations_in_window == 4
    # max_generations caps the calls whatever the minimums
    assert (
        meter.measure(generate, min_window_s=0.0, min_generations=5, max_generations=2).generations_in_window
        == 2
    )


@pytest.mark.parametrize("n", [0, -1])
def test_min_generations_below_one_is_refused_before_any_work(n):
    clock, gpu, meter = rig()
    calls = []
    with pytest.raises(ValueError, match=f"min_generations = {n}: must be ≥ 1"):
        meter.measure(lambda phases: calls.append(1), min_generations=n)
    assert calls == []


def test_idle_baseline_gives_net_energy():
    clock, gpu, meter = rig()
    with meter.window() as w:
        gpu.busy(1.0, 500.0)
    assert w.result.idle_power_w is None and w.result.gpu_energy_net_j is None  # no baseline yet: None, not 0
    idle = meter.measure_idle(3.0)
    assert idle == pytest.approx(70.0, rel=1e-3) and meter.idle_power_w == idle
    with meter.window() as w:
        gpu.busy(1.0, 500.0)
    r = w.result
    assert r.gpu_energy_net_j == pytest.approx(r.gpu_energy_j - idle * r.window_s)
    assert r.gpu_energy_net_j == pytest.approx(430.0, rel=0.01)
    assert r.as_columns()["avg_power_w"] == pytest.approx(r.gpu_energy_j / r.window_s)
    with pytest.raises(ValueError, match="seconds = 0"):
        meter.measure_idle(0)


def test_sync_runs_at_both_boundaries_and_every_mark():
    clock, gpu, meter = rig()
    log = []
    meter.sync = lambda: log.append(clock.now_s())
    with meter.window() as w:
        w("denoise")
        gpu.busy(0.2, 300.0)
        w("decode")
    assert len(log) == 4


def test_temperatures_and_window_length():
    clock, gpu, meter = rig()
    with meter.window() as w:
        gpu.temperature = 55.0
        gpu.busy(0.5, 300.0)
    r = w.result
    assert (r.temperature_start_c, r.temperature_end_c) == (40.0, 55.0)
    assert r.window_s == pytest.approx(0.5)


def test_without_a_counter_power_is_integrated_and_labelled():
    clock, gpu, meter = rig(has_counter=False)
    with meter.window() as w:
        gpu.busy(1.0, 500.0)
    assert w.result.energy_method.startswith("gpu:nvml-power-integral;")
    assert w.result.gpu_energy_j == pytest.approx(500.0, rel=0.03)


def test_intermittent_read_errors_are_survived():
    clock, gpu, meter = rig()
    meter.start()
    with meter.window() as w:
        gpu.busy(0.3, 400.0)
        gpu.fail_reads(3)
        gpu.busy(0.7, 400.0)
    assert meter.sampler_errors == 3
    assert w.result.gpu_energy_j == pytest.approx(true_j(gpu, w.result), rel=5e-3)


def test_a_gpu_that_stops_answering_raises_metering_error_with_the_cause():
    clock, gpu, meter = rig(has_power=False)
    meter.start()
    with pytest.raises(MeteringError, match="no energy counter or power samples cover the window") as info:
        with meter.window():
            gpu.busy(0.2, 400.0)
            gpu.fail_reads(10**6, "GPU is lost")
            gpu.busy(0.5, 400.0)
    assert "GPU is lost" in str(info.value.__cause__)


def test_an_error_in_the_work_leaves_no_result_and_closes_the_window():
    clock, gpu, meter = rig()
    with pytest.raises(RuntimeError, match="boom"):
        with meter.window() as w:
            raise RuntimeError("boom")
    assert w.result is None
    with pytest.raises(RuntimeError, match="closed window"):
        w("denoise")
    with meter.window() as w2:
        with pytest.raises(ValueError, match="phase = ''"):
            w2("")


def test_bad_arguments_name_the_value_and_what_is_allowed():
    with pytest.raises(
        ValueError, match=r"sample_interval_s = 0.5: must be a number of seconds in \(0, 0.05\]"
    ):
        MeterSettings(sample_interval_s=0.5)
    with pytest.raises(ValueError, match="interpolation = 'power'"):
        MeterSettings(interpolation="power")


def test_cpu_only_meter_labels_its_estimate_and_reports_no_gpu_figures():
    cpu_s = [0.0]
    clock = FakeClock()
    meter = Meter(None, CpuTimeEstimate(watts_per_core=10.0, cpu_time_s=lambda: cpu_s[0]), clock=clock)

    def generate(phases):
        phases("text_encoder")
        cpu_s[0] += 0.1
        clock.sleep(0.1)
        phases("denoise")
        cpu_s[0] += 1.0
        clock.sleep(1.0)

    r = meter.measure(generate)
    cols = r.as_columns()
    assert cols["energy_method"] == "gpu:none;cpu:estimate:cpu-time;dram:none;phases:estimate:cpu-time"
    assert cols["gpu_energy_j"] is None and cols["gpu_energy_net_j"] is None and cols["avg_power_w"] is None
    assert cols["idle_power_w"] is None and meter.measure_idle(1.0) is None
    assert cols["cpu_energy_j"] == pytest.approx(11.0)
    assert cols["dram_energy_j"] is None
    assert cols["denoise_energy_j"] == pytest.approx(10.0) and cols["text_encoder_energy_j"] == pytest.approx(
        1.0
    )
    prov = meter.provenance()
    assert (
        prov["gpu_index"] is None
        and prov["cpu_method"] == "estimate:cpu-time"
        and prov["cpu_watts_per_core"] == 10.0
    )


def test_no_devices_at_all_is_labelled_none():
    r = Meter(None, None, clock=FakeClock()).measure(lambda phases: phases("denoise"))
    assert r.energy_method == "gpu:none;cpu:none;dram:none;phases:none"
    assert r.cpu_energy_j is None and r.phase_energy_j == {}


def test_provenance_of_a_gpu():
    clock, gpu, meter = rig()
    meter.start()
    prov = meter.provenance()
    assert prov["gpu_name"] == "Fake H100" and prov["gpu_uuid"].startswith("GPU-") and prov["gpu_index"] == 0
    assert prov["power_limit_w"] == 700.0 and prov["driver_version"] == "fake-driver"
    assert prov["counter_period_s"] == pytest.approx(0.1, abs=0.003)
    assert prov["node"] and prov["cpu_method"] == "none"


def test_the_real_sampler_thread_on_real_time():
    gpu = FakeGPU(Clock(), tick_s=0.02)  # fast ticks keep this test short
    meter = Meter(gpu, None, MeterSettings(sample_interval_s=0.002, window_sample_interval_s=0.005))
    with meter:
        with meter.window() as w:
            gpu.busy(1.0, 500.0)
        time.sleep(0.01)
    assert not meter.running
    # However late the thread's samples come on a loaded machine, each end of the window lies inside its
    # counter tick: off by less than a tick's energy at each end (FakeClock tests the error inside it).
    tick_j = 500.0 * gpu.tick_s
    assert w.result.energy_method.startswith("gpu:nvml-counter")
    assert w.result.gpu_energy_j == pytest.approx(true_j(gpu, w.result), abs=2 * tick_j)


def test_a_window_names_the_throttle_reasons_seen_during_it():
    clock, gpu, meter = rig()
    with meter.window() as w:
        gpu.busy(0.5, 650.0)
    assert w.result.throttle_reasons == "" and w.result.throttled is False
    with meter.window() as w:
        gpu.busy(0.3, 650.0)
        gpu.reasons_mask = 0x40  # a thermal slowdown, seen by the sampler mid-window only
        gpu.busy(0.3, 650.0)
        gpu.reasons_mask = 0x1
        gpu.busy(0.3, 650.0)
    cols = w.result.as_columns()
    assert cols["throttle_reasons"] == "gpu_idle,hw_thermal_slowdown" and cols["throttled"] is True
    gpu.reasons_mask = 0x1  # idle is not throttling
    with meter.window() as w:
        gpu.busy(0.3, 650.0)
    assert w.result.throttle_reasons == "gpu_idle" and w.result.throttled is False


def test_a_gpu_that_cannot_tell_its_reasons_leaves_the_columns_null():
    clock = FakeClock()
    gpu = ReplayGPU(clock, [0.0, 0.1, 0.2, 0.3, 10.0], [0, 7, 14, 21, 700], [70_000] * 5)
    meter = Meter(gpu, None, clock=clock)
    with meter.window() as w:
        clock.sleep(1.0)
    assert w.result.throttle_reasons is None and w.result.throttled is None


def test_power_integral_mode_meters_with_power_although_the_counter_works():
    clock = FakeClock()
    gpu = FakeGPU(clock)
    meter = Meter(gpu, None, MeterSettings(gpu_energy="power-integral"), clock=clock)
    with meter.window() as w:
        gpu.busy(1.0, 600.0)
    assert w.result.energy_method.startswith("gpu:nvml-power-integral;")
    assert w.result.gpu_energy_j == pytest.approx(true_j(gpu, w.result), rel=0.05)
    with pytest.raises(ValueError, match="gpu_energy = 'power'"):
        MeterSettings(gpu_energy="power")


def test_cooldown_waits_outside_the_window_until_the_card_is_cool_or_the_limit():
    clock = FakeClock()
    gpu = FakeGPU(clock, temperature_c=90.0)
    meter = Meter(gpu, None, MeterSettings(cooldown_c=80.0, cooldown_max_s=5.0), clock=clock)
    meter.start()
    t0 = clock.now_s()
    with meter.window() as w:
        gpu.busy(0.5, 600.0)
    assert w.result.start_s - t0 >= 5.0  # it waited, and the wait is not in the window
    assert w.result.window_s == pytest.approx(0.5, abs=0.01)
    gpu.temperature = 70.0
    t0 = clock.now_s()
    with meter.window() as w:
        gpu.busy(0.5, 600.0)
    assert w.result.start_s - t0 < 0.1
