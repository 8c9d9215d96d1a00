"""doctor's checks on the fakes: a normal counter passes, a part-time one fails coverage, a frozen one
fails the counter check, one with a small phase effect passes coverage with the effect named — each a
FakeGPU subclass on a FakeClock, its power following the injected square wave. The coverage statistic
is also checked on its own and on the square waves recorded on two H200s."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest

from t2a_ray.metering import Clock, doctor
from t2a_ray.metering.fakes import (
    FakeClock,
    FakeGPU,
    FrozenCounterGPU,
    PartTimeCounterGPU,
    PhaseEffectCounterGPU,
)

#: The square waves of the two H200s' full doctor run (`benchmarks/results/doctor_h200.md`), kept as a fixture
#: so that a rerun of the doctor there leaves this test on the figures it was written for.
H200_SQUARE_WAVES = Path(__file__).parents[1] / "fixtures" / "doctor_h200_square_wave.json"


def checks_of(cls, profile=doctor.QUICK, **kw):
    clock = FakeClock(sample_jitter_s=0.001, seed=3)
    gpu = cls(clock, tick_phase_s=0.037, **kw)
    checks = doctor.run_gpu_checks(gpu, clock, lambda s: gpu.busy(s, 600.0), profile)
    assert [c.number for c in checks] == [1, 2, 3, 4, 5, 6]
    return {c.number: c for c in checks}


def test_a_normal_counter_passes_every_check():
    checks = checks_of(FakeGPU)
    assert doctor.worst(list(checks.values())) == doctor.PASS, [c.figure for c in checks.values()]
    assert checks[1].data["period_s"] == pytest.approx(0.1, abs=0.002)
    # 25 ms at 600 W over a 70 W idle: the busy energy of one period, the same at every offset
    busy = [x for v in checks[2].data["busy_j_per_period"].values() for x in v]
    assert min(busy) == pytest.approx(0.025 * 530, rel=0.01) and max(busy) == pytest.approx(
        0.025 * 530, rel=0.01
    )
    assert checks[5].data["meter_cv"] < 0.005
    assert checks[6].data["idle_power_w"] == pytest.approx(70.0, rel=0.01)


def test_a_counter_that_sees_25_ms_of_each_100_ms_fails_coverage_only():
    checks = checks_of(PartTimeCounterGPU, covered_s=0.025)  # the quick mode's 2 repeats decide it
    assert checks[2].data["repeats"] == doctor.QUICK.coverage_repeats == 2
    assert checks[2].status == doctor.FAIL
    assert checks[2].data["anova_p"] < doctor.COVERAGE_P
    coverage = checks[2].data["coverage"].values()
    assert min(coverage) < 0.1 and max(coverage) > 3.0  # from ~0 to ~4× the true busy energy
    assert "beyond their CI" in checks[2].figure
    assert "misses part of the work" in checks[2].fix
    # on a steady load it agrees with power: why the square wave is needed
    assert checks[1].status == checks[3].status == doctor.PASS


@pytest.mark.parametrize("profile", [doctor.QUICK, doctor.FULL], ids=["quick", "full"])
def test_a_counter_that_reads_a_burst_12_percent_off_by_its_phase_passes_with_the_effect_named(profile):
    checks = checks_of(PhaseEffectCounterGPU, profile, effect=0.12)
    assert doctor.worst(list(checks.values())) == doctor.PASS, [c.figure for c in checks.values()]
    coverage = checks[2].data["coverage"].values()
    assert min(coverage) == pytest.approx(0.88, abs=0.01) and max(coverage) == pytest.approx(1.12, abs=0.01)
    figure = checks[2].figure
    assert "largest effect +12." in figure or "largest effect -12." in figure
    assert "within ±25 %" in figure and "the offsets differ (ANOVA p = " in figure


def test_a_counter_that_reads_a_burst_40_percent_off_by_its_phase_fails_coverage():
    checks = checks_of(PhaseEffectCounterGPU, effect=0.4)
    assert checks[2].status == doctor.FAIL and "outside ±25 % beyond their CI" in checks[2].figure
    assert all(checks[n].status == doctor.PASS for n in (1, 3, 4, 5, 6))


def test_a_frozen_counter_fails_the_counter_check_with_the_fix():
    checks = checks_of(FrozenCounterGPU)
    assert checks[1].status == doctor.FAIL and checks[1].figure.startswith("energy counter frozen")
    assert "metering: {gpu: power-integral}" in checks[1].fix
    assert checks[2].status == doctor.FAIL
    # the meter falls back to integrated power, and says so
    assert checks[5].data["windows"][0]["method"].startswith("gpu:nvml-power-integral")


def test_a_missing_counter_fails_the_counter_check():
    clock = FakeClock()
    check = doctor.check_counter(FakeGPU(clock, has_counter=False), clock, 1.0)
    assert check.status == doctor.FAIL and "power-integral" in check.fix


def test_a_throttling_card_warns_with_the_reason():
    clock = FakeClock()
    gpu = FakeGPU(clock)
    gpu.reasons_mask = 0x1 | 0x4  # idle (not throttling) and the software power cap
    check = doctor.check_state(gpu, clock, 0.5)
    assert check.status == doctor.WARN
    assert check.data["reasons"] == ("gpu_idle", "sw_power_cap")
    assert "sw_power_cap" in check.fix and "gpu_idle" not in check.fix
    gpu.reasons_mask = 0x1
    assert doctor.check_state(gpu, clock, 0.5).status == doctor.PASS


def test_anova_separates_offset_means_from_the_spread_of_repeats():
    apart = [[1.0, 1.1], [4.0, 4.1], [0.0, 0.1]]
    together = [[1.0, 1.3], [1.2, 0.9], [1.1, 1.0]]
    assert doctor._anova_p(apart) < 1e-3
    assert doctor._anova_p(together) > 0.5
    assert doctor._anova_p([[2.0, 2.0], [2.0, 2.0]]) == 1.0  # no spread at all: nothing depends
    assert doctor._anova_p([[2.0, 2.0], [3.0, 3.0]]) == 0.0


def test_coverage_cis_hold_their_level_with_two_repeats_per_offset():
    # 8 offsets × 2 repeats (the quick mode's), a true phase effect and noise: the true coverage falls
    # inside each offset's 95 % CI about 95 % of the time
    rng = random.Random(1)
    true_j = [10.0, 11.0, 9.0, 10.5, 10.0, 8.8, 10.2, 10.5]
    true_coverage = [x / statistics.mean(true_j) for x in true_j]
    hits = trials = 0
    for _ in range(1500):
        stat = doctor.coverage_stats({k: [rng.gauss(x, 0.4) for _ in range(2)] for k, x in enumerate(true_j)})
        hits += sum(lo <= true_coverage[k] <= hi for k, (lo, hi) in stat.ci.items())
        trials += len(true_j)
    assert hits / trials == pytest.approx(0.95, abs=0.01)


def test_coverage_fails_a_decided_excess_warns_an_undecided_one_and_passes_a_small_one():
    def judged(groups):
        data = {"busy_j_per_period": groups, "offsets": len(groups), "repeats": 2, "blocks_without_ticks": 0}
        return doctor.judge_coverage(data)

    flat = {str(k): [10.0, 10.2] for k in range(7)}
    assert judged({**flat, "7": [14.0, 14.2]}).status == doctor.FAIL  # +35 %, repeats agree
    undecided = judged({**flat, "7": [11.0, 17.6]})  # +35 % on average, repeats far apart
    assert undecided.status == doctor.WARN and "rerun the full doctor" in undecided.fix
    assert "but their CI reaches into it" in undecided.figure
    small = judged({**flat, "7": [11.0, 11.2]})  # +9 %: real (beyond the repeats), within tolerance
    assert small.status == doctor.PASS and small.data["anova_p"] < doctor.COVERAGE_P
    effect = 11.1 / statistics.mean([10.1] * 7 + [11.1]) - 1  # offset 7's mean over the mean of means
    assert f"largest effect {100 * effect:+.1f} % at offset 7" in small.figure
    nothing = judged({str(k): [0.0, -0.1] for k in range(8)})
    assert nothing.status == doctor.FAIL and "does not see the bursts" in nothing.figure
    missed = judged({**flat, "7": [14.0]})
    assert missed.status == doctor.WARN and "missed ticks" in missed.fix


@pytest.mark.parametrize("repeats", [4, 2], ids=["full", "quick"])
def test_the_square_waves_recorded_on_two_h200s_pass_with_their_phase_effect_named(repeats):
    for place in json.loads(H200_SQUARE_WAVES.read_text())["places"]:
        data = place["coverage_data"]
        per_period = {k: v[:repeats] for k, v in data["busy_j_per_period"].items()}
        check = doctor.judge_coverage({**data, "busy_j_per_period": per_period, "repeats": repeats})
        assert check.status == doctor.PASS, check.figure
        coverage = check.data["coverage"]
        # a burst straddling a tick (offset 7) reads low, one just after a tick (offset 1) high
        assert 0.75 < coverage["7"] < 0.95 and 1.05 < coverage["1"] < 1.25
        k = "7" if 1 - coverage["7"] > coverage["1"] - 1 else "1"
        assert f"largest effect {100 * (coverage[k] - 1):+.1f} % at offset {k} (95 % CI " in check.figure
        if repeats == 4:  # the full doctor's repeats resolve the effect: named as real
            assert "the offsets differ (ANOVA p = " in check.figure


def test_rapl_absent_is_a_warning_that_names_the_estimate(tmp_path):
    check = doctor.check_rapl(str(tmp_path / "no-powercap"))
    assert check.status == doctor.WARN and "estimate:cpu-time" in check.fix


def test_the_table_has_a_row_per_gpu_and_check():
    checks = doctor.no_gpu_checks("NVML not found") + [doctor.check_rapl("/nonexistent")]
    text = doctor.table_markdown({"host": checks})
    assert text.count("\n| host |") == 7
    assert "no GPU (NVML not found)" in text and "| WARN |" in text


def test_the_square_wave_runs_on_real_time_with_the_sampler_on_its_own_thread():
    clock = Clock()  # as on the GPU: the recording samples on a thread while the caller sleeps and works
    gpu = FakeGPU(clock, tick_phase_s=0.037)
    # The fake counter's grid is exact and it sees every burst: on real time the verdicts may only be
    # WARN ("a busy host: rerun") where this machine's load kept the sampler off the grid, never FAIL.
    # FakeClock tests judge the verdicts themselves.
    counter = doctor.check_counter(gpu, clock, 0.5)
    assert counter.status != doctor.FAIL
    # The grid found is the counter's: its period read from when a sampler thread saw the updates, which a
    # loaded machine delays by milliseconds (one in ten of the fake's period would be another grid)
    found_the_grid = pytest.approx(0.1, abs=0.005)
    if counter.status == doctor.PASS:
        assert counter.data["period_s"] == found_the_grid
    check = doctor.check_coverage(gpu, clock, lambda s: gpu.busy(s, 600.0), offsets=8, repeats=2, periods=1)
    assert check.status != doctor.FAIL
    if "busy_j_per_period" in check.data:  # the square wave ran, locked to the grid it found
        # every block is measured, or counted as missed where no sample came within a quarter period of
        # its boundary ticks
        measured = [len(v) for v in check.data["busy_j_per_period"].values()]
        assert sum(measured) + check.data["blocks_without_ticks"] == 8 * 2
        assert check.data["period_s"] == found_the_grid
    else:
        assert check.status == doctor.WARN and check.figure == "no tick grid"


@pytest.mark.parametrize("cls, status", [(FakeGPU, doctor.PASS), (PartTimeCounterGPU, doctor.FAIL)])
def test_coverage_keeps_to_a_counter_whose_period_is_not_the_nominal_100_ms(cls, status):
    # 1.3 % short: a grid from the nominal period would drift a whole tick in under 8 s
    clock = FakeClock(sample_jitter_s=0.002, seed=5)
    gpu = cls(clock, tick_s=0.0987, tick_phase_s=0.03)
    check = doctor.check_coverage(gpu, clock, lambda s: gpu.busy(s, 600.0), offsets=8, repeats=4, periods=5)
    assert check.status == status
    assert check.data["period_s"] == pytest.approx(0.0987, abs=1e-4)
    assert check.data["blocks_without_ticks"] == 0
