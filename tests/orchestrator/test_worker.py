"""The worker's preparation (idle baseline) and the gate that keeps trials from an unprepared worker."""

from __future__ import annotations

import pytest

from t2a_ray.config import load_sweep, parse_sweep
from t2a_ray.orchestrator.router import Router
from t2a_ray.orchestrator.runner import WorkerNotReady, tune_trial
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
        for trial_id in (t.trial_id for t in worker.sweep.trials()):
            assert worker.run_trial(trial_id)["status"] == "ok"
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
        router = ray.remote(Router).remote(1)
        trial_id = load_sweep(run.sweep_yaml).trials()[0].trial_id
        with pytest.raises(WorkerNotReady, match="no context"):
            tune_trial(
                {"trial_id": trial_id},
                workers=[worker],
                prepared=[worker.prepare.remote()],
                router=router,
                run_root=str(run.root),
                model_keys={trial_id: "noop"},
                retries=1,
                restart_wait_s=1.0,
                lost_after_s=1.0,
            )
        assert run.finished_trial_ids() == set()  # no rows: a resume runs the trial
        assert (
            ray.get(router.assign.remote("noop")) == 0
            and ray.get(router.__ray_call__.remote(lambda r: r.workers[0].queued)) == 1
        )
    finally:
        ray.shutdown()
