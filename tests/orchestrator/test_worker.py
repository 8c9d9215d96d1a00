"""The worker's preparation (idle baseline) and the gate that keeps trials from an unprepared worker."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from t2a_ray.config import load_sweep, parse_sweep
from t2a_ray.orchestrator.plan import Dispatcher
from t2a_ray.orchestrator.runner import WorkerNotReady, tune_trial
from t2a_ray.orchestrator.schedule import plan_run
from t2a_ray.orchestrator.worker import Worker
from t2a_ray.runfolder import RunFolder

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
    worker.meter.measure_idle = lambda s: calls.append(s) or measure_idle(s)
    try:
        # A process Ray restarted after a crash gets trials without a `prepare` call from the driver.
        for trial_id in worker.trials:
            assert worker.run_trial(trial_id)["status"] == "ok"
        assert worker.stats()["warmups"] == 1  # steps alone differ: one shape, warmed once
        assert worker.prepare()["pid"] == worker.ping()
    finally:
        worker.shutdown()
    assert calls == [0.05]


def test_a_trial_sent_to_a_worker_that_could_not_prepare_fails_without_rows(run):
    ray = pytest.importorskip("ray")

    class UnpreparableWorker(Worker):  # defined here so that Ray ships it by value to the actor
        def prepare(self):
            raise RuntimeError("CUDA error: no context")

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        worker = ray.remote(UnpreparableWorker).remote(str(run.root), 0)
        p = plan_run(run, load_sweep(run.sweep_yaml), 1, "pack", set())
        router = ray.remote(Dispatcher).remote(p.pending, p.plan, p.cost, p.placement)
        unit_id = p.pending[0].unit_id
        with pytest.raises(WorkerNotReady, match="no context"):
            tune_trial(
                {"chunk": 0},
                workers=[worker],
                prepared=[worker.prepare.remote()],
                router=router,
                run_root=str(run.root),
                chunks=[[unit_id]],
                retries=1,
                restart_wait_s=1.0,
            )
        assert run.finished_trial_ids() == set()  # no rows: a resume runs the trial
        backlog = ray.get(router.__ray_call__.remote(lambda d: d.workers[0].backlog_s))
        assert backlog == 0  # the unit was given back
        assert ray.get(router.assign.remote(unit_id)) == 0
    finally:
        ray.shutdown()


def test_a_worker_records_its_host_and_reference_workload_and_marks_its_rows(run):
    worker = Worker(str(run.root), 3)
    try:
        prepared = worker.prepare()
        trial_id = next(iter(worker.trials))
        summary = worker.run_trial(f"{trial_id}.r0")
    finally:
        worker.shutdown()
    assert prepared["host_id"] == worker.stats()["host_id"] and prepared["cpu_cores"] >= 1
    assert prepared["reference_matmul_s"] > 0 and prepared["reference_launch_j"] > 0
    assert summary["unit_id"] == f"{trial_id}.r0" and summary["load_s"] is not None  # loaded here
    rows = pq.read_table(run.shard(f"{trial_id}.r0")).to_pylist()
    assert {(r["worker_id"], r["host_id"]) for r in rows} == {(3, prepared["host_id"])}
