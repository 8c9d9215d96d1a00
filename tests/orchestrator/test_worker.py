"""The worker's preparation (idle baseline, quick doctor checks), the gate that keeps trials from an
unprepared worker, power-integral metering and the throttle columns — fake GPUs (subclasses of the real
GPU interface) behind the worker's meter where a GPU is needed."""

from __future__ import annotations

import threading
import time

import pyarrow.parquet as pq
import pytest

from t2a_ray.adapters.noop import NoopAdapter
from t2a_ray.analysis import analyze_run
from t2a_ray.config import load_sweep, parse_sweep
from t2a_ray.errors import ConfigError
from t2a_ray.metering import Clock, Meter
from t2a_ray.metering.fakes import FakeGPU, FrozenCounterGPU
from t2a_ray.orchestrator.feed import RetryPolicy, Sender, WorkerNotReady, tune_trial
from t2a_ray.orchestrator.plan import Dispatcher
from t2a_ray.orchestrator.run_plan import plan_run
from t2a_ray.orchestrator.worker import Worker
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import merge_results

DOC = {
    "name": "w",
    "models": ["noop"],
    "weights": "tiny",
    "grid": {"steps": [1, 2]},
    "prompts": {"text": ["a"]},
    "metering": {"idle_baseline_s": 0.05},
}


@pytest.fixture
def run(tmp_path) -> RunFolder:
    run = RunFolder(tmp_path / "run")
    run.create(parse_sweep(DOC, base_dir=tmp_path).to_yaml())
    return run


def test_a_worker_measures_its_idle_baseline_once_before_its_first_trial(run):
    worker = Worker(str(run.root), 0)
    calls = []
    measure_idle = worker.meter.measure_idle
    worker.meter.measure_idle = lambda s, during=None: calls.append(s) or measure_idle(s, during)
    try:
        # A process Ray restarted after a crash gets trials without a `prepare` call from the driver.
        for trial_id in (t.trial_id for t in worker.sweep.trials()):
            assert worker.run_trial(trial_id)["status"] == "ok"
        assert worker.stats()["warmups"] == 1  # steps alone differ: one shape, warmed once
        assert worker.prepare()["pid"] == worker.ping()
    finally:
        worker.shutdown()
    assert calls == [0.05]


def test_a_trial_sent_to_a_worker_that_could_not_prepare_fails_without_rows(run, shared_ray):
    ray = pytest.importorskip("ray")

    class UnpreparableWorker(Worker):  # defined here so that Ray ships it by value to the actor
        def prepare(self):
            raise RuntimeError("CUDA error: no context")

    ray.init(address=shared_ray, log_to_driver=False)
    try:
        worker = ray.remote(UnpreparableWorker).remote(str(run.root), 0)
        p = plan_run(run, load_sweep(run.sweep_yaml), 1, "pack", set())
        router = ray.remote(Dispatcher).remote(p.pending, p.plan, p.cost, p.placement)
        unit_id = p.pending[0].unit_id
        with pytest.raises(WorkerNotReady, match="no context"):
            send = Sender([worker], [worker.prepare.remote()], router, run, RetryPolicy(1, 1.0, 1.0))
            tune_trial({"chunk": 0}, send=send, chunks=[[unit_id]])
        assert run.finished_trial_ids() == set()  # no rows: a resume runs the trial
        backlog = ray.get(router.__ray_call__.remote(lambda d: d.workers[0].backlog_s))
        assert backlog == 0  # the unit was given back
        assert ray.get(router.assign.remote(unit_id)) == 0
    finally:
        ray.shutdown()


def make_run(tmp_path, **metering) -> RunFolder:
    run = RunFolder(tmp_path / "run")
    doc = {**DOC, "metering": {**DOC["metering"], **metering}}
    run.create(parse_sweep(doc, base_dir=tmp_path).to_yaml())
    return run


def fake_meter_opener(gpu_cls, made: dict):
    """An `open_meter` for the worker: the options it passes, over a fake GPU on real time."""

    def open_meter(device, settings):
        clock = Clock()
        made["gpu"] = gpu = gpu_cls(clock, name=gpu_cls.__name__)
        return Meter(gpu, None, settings, sync=device.sync, clock=clock)

    return open_meter


def test_a_frozen_counter_refuses_the_gpu_in_one_line(tmp_path):
    run = make_run(tmp_path)
    worker = Worker(str(run.root), 0, open_meter=fake_meter_opener(FrozenCounterGPU, {}))
    try:
        with pytest.raises(ConfigError) as info:
            worker.prepare()
    finally:
        worker.shutdown()
    assert info.value.key_path == "metering.gpu"
    message = str(info.value)
    assert "\n" not in message and "frozen" in message and "metering: {gpu: power-integral}" in message


def test_power_integral_meters_a_frozen_counter_and_every_row_says_so(tmp_path):
    run = make_run(tmp_path, gpu="power-integral")
    worker = Worker(str(run.root), 0, open_meter=fake_meter_opener(FrozenCounterGPU, {}))
    try:
        prepared = worker.prepare()
        for trial_id in (t.trial_id for t in worker.sweep.trials()):
            assert worker.run_trial(trial_id)["status"] == "ok"
    finally:
        worker.shutdown()
    assert [c["status"] for c in prepared["doctor"]] == ["fail", "pass"]
    table, _ = merge_results(run)
    methods = table.column("energy_method").to_pylist()
    assert len(methods) == 2 and all(m.startswith("gpu:nvml-power-integral;") for m in methods)
    assert all(e is not None and e > 0 for e in table.column("gpu_energy_j").to_pylist())


def test_throttled_windows_carry_the_columns_and_the_report_flags_them(tmp_path):
    run = make_run(tmp_path)
    made: dict = {}
    worker = Worker(str(run.root), 0, open_meter=fake_meter_opener(FakeGPU, made))
    try:
        # check 1 passes, or warns where this machine's load kept the sampler off the fake counter's grid
        assert [c["status"] for c in worker.prepare()["doctor"]] in (["pass", "pass"], ["warn", "pass"])
        made["gpu"].reasons_mask = 0x20  # software thermal slowdown from here on
        for trial_id in (t.trial_id for t in worker.sweep.trials()):
            worker.run_trial(trial_id)
    finally:
        worker.shutdown()
    table, _ = merge_results(run)
    assert table.column("throttle_reasons").to_pylist() == ["sw_thermal_slowdown"] * 2
    assert table.column("throttled").to_pylist() == [True, True]
    text = analyze_run(run.root).text()
    assert "Throttled windows: 2 of 2 (sw_thermal_slowdown)" in text
    html = (run.root / "report" / "index.html").read_text()
    assert "Throttled windows: 2 of 2" in html


def test_a_refusal_raised_in_a_worker_actor_reaches_the_driver_as_a_config_error(shared_ray):
    """What the runner relies on to exit 2: Ray hands the worker's ConfigError back as the cause."""
    ray = pytest.importorskip("ray")
    from t2a_ray.orchestrator.pool import gather

    class Refuses:  # defined here so that Ray ships it by value to the actor
        def prepare(self):
            raise ConfigError("metering.gpu", "counter", "GPU 0: energy counter frozen")

    ray.init(address=shared_ray, log_to_driver=False)
    try:
        [error] = gather([ray.remote(Refuses).remote().prepare.remote()])
    finally:
        ray.shutdown()
    assert isinstance(error.cause, ConfigError) and error.cause.key_path == "metering.gpu"
    assert str(error.cause) == "metering.gpu = 'counter': GPU 0: energy counter frozen"


def test_a_worker_records_its_host_and_reference_workload_and_marks_its_rows(run):
    worker = Worker(str(run.root), 3)
    try:
        prepared = worker.prepare()
        trial_id = worker.sweep.trials()[0].trial_id
        summary = worker.run_trial(f"{trial_id}.r0")
    finally:
        worker.shutdown()
    assert prepared["host_id"] == worker.stats()["host_id"] and prepared["cpu_cores"] >= 1
    assert prepared["reference_matmul_s"] > 0 and prepared["reference_launch_j"] > 0
    assert summary["unit_id"] == f"{trial_id}.r0" and summary["load_s"] is not None  # loaded here
    rows = pq.read_table(run.shard(f"{trial_id}.r0")).to_pylist()
    assert {(r["worker_id"], r["host_id"]) for r in rows} == {(3, prepared["host_id"])}


class PrefetchRecorded(NoopAdapter):
    """noop whose prefetch records the thread it ran in and when it ended (unix s)."""

    seen: list[tuple[int, float]] = []

    @classmethod
    def prefetch(cls) -> None:
        time.sleep(0.2)
        cls.seen.append((threading.get_ident(), time.time()))


class PrefetchRaises(NoopAdapter):
    @classmethod
    def prefetch(cls) -> None:
        raise ImportError("no module named 'diffusers'")


def span(prepared: dict, step: str) -> tuple[float, float]:
    """When a step of the prepare ran: (start, end), seconds from the prepare's start."""
    return tuple(prepared["prepare_steps_s"][step])


def test_prepare_prefetches_the_planned_models_in_a_thread_beside_the_idle_baseline(tmp_path):
    """The planned models' code is imported in another thread, ended before the reference workload
    starts; the quick checks run inside the idle window, which is no longer for them."""
    run = make_run(tmp_path, idle_baseline_s=2.0)
    PrefetchRecorded.seen.clear()
    worker = Worker(
        str(run.root),
        0,
        open_meter=fake_meter_opener(FakeGPU, {}),
        find_adapter=lambda model_id: PrefetchRecorded,
    )
    try:
        prepared = worker.prepare(["noop", "noop"])
        # the worker's loads go through the same `find_adapter`
        assert worker.run_trial(worker.sweep.trials()[0].trial_id)["status"] == "ok"
    finally:
        worker.shutdown()
    [(thread, ended_unix_s)] = PrefetchRecorded.seen  # once per model, however many units
    assert thread != threading.get_ident()
    assert prepared["prefetched"] == ["noop"] and prepared["prefetch_errors"] == []
    reference_start, _ = span(prepared, "reference")
    assert ended_unix_s <= prepared["prepare_started_unix_s"] + reference_start
    idle_start, idle_end = span(prepared, "idle_baseline")
    checks_start, checks_end = span(prepared, "checks")
    prefetch_start, prefetch_end = span(prepared, "prefetch")
    assert span(prepared, "context")[1] <= prefetch_start < idle_end  # the prefetch overlaps the idle window
    assert idle_start <= checks_start < checks_end <= idle_end <= reference_start
    assert prefetch_end <= reference_start
    # checks 1 and 6: 1.5 s of reads; check 1 warns where this machine's load kept the sampler off the grid
    assert [c["status"] for c in prepared["doctor"]] in (["pass", "pass"], ["warn", "pass"])
    # the checks fit in the 2 s window, not after it: the window is shorter than the two one after the other
    assert 2.0 <= idle_end - idle_start < 2.0 + (checks_end - checks_start)
    assert prepared["idle_power_w"] == pytest.approx(70.0, rel=0.05)  # the fake GPU's idle draw


def test_a_prefetch_that_raises_is_logged_and_the_worker_prepares_all_the_same(run, caplog):
    worker = Worker(str(run.root), 0, find_adapter=lambda model_id: PrefetchRaises)
    try:
        prepared = worker.prepare(["noop"])
        assert worker.run_trial(worker.sweep.trials()[0].trial_id)["status"] == "ok"
    finally:
        worker.shutdown()
    assert prepared["prefetch_errors"] == ["noop: ImportError: no module named 'diffusers'"]
    assert "prefetching noop failed" in caplog.text
