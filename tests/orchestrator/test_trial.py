"""One trial without Ray: the real trial code, the real meter (CPU), the noop adapter, a real folder."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from t2a_ray.adapters import adapter_class
from t2a_ray.config import parse_sweep
from t2a_ray.metering import open_meter
from t2a_ray.orchestrator.device import TorchDevice
from t2a_ray.orchestrator.trial import TrialEnv, run_trial
from t2a_ray.runfolder import RunFolder

DOC = {"name": "t", "models": ["noop"], "weights": "tiny", "grid": {"steps": 3}, "prompts": {"text": ["a", "b"]}, "repeats": 2}


class BrokenScorer:
    def score(self, trial_id, texts, waveforms, sample_rate_hz):
        raise RuntimeError("no CLAP weights here")


class CountingScorer:
    def score(self, trial_id, texts, waveforms, sample_rate_hz):
        return {"trial_id": trial_id, "n_generations": len(waveforms), "texts": len(texts)}


@pytest.fixture
def env(tmp_path):
    sweep = parse_sweep(DOC, base_dir=tmp_path)
    run = RunFolder(tmp_path / "run")
    run.create(sweep.to_yaml())
    adapter = adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny")
    with open_meter(use_gpu=False) as meter:
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
    quality = pq.read_table(trial_env.run.quality_shard(trial.trial_id)).to_pylist()[0]
    if isinstance(scorer, BrokenScorer):
        assert "no CLAP weights" in quality["scoring_error"]
    else:
        assert quality["n_generations"] == 4 and quality["scoring_energy_j"] is not None
