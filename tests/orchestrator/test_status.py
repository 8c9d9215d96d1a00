"""`t2a-ray status` from a run folder alone: unit shards, the plan and the workers' statistics."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from t2a_ray.adapters import adapter_class
from t2a_ray.config import parse_sweep
from t2a_ray.metering import open_meter
from t2a_ray.orchestrator.device import TorchDevice
from t2a_ray.orchestrator.status import run_status
from t2a_ray.orchestrator.trial import TrialEnv, run_trial
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import shard_metadata

DOC = {
    "name": "s",
    "models": ["noop"],
    "weights": "tiny",
    "grid": {"steps": [1, 2]},
    "prompts": {"text": ["a"]},
    "repeats": 2,
}


def test_a_trial_counts_once_its_units_cover_every_repeat_and_the_plan_and_workers_are_shown(tmp_path):
    sweep = parse_sweep(DOC, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    adapter = adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny")
    first, second = sweep.trials()
    with open_meter(None) as meter:
        env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})
        run_trial(first, env, [0], f"{first.trial_id}.r0")
        run_trial(first, env, [1], f"{first.trial_id}.r1")
        run_trial(second, env, [1], f"{second.trial_id}.r1")  # half of the second trial
    (run.logs_dir / "plan-attempt-1.json").write_text(
        json.dumps(
            {
                "placement": "spread",
                "units_pending": 4,
                "makespan_s": 75.0,
                "workers": [{}, {}],
                "dispatch": {"stolen": 1, "assigned": 4},
            }
        )
    )
    stats = [
        {"worker": 0, "node": "n", "loads": {"k": 1}, "busy_s": 10.0, "window_s": 8.0, "gaps_s": [0.5, 2.0]},
        {"worker": 1, "error": "RayActorError: died"},
    ]
    (run.logs_dir / "workers-attempt-1.json").write_text(json.dumps(stats))
    (run.logs_dir / "gpus-attempt-1.json").write_text(json.dumps([{}, {}]))
    status = run_status(run)
    assert (status.total, status.ok, status.pending) == (2, 1, 1)
    assert status.energy_j is not None
    # the mean time per repeat of the finished units, for the one repeat left, over the two GPUs
    walls = [shard_metadata(pq.read_schema(p))["wall_s"] for p in run.shard_paths()]
    assert status.eta_s == pytest.approx(sum(walls) / len(walls) * 1 / 2)
    text = status.text()
    assert "plan      spread over 2 worker(s), 4 unit(s) predicted to take 1:15; 1 taken by an idle" in text
    assert (
        "worker 0  @n: 1 load(s), 0 warm-up(s), busy 0:10, in windows 0:08, 2 gap(s) between units 2.5 s (longest 2.0 s)"
        in text
    )
    assert "worker 1  RayActorError: died" in text


def test_the_plan_of_a_resumed_run_is_primed_from_its_finished_shards(tmp_path):
    from t2a_ray.orchestrator.run_plan import model_key, plan_run

    doc = {**DOC, "grid": {"steps": [1, 2, 3], "step_time_s": 0.01}, "placement": "spread"}
    sweep = parse_sweep(doc, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    adapter = adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny")
    first = sweep.trials()[0]
    with open_meter(None) as meter:
        env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})
        measured = run_trial(first, env, [0], f"{first.trial_id}.r0").generation_s
    plan = plan_run(run, sweep, 2, "spread", run.finished_trial_ids())
    assert len(plan.pending) == 3 * 2 - 1  # every repeat of every configuration but the finished one
    kind, _, scale = plan.cost.fit(model_key(first))
    assert kind == "scale" and scale == pytest.approx(measured / (1 * 0.01))  # measured over the prior
    assert plan.cost.load_s(model_key(first)) == 0.0  # noop's card declares its load time


def test_status_lists_each_failed_and_infeasible_trial_with_its_error_and_how_to_retry(tmp_path):
    doc = {
        **DOC,
        "models": [
            {"id": "noop", "options": {"fault": "error", "fault_when": {"steps": 2}}},
            {"id": "noop", "options": {"fault": "oom", "fault_when": {"steps": 1}}},
        ],
        "repeats": 1,
    }
    sweep = parse_sweep(doc, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    with open_meter(None) as meter:
        for t in sweep.trials():
            adapter = adapter_class("noop").load(
                device="cpu", dtype="float32", weights="tiny", options=t.model.options
            )
            env = TrialEnv(run, sweep, lambda _, a=adapter: a, meter, TorchDevice("cpu"), {"node": "here"})
            run_trial(t, env)
    status = run_status(run)
    assert (status.ok, status.failed, status.infeasible) == (2, 1, 1)
    lines = status.text().splitlines()
    start = lines.index("Failures: 2 of 4 configurations (1 failed, 1 infeasible)")
    assert lines[start + 1 : start + 4] == [
        "  failed      noop (steps=2): InjectedFault: injected error at {'steps': 2}",
        "  infeasible  noop (steps=1): InfeasibleError: injected out-of-memory at {'steps': 1}",
        f"          `t2a-ray resume {run.root} --retry-failed` runs the 1 failed again",
    ]


def test_status_names_the_slurm_jobs_submitted_and_those_its_attempts_ran_in(tmp_path):
    sweep = parse_sweep(DOC, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    run.slurm_dir.mkdir()
    (run.slurm_dir / "jobs.jsonl").write_text('{"job_id": "11"}\n{"job_id": "12"}\n')
    (run.logs_dir / "gpus-attempt-1.json").write_text(
        json.dumps([{"slurm_job_id": "11"}, {"slurm_job_id": "11"}])
    )
    places = [{"slurm_job_id": "13", "slurm_array_task_id": 0}, {"slurm_job_id": None}]
    (run.logs_dir / "gpus-attempt-2.json").write_text(json.dumps(places))
    with run.driver_lock("share-1-of-2"):
        text = run_status(run).text()
    assert "slurm     job(s) submitted 11, 12; ran in attempt 1: 11, attempt 2: 13 (task 0)" in text
    assert "driver    share-1-of-2: running now (" in text
    assert "share-1-of-2" not in run_status(run).text()  # its driver ended: its lock is free
