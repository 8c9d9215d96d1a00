"""The sweep file's `search` key: grid by default, exactly as before; pareto with one budget."""

from __future__ import annotations

import pytest
import yaml

from t2a_ray.config import SearchConfig, parse_sweep
from t2a_ray.errors import ConfigError

BASE = {
    "name": "t",
    "models": ["noop"],
    "weights": "tiny",
    "grid": {"steps": [10, 20, 40]},
    "prompts": {"text": ["a dog barks"]},
    "quality": {"clap": True},
}


def parse(tmp_path, **search):
    return parse_sweep({**BASE, **search}, base_dir=tmp_path)


def test_without_a_search_key_the_sweep_is_a_grid_and_its_frozen_file_unchanged(tmp_path):
    sweep = parse(tmp_path)
    assert sweep.search == SearchConfig() and sweep.search.strategy == "grid"
    assert "search" not in yaml.safe_load(sweep.to_yaml())
    explicit = parse(tmp_path, search={"strategy": "grid", "seed": 3})
    assert explicit.search == SearchConfig() and "search" not in yaml.safe_load(explicit.to_yaml())
    assert [t.trial_id for t in explicit.trials()] == [t.trial_id for t in sweep.trials()]


@pytest.mark.parametrize(
    ("budget", "kind", "value"),
    [
        (None, "energy_fraction", 0.3),
        ({"energy_fraction": 0.2}, "energy_fraction", 0.2),
        ({"trials": 5}, "trials", 5),
        ({"energy_j": 1.5e4}, "energy_j", 1.5e4),
    ],
)
def test_pareto_takes_one_budget_and_round_trips_through_the_frozen_file(tmp_path, budget, kind, value):
    search = {"strategy": "pareto", "seed": 7} | ({} if budget is None else {"budget": budget})
    sweep = parse(tmp_path, search=search)
    assert sweep.search == SearchConfig("pareto", kind, value, 7)
    again = parse_sweep(yaml.safe_load(sweep.to_yaml()), base_dir=tmp_path)
    assert again.search == sweep.search
    assert [t.trial_id for t in again.trials()] == [t.trial_id for t in parse(tmp_path).trials()]


@pytest.mark.parametrize(
    ("search", "quality", "message"),
    [
        (
            {"strategy": "paretoo"},
            {"clap": True},
            "search.strategy = 'paretoo': must be one of grid, pareto; did you mean 'pareto'?",
        ),
        (
            {"strategy": "grid", "budget": {"trials": 3}},
            {"clap": True},
            "search.budget = {'trials': 3}: applies to strategy pareto only",
        ),
        (
            {"strategy": "pareto", "budget": {"trials": 3, "energy_j": 5}},
            {"clap": True},
            "must be one of {energy_fraction: F}",
        ),
        (
            {"strategy": "pareto", "budget": {"joules": 3}},
            {"clap": True},
            "search.budget.joules = 3: unknown key",
        ),
        (
            {"strategy": "pareto", "budget": {"energy_fraction": 1.5}},
            {"clap": True},
            "search.budget.energy_fraction = 1.5: must be a number from 0.001 to 1",
        ),
        (
            {"strategy": "pareto", "budget": {"trials": 2.5}},
            {"clap": True},
            "search.budget.trials = 2.5: must be an integer",
        ),
        ({"strategy": "pareto"}, None, "search.strategy = 'pareto': needs a quality to search for"),
        ({"strategy": "pareto", "sed": 1}, {"clap": True}, "search.sed = 1: unknown key"),
        ("pareto", {"clap": True}, "search = 'pareto': must be a mapping"),
    ],
)
def test_a_bad_search_key_is_one_line_naming_key_value_and_what_is_allowed(
    tmp_path, search, quality, message
):
    with pytest.raises(ConfigError) as info:
        parse_sweep({**BASE, "quality": quality, "search": search}, base_dir=tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)
