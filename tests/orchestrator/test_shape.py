"""A shape (what a runtime's setup and a warm-up depend on) is defined once, `runtime_axes.shape_of`: the
plan's units, the worker's record of what it has set up and the analysis of setup costs agree."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from t2a_ray.adapters.runtime_axes import shape_of, shape_params
from t2a_ray.analysis.runtime_tables import break_even
from t2a_ray.config import parse_sweep
from t2a_ray.orchestrator.models import ModelCache
from t2a_ray.orchestrator.plan import make_units
from t2a_ray.orchestrator.worker import SetUpShapes

DOC = {"name": "t", "models": ["noop"], "weights": "tiny", "prompts": {"text": ["rain"]}}


def test_a_shape_is_every_parameter_but_the_step_count_in_any_order():
    a = {"steps": 10, "batch_size": 2, "guidance_scale": 3.0}
    assert shape_of(a) == shape_of({"guidance_scale": 3.0, "batch_size": 2, "steps": 50})
    assert shape_of(a) != shape_of({**a, "guidance_scale": 4.0})
    assert shape_params(a) == {"batch_size": 2, "guidance_scale": 3.0}


def test_the_plan_and_the_worker_key_a_trial_by_the_same_shape(tmp_path):
    grid = {"steps": [10, 20], "guidance_scale": [1.0, 2.0]}
    trials = parse_sweep({**DOC, "grid": grid}, tmp_path).trials()
    units = make_units(trials, parse_sweep({**DOC, "grid": grid}, tmp_path), ModelCache.key_of)
    by_trial = {u.trial_id: u.shape for u in units}
    shapes = SetUpShapes(Counter())
    for t in trials:
        assert by_trial[t.trial_id] == shape_of(t.params) == shapes._key(t)[1]
    assert len(set(by_trial.values())) == 2  # two guidance scales; the step counts share a shape
    shapes.record(trials[0])
    assert [shapes.needed(t) for t in trials] == [
        shape_of(t.params) != shape_of(trials[0].params) for t in trials
    ]


def test_the_analysis_takes_a_setup_that_compiled_nothing_from_the_same_shape_at_other_steps():
    config = {"model": "m", "weights": "w", "dtype": "float32", "compile": "default", "attention": "default"}
    config |= {"precision": "none", "cache": "none"}
    config |= {"batch_size": 1, "duration_s": 1.0}
    rows = []
    for steps, energy in ((10, 1.0), (20, 2.0)):
        for compile_mode, e in (("none", energy), ("default", energy / 2)):
            for k in range(3):
                rows.append(
                    {
                        **config,
                        "compile": compile_mode,
                        "steps": steps,
                        "status": "ok",
                        "trial_id": f"{compile_mode}{steps}",
                    }
                    | {"energy_per_waveform_j": e + 0.01 * k}
                )
    results = pd.DataFrame(rows)
    costs = pd.DataFrame(
        [{**config, "steps": 10, "trial_id": "default10", "overhead_j": 5.0, "overhead_s": 1.0}]
    )
    out = break_even(results, costs).set_index("steps")
    assert out.loc[10, "overhead_from"] == "own"
    assert out.loc[20, "overhead_from"] == "steps=10"
    assert out.loc[20, "overhead_j"] == 5.0
