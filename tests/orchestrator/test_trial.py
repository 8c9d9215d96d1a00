"""One trial without Ray: the real trial code, the real meter (CPU), the noop adapter, a real folder."""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest

from t2a_ray.adapters import adapter_class
from t2a_ray.config import parse_sweep
from t2a_ray.frozen import create_run, load_run_sweep
from t2a_ray.metering import open_meter
from t2a_ray.orchestrator.device import TorchDevice
from t2a_ray.orchestrator.trial import TrialEnv, run_trial
from t2a_ray.orchestrator.worker import SetUpShapes
from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import quality_schema, shard_metadata

DOC = {
    "name": "t",
    "models": ["noop"],
    "weights": "tiny",
    "grid": {"steps": 3},
    "prompts": {"text": ["a", "b"]},
    "repeats": 2,
}


class BrokenScorer:
    def score(self, trial_id, texts, waveforms, sample_rate_hz):
        raise RuntimeError("no CLAP weights here")


class CountingScorer:
    def score(self, trial_id, texts, waveforms, sample_rate_hz):
        assert len(texts) == len(waveforms)  # one prompt per waveform
        return {"trial_id": trial_id, "n_generations": len(waveforms), "clap_protocol": "counting"}


@pytest.fixture
def env(tmp_path):
    sweep = parse_sweep(DOC, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    adapter = adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny")
    with open_meter(None) as meter:
        yield sweep, TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})


@pytest.mark.parametrize("scorer", [CountingScorer(), BrokenScorer()])
def test_quality_is_scored_apart_and_a_failing_scorer_keeps_the_energy_rows(env, scorer):
    sweep, trial_env = env
    trial_env.scorer = scorer
    trial = sweep.trials()[0]
    outcome = run_trial(trial, trial_env)
    assert outcome.status == "ok" and outcome.rows == 4
    rows = pq.read_table(trial_env.run.shard(trial.trial_id)).to_pylist()
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert all(r["cpu_energy_j"] is not None and r["gpu_energy_j"] is None for r in rows)  # null, never zero
    shard = pq.read_table(trial_env.run.quality_shard(trial.trial_id))
    assert shard.schema.equals(quality_schema(), check_metadata=False)  # typed, never inferred
    quality = shard.to_pylist()[0]
    if isinstance(scorer, BrokenScorer):
        assert "no CLAP weights" in quality["scoring_error"]
    else:
        assert quality["n_generations"] == 4 and quality["scoring_energy_j"] is not None


class CountingAdapter:
    """The noop adapter, counting its generate calls and the batch size of each."""

    def __init__(self, adapter):
        self.adapter, self.revision, self.batches = adapter, adapter.revision, []

    def generate_checked(self, prompts, params, seed, phases, negative_prompt=None):
        gen = self.adapter.generate_checked(prompts, params, seed, phases, negative_prompt)
        self.batches.append(gen.waveforms.shape[0])
        return gen


def test_min_waveforms_per_window_sets_the_generations_of_each_window(tmp_path):
    doc = {
        "name": "batch",
        "models": ["noop"],
        "weights": "tiny",
        "grid": {"steps": 1, "step_time_s": 0.001, "batch_size": [1, 2, 3, 5, 10]},
        "prompts": {"text": ["a"]},
        "repeats": 2,
        "warmup": 1,
        "metering": {"min_waveforms_per_window": 10},
    }
    sweep = parse_sweep(doc, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    adapter = CountingAdapter(adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny"))
    expected = {1: 10, 2: 5, 3: 4, 5: 2, 10: 1}  # ceil(10 / batch_size)
    with open_meter(None) as meter:
        trial_env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})
        for trial in sweep.trials():
            batch_size = trial.params["batch_size"]
            adapter.batches.clear()
            outcome = run_trial(trial, trial_env)
            assert outcome.status == "ok", outcome.error
            # the warm-up is one generation; each of the 2 windows holds ceil(10 / batch_size)
            assert adapter.batches == [batch_size] * (1 + 2 * expected[batch_size])
            rows = pq.read_table(run.shard(trial.trial_id)).to_pylist()
            assert len(rows) == 2
            for row in rows:
                generations = row["generations_in_window"]
                assert row["batch_size"] == batch_size and generations == expected[batch_size]
                assert row["gpu_energy_j"] is None and row["cpu_energy_j"] > 0  # measured on the CPU
                assert row["energy_per_waveform_j"] == pytest.approx(
                    row["cpu_energy_j"] / (generations * batch_size), rel=1e-12
                )
                assert row["latency_s"] == pytest.approx(row["window_s"] / generations, rel=1e-12)


def test_without_min_waveforms_per_window_each_window_is_one_generation(env):
    sweep, trial_env = env
    assert sweep.metering.min_waveforms_per_window == 1
    outcome = run_trial(sweep.trials()[0], trial_env)
    rows = pq.read_table(trial_env.run.shard(sweep.trials()[0].trial_id)).to_pylist()
    assert outcome.status == "ok"
    assert [r["generations_in_window"] for r in rows] == [1, 1, 1, 1]


def test_warm_up_generations_are_measured_apart_and_kept_out_of_the_trials_figures(tmp_path):
    sweep = parse_sweep({**DOC, "warmup": 2}, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    adapter = CountingAdapter(adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny"))
    with open_meter(None) as meter:
        trial_env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})
        outcome = run_trial(sweep.trials()[0], trial_env)
    assert len(adapter.batches) == 2 + 4  # two warm-up generations, then one per (repeat, prompt)
    assert len(outcome.warmup_energy_j) == 2 and all(j > 0 for j in outcome.warmup_energy_j)
    rows = pq.read_table(run.shard(outcome.trial_id)).to_pylist()
    assert len(rows) == 4  # no row for a warm-up
    assert outcome.energy_j == pytest.approx(sum(r["cpu_energy_j"] for r in rows), rel=1e-12)
    meta = shard_metadata(pq.ParquetFile(run.shard(outcome.trial_id)).schema_arrow)
    assert meta["warmup_energy_j"] == outcome.warmup_energy_j


def test_a_unit_runs_one_repeat_into_its_own_shard_and_warms_only_when_asked(env):
    sweep, trial_env = env
    trial = sweep.trials()[0]
    warmed: set[str] = set()

    def needs_setup(t) -> bool:
        new = t.model.key not in warmed
        warmed.add(t.model.key)
        return new

    trial_env.needs_setup = needs_setup
    trial_env.place = {"node": "here", "worker_id": 1, "host_id": "abc"}
    first = run_trial(trial, trial_env, repeats=[1], unit_id=f"{trial.trial_id}.r1")
    second = run_trial(trial, trial_env, repeats=[0], unit_id=f"{trial.trial_id}.r0")
    assert len(first.warmup_energy_j) == 1 and second.warmup_energy_j == []  # warm once per shape
    # the mean of the unit's two generations (noop: 3 steps × 5 ms each, plus the window's own cost), not
    # the unit's time
    assert 3 * 0.005 <= first.generation_s and 2 * first.generation_s < first.wall_s
    rows = pq.read_table(trial_env.run.shard(f"{trial.trial_id}.r1")).to_pylist()
    assert [(r["trial_id"], r["repeat"]) for r in rows] == [(trial.trial_id, 1)] * 2  # one per prompt
    assert {(r["worker_id"], r["host_id"]) for r in rows} == {(1, "abc")}
    assert trial_env.run.finished_trial_ids() == {f"{trial.trial_id}.r0", f"{trial.trial_id}.r1"}


def test_a_shape_counts_as_set_up_only_once_its_setup_succeeded(tmp_path):
    sweep = parse_sweep({**DOC, "grid": {"steps": [2, 1]}, "warmup": 1, "repeats": 1}, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    options = {"fault": "error", "fault_when": {"steps": 2}}  # its warm-up fails at steps 2
    adapter = adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny", options=options)
    shapes = SetUpShapes(Counter())
    with open_meter(None) as meter:
        trial_env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})
        trial_env.needs_setup, trial_env.set_up = shapes.needed, shapes.record
        failed, ok, again = (run_trial(t, trial_env) for t in [*sweep.trials(), sweep.trials()[1]])
    assert failed.status == "failed" and failed.setup_s == 0.0 and failed.warmup_energy_j == []
    # the same shape (steps alone differ) is set up by the next unit, and only by it
    assert ok.status == "ok" and len(ok.warmup_energy_j) == 1 and ok.setup_s > 0
    assert again.warmup_energy_j == [] and again.setup_s == 0.0
    assert shapes.count == 1


@pytest.mark.slow  # a real torch model: imports and a load
def test_no_parameter_is_checked_inside_a_metered_window(tmp_path):
    class Counting(adapter_class("audioldm")):  # the real tiny model, counting its checks
        checks = 0

        @classmethod
        def check(cls, params):
            Counting.checks += 1
            return super().check(params)

    doc = {
        "name": "c",
        "models": ["audioldm"],
        "weights": "tiny",
        "grid": {"steps": 2, "duration_s": 0.25},
        "prompts": {"text": ["a"]},
        "warmup": 1,
    }
    run = RunFolder(tmp_path / "run")
    create_run(run, parse_sweep(doc, base_dir=tmp_path, device="cpu"))  # checked here, once
    sweep = load_run_sweep(run)
    adapter = Counting.load(device="cpu", dtype="float32", weights="tiny")
    with open_meter(None) as meter:
        env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})
        outcome = run_trial(sweep.trials()[0], env)
    assert outcome.status == "ok", outcome.error
    assert Counting.checks == 0  # neither the warm-up nor the window checked the trial's params again
    adapter.generate(["a"], {"steps": 2, "duration_s": 0.25}, seed=0)  # a caller's own params: checked
    assert Counting.checks == 1
