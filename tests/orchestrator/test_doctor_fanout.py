"""doctor's Ray fan-out: one task per (logical) GPU, each pinned to its own, fakes behind them."""

from __future__ import annotations

import json

from t2a_ray.metering.doctor import FAIL, PASS, WARN, Check
from t2a_ray.orchestrator.doctor_fanout import DoctorRecord, Place, checks_here, cluster_check, run_doctor


def test_one_task_per_gpu_each_on_its_own_and_a_fail_makes_exit_1(tmp_path, monkeypatch):
    def fake_rig():  # runs inside each Ray task: CUDA_VISIBLE_DEVICES names the task's logical GPU
        import os

        from t2a_ray.metering.fakes import FakeClock, FakeGPU, FrozenCounterGPU

        visible = int(os.environ["CUDA_VISIBLE_DEVICES"])
        clock = FakeClock(sample_jitter_s=0.001)
        cls = FrozenCounterGPU if visible == 1 else FakeGPU
        gpu = cls(clock, index=visible, name=cls.__name__, tick_phase_s=0.037)
        return gpu, clock, lambda s: gpu.busy(s, 600.0), "fake"

    record = run_doctor(2, None, True, tmp_path / "doc", "t2a-ray doctor --gpus 2", open_rig=fake_rig)
    assert [p.gpu["index"] for p in record.places] == [0, 1]
    normal, frozen = ({c.number: c for c in p.checks} for p in record.places)
    assert all(normal[n].status == PASS for n in range(1, 7)) and normal[7].status == WARN  # no RAPL here
    assert frozen[1].status == FAIL and frozen[1].figure.startswith("energy counter frozen")
    assert record.exit_code == 1 and record.worst == FAIL
    assert all(p.writable is None for p in record.places)
    saved = json.loads((tmp_path / "doc" / "doctor.json").read_text())
    assert [p["label"].split(" GPU ")[1] for p in saved["places"]] == ["0 (FakeGPU)", "1 (FrozenCounterGPU)"]
    text = (tmp_path / "doc" / "doctor.md").read_text()
    assert "Coverage on" in text and "| FAIL |" in text


def test_the_cluster_check_fails_where_out_is_not_writable_and_warns_without_auth():
    ok = Place("n1", {}, [], None)
    broken = Place("n2", {}, [], "PermissionError: denied")
    assert cluster_check(ok, "2.60.0", "token").status == PASS
    assert cluster_check(ok, "2.60.0", "disabled").status == WARN
    failed: Check = cluster_check(broken, "2.60.0", "token")
    assert failed.status == FAIL and "PermissionError" in failed.figure and "every node" in failed.fix


def test_a_gpu_that_stops_answering_is_a_failed_line_not_a_crash(tmp_path):
    def lost_rig():
        from t2a_ray.metering.fakes import FakeClock, FakeGPU

        clock = FakeClock()
        gpu = FakeGPU(clock)
        gpu.fail_reads(10**9, "GPU is lost")
        return gpu, clock, lambda s: gpu.busy(s, 600.0), "fake"

    place = checks_here(True, str(tmp_path), lost_rig)
    assert [(c.number, c.status) for c in place.checks] == [(1, FAIL), (7, WARN)]
    assert "checks did not finish" in place.checks[0].figure and "GPU is lost" in place.checks[0].figure


def test_the_record_lists_each_offsets_coverage_with_its_ci(tmp_path):
    def phase_rig():
        from t2a_ray.metering.fakes import FakeClock, PhaseEffectCounterGPU

        clock = FakeClock(sample_jitter_s=0.001)
        gpu = PhaseEffectCounterGPU(clock, effect=0.12, tick_phase_s=0.037)
        return gpu, clock, lambda s: gpu.busy(s, 600.0), "fake"

    place = checks_here(True, str(tmp_path), phase_rig)
    coverage = next(c for c in place.checks if c.number == 2)
    assert coverage.status == PASS
    record = DoctorRecord("t2a-ray doctor --quick", "host", "today", [place], 1.0)
    line = next(x for x in record.markdown().splitlines() if x.startswith("Coverage on"))
    lo, hi = coverage.data["coverage_ci"]["0"]
    assert f"; coverage (95 % CI) 0: {coverage.data['coverage']['0']:.3f} ({lo:.3f}–{hi:.3f})," in line
