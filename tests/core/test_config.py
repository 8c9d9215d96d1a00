"""The sweep file: parsing, validation messages, expansion and stable trial ids."""

from __future__ import annotations

import pytest
import yaml

from t2a_ray.config import load_sweep, parse_sweep
from t2a_ray.errors import ConfigError

BASE = {
    "name": "t",
    "models": ["noop"],
    "weights": "tiny",
    "grid": {"steps": [10, 20], "guidance_scale": [1.0, 2.0], "duration_s": 1.0},
    "prompts": {"text": ["a dog barks", "rain"]},
    "repeats": 2,
}


def parse(doc, tmp_path):
    return parse_sweep(doc, base_dir=tmp_path)


def test_expands_grid_and_fills_defaults(tmp_path):
    sweep = parse(BASE, tmp_path)
    trials = sweep.trials()
    assert len(trials) == 4
    assert {t.params["steps"] for t in trials} == {10, 20}
    assert all(t.params["batch_size"] == 1 and t.params["step_time_s"] == 0.005 for t in trials)
    assert all(isinstance(t.params["duration_s"], float) for t in trials)
    assert len({t.trial_id for t in trials}) == 4


def test_trial_ids_do_not_depend_on_key_order(tmp_path, write_sweep):
    text = yaml.safe_dump(BASE, sort_keys=False)
    reordered = {k: BASE[k] for k in reversed(list(BASE))}
    reordered["grid"] = {k: BASE["grid"][k] for k in reversed(list(BASE["grid"]))}
    a = load_sweep(write_sweep(text, "a.yaml"))
    b = load_sweep(write_sweep(yaml.safe_dump(reordered, sort_keys=False), "b.yaml"))
    assert sorted(t.trial_id for t in a.trials()) == sorted(t.trial_id for t in b.trials())


def test_default_and_explicit_default_value_give_the_same_id(tmp_path):
    explicit = {**BASE, "grid": {"steps": 10, "guidance_scale": 1.0}}
    implicit = {**BASE, "grid": {"steps": 10, "guidance_scale": "default"}}
    assert parse(explicit, tmp_path).trials()[0].trial_id == parse(implicit, tmp_path).trials()[0].trial_id


def test_trial_id_is_a_fixed_function_of_the_configuration(tmp_path):
    # Pinned: the id must be the same on any machine and any day (a resume elsewhere depends on it).
    sweep = parse({**BASE, "grid": {"steps": 10}}, tmp_path)
    assert sweep.trials()[0].trial_id == sweep.trials()[0].trial_id
    assert len(sweep.trials()[0].trial_id) == 16
    other = parse({**BASE, "grid": {"steps": 11}}, tmp_path)
    assert other.trials()[0].trial_id != sweep.trials()[0].trial_id


def test_frozen_yaml_round_trips_to_the_same_trials(tmp_path):
    prompts = tmp_path / "captions.csv"
    prompts.write_text("id,caption\n101,a dog barks\n102,\"rain, heavy\"\n")
    sweep = parse({**BASE, "prompts": {"file": "captions.csv"}}, tmp_path)
    frozen = tmp_path / "frozen" / "sweep.yaml"
    frozen.parent.mkdir()
    frozen.write_text(sweep.to_yaml())
    again = load_sweep(frozen)
    assert again == sweep
    assert [p.id for p in again.prompts] == ["101", "102"]
    assert [t.trial_id for t in again.trials()] == [t.trial_id for t in sweep.trials()]


def test_prompt_txt_file(tmp_path):
    (tmp_path / "p.txt").write_text("first prompt\n\n  second prompt  \n")
    sweep = parse({**BASE, "prompts": {"file": "p.txt"}}, tmp_path)
    assert [(p.id, p.text) for p in sweep.prompts] == [("p0", "first prompt"), ("p1", "second prompt")]


@pytest.mark.parametrize(
    ("patch", "key", "fragment"),
    [
        ({"models": ["noop", "audiold"]}, "models[1]", "unknown model"),
        ({"grid": {"steps": [10, 0]}}, "grid.steps[1]", "integer from 1"),
        ({"grid": {"steps": 2.5}}, "grid.steps", "must be an integer"),
        ({"grid": {"guidance_scale": -1}}, "grid.guidance_scale", "from 0"),
        ({"grid": {"duration_s": 700}}, "grid.duration_s", "to 600 s"),
        ({"grid": {"steps": []}}, "grid.steps", "zero trials"),
        ({"grid": {"stepz": 10}}, "grid.stepz", "did you mean 'steps'"),
        ({"repeat": 3}, "repeat", "did you mean 'repeats'"),
        ({"prompts": {"text": []}}, "prompts.text", "non-empty list"),
        ({"prompts": {"file": "missing.csv"}}, "prompts.file", "no such file"),
        ({"repeats": "five"}, "repeats", "must be an integer"),
        ({"weights": "rand"}, "weights", "did you mean 'random'"),
        ({"metering": {"min_window_s": -1}}, "metering.min_window_s", "from 0"),
        ({"models": [{"id": "noop", "options": {"nope": 1}}]}, "models[0].options.nope", "takes options"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(tmp_path, patch, key, fragment):
    with pytest.raises(ConfigError) as info:
        parse({**BASE, **patch}, tmp_path)
    message = str(info.value)
    assert info.value.key_path == key
    assert fragment in message
    assert "\n" not in message
