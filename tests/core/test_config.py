"""The sweep file: parsing, validation messages, expansion and stable trial ids."""

from __future__ import annotations

import copy

import pytest
import yaml

from t2a_ray.config import apply_overrides, load_sweep, parse_sweep
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
    prompts.write_text('id,caption\n101,a dog barks\n102,"rain, heavy"\n')
    sweep = parse({**BASE, "prompts": {"file": "captions.csv"}}, tmp_path)
    frozen = tmp_path / "frozen" / "sweep.yaml"
    frozen.parent.mkdir()
    frozen.write_text(sweep.to_yaml())
    again = load_sweep(frozen)
    assert again == sweep
    assert [p.id for p in again.prompts] == ["101", "102"]
    assert [t.trial_id for t in again.trials()] == [t.trial_id for t in sweep.trials()]


@pytest.mark.parametrize(("device", "dtype"), [("cpu", "float32"), ("cuda", "float16")])
def test_dtype_auto_is_resolved_on_load_and_frozen_resolved(write_sweep, tmp_path, device, dtype):
    sweep = load_sweep(write_sweep(yaml.safe_dump({**BASE, "dtype": "auto"})), device=device)
    assert sweep.dtype == dtype and {t.dtype for t in sweep.trials()} == {dtype}
    frozen = write_sweep(sweep.to_yaml(), "frozen.yaml")
    assert yaml.safe_load(frozen.read_text())["dtype"] == dtype
    other = "cuda" if device == "cpu" else "cpu"  # a frozen sweep runs as frozen, wherever it is read
    assert load_sweep(frozen, device=other).trials() == sweep.trials()


def test_dtype_auto_without_a_device_follows_the_visible_gpus(tmp_path, monkeypatch):
    from t2a_ray.metering import gpu

    for count, dtype in ((0, "float32"), (2, "float16")):
        monkeypatch.setattr(gpu, "visible_gpu_count", lambda count=count: count)
        assert parse(BASE, tmp_path).dtype == dtype


def test_an_explicit_dtype_is_kept_on_any_device(tmp_path):
    assert parse_sweep({**BASE, "dtype": "bfloat16"}, tmp_path, device="cpu").dtype == "bfloat16"


def test_the_grid_is_expanded_once_per_sweep(tmp_path, monkeypatch):
    from t2a_ray import config

    calls = []
    real = config.expand
    monkeypatch.setattr(config, "expand", lambda sweep: calls.append(1) or real(sweep))
    sweep = parse(BASE, tmp_path)
    first = sweep.trials()
    assert sweep.trials() is first and sweep.trial(first[2].trial_id) is first[2]
    assert len(calls) == 1


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
        ({"metering": {"gpu": "power_integral"}}, "metering.gpu", "did you mean 'power-integral'"),
        ({"metering": {"cooldown_c": "cool"}}, "metering.cooldown_c", "must be a number from 0 to 150"),
        ({"models": [{"id": "noop", "options": {"nope": 1}}]}, "models[0].options.nope", "takes options"),
        (
            {"quality": {"clap": {"protocol": "laion"}}},
            "quality.clap.protocol",
            "one of stable-audio-metrics",
        ),
        ({"quality": {"clap": {"protocl": "x"}}}, "quality.clap.protocl", "did you mean 'protocol'"),
        ({"quality": {"fad": {"reference": ".", "embedding": "vggish"}}}, "quality.fad.embedding", "fadtk"),
        ({"quality": {"fad": {"reference": ".", "hop_s": 1}}}, "quality.fad.hop_s", "unknown key"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(tmp_path, patch, key, fragment):
    with pytest.raises(ConfigError) as info:
        parse({**BASE, **patch}, tmp_path)
    message = str(info.value)
    assert info.value.key_path == key
    assert fragment in message
    assert "\n" not in message


# --------------------------------------------------------------------------------------------------
# --set overrides (apply_overrides, load_sweep(overrides=...))


@pytest.mark.parametrize(
    ("override", "path", "expected"),
    [
        ("weights=random", ("weights",), "random"),
        ("grid.steps=[2,3]", ("grid", "steps"), [2, 3]),
        ("grid.duration_s=0.5", ("grid", "duration_s"), 0.5),
        ("metering.min_window_s=2", ("metering", "min_window_s"), 2),
        ("negative_prompt=null", ("negative_prompt",), None),
        ('prompts.text=["a: b", c]', ("prompts", "text"), ["a: b", "c"]),
    ],
)
def test_an_override_sets_the_value_read_as_yaml(override, path, expected):
    doc = apply_overrides(BASE, (override,))
    node = doc
    for key in path:
        node = node[key]
    assert node == expected
    assert type(node) is type(expected)


def test_overrides_create_missing_sections_and_leave_the_original_untouched():
    original = copy.deepcopy(BASE)
    doc = apply_overrides(
        BASE, ("metering.min_window_s=2", "carbon.intensity_g_per_kwh=300", "grid.steps=[2,3]")
    )
    assert doc["metering"] == {"min_window_s": 2}
    assert doc["carbon"] == {"intensity_g_per_kwh": 300}
    assert doc["grid"] == {**BASE["grid"], "steps": [2, 3]}  # the other axes of the section are kept
    assert BASE == original  # nested mappings too: a deep copy
    assert apply_overrides(BASE, ()) == original


def test_later_overrides_win_and_an_equals_sign_may_sit_in_the_value():
    doc = apply_overrides(BASE, ("weights=random", "weights=tiny", "negative_prompt=a=b"))
    assert doc["weights"] == "tiny"
    assert doc["negative_prompt"] == "a=b"


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("weights", "must be KEY=VALUE"),
        ("", "must be KEY=VALUE"),
        ("=tiny", "must be KEY=VALUE"),
        ("grid..steps=1", "must be KEY=VALUE"),
        ("grid.steps.=1", "must be KEY=VALUE"),
        ("weights.x=1", "'weights' holds a value, not a mapping"),
        ("grid.steps.x=1", "'steps' holds a value, not a mapping"),
        ("grid.steps=[10,", "not valid YAML"),
        ("weights={a: [}", "not valid YAML"),
    ],
)
def test_bad_overrides_raise_config_error_on_the_set_option(override, fragment):
    with pytest.raises(ConfigError) as info:
        apply_overrides(BASE, (override,))
    assert info.value.key_path == "--set"
    assert info.value.value == override
    assert fragment in str(info.value)


def test_load_sweep_applies_overrides_before_validation(write_sweep):
    path = write_sweep(yaml.safe_dump(BASE))
    plain = load_sweep(path)
    assert plain.weights == "tiny" and plain.metering.min_window_s == 0.0 and len(plain.trials()) == 4
    sweep = load_sweep(
        path,
        overrides=("grid.steps=[2,3,4]", "metering.min_window_s=2", "metering.min_waveforms_per_window=4"),
    )
    assert sweep.grid["steps"] == (2, 3, 4)
    assert sweep.metering.min_window_s == 2.0 and sweep.metering.min_waveforms_per_window == 4
    assert len(sweep.trials()) == 6
    assert path.read_text() == yaml.safe_dump(BASE)  # the file is never rewritten


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ("repetas=3", "repetas", "did you mean 'repeats'"),
        ("metering.min_windw_s=2", "metering.min_windw_s", "did you mean"),
        ("grid.stepz=[2]", "grid.stepz", "did you mean 'steps'"),
        ("weights=rand", "weights", "did you mean 'random'"),
        ("grid.steps=[]", "grid.steps", "zero trials"),
    ],
)
def test_overridden_values_are_validated_like_the_file(write_sweep, override, key, fragment):
    path = write_sweep(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError) as info:
        load_sweep(path, overrides=(override,))
    assert info.value.key_path == key
    assert fragment in str(info.value)
    assert str(path) in str(info.value)  # the source is named, as for the file's own errors


def test_a_bad_override_names_the_sweep_file(write_sweep):
    path = write_sweep(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError) as info:
        load_sweep(path, overrides=("weights.x=1",))
    assert info.value.key_path == "--set"
    assert str(info.value).startswith(f"{path}: --set = 'weights.x=1': ")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------
# metering.min_waveforms_per_window


def test_min_waveforms_per_window_defaults_to_one_and_accepts_its_range(tmp_path):
    assert parse(BASE, tmp_path).metering.min_waveforms_per_window == 1
    for n in (1, 10, 10_000):
        sweep = parse({**BASE, "metering": {"min_waveforms_per_window": n}}, tmp_path)
        assert sweep.metering.min_waveforms_per_window == n
        assert isinstance(sweep.metering.min_waveforms_per_window, int)


@pytest.mark.parametrize("value", [0, -1, 1.5, 10.0, "x", "10", True, None, 10_001, [10]])
def test_min_waveforms_per_window_must_be_an_integer_from_1_to_10000(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        parse({**BASE, "metering": {"min_waveforms_per_window": value}}, tmp_path)
    assert info.value.key_path == "metering.min_waveforms_per_window"
    assert "integer from 1 to 10000" in str(info.value)


def test_min_waveforms_per_window_survives_the_frozen_yaml(tmp_path):
    sweep = parse({**BASE, "metering": {"min_waveforms_per_window": 7}}, tmp_path)
    frozen = tmp_path / "sweep.yaml"
    frozen.write_text(sweep.to_yaml())
    assert load_sweep(frozen).metering.min_waveforms_per_window == 7


# --------------------------------------------------------------------------------------------------
# metering.gpu, metering.cooldown_c


def test_metering_gpu_and_cooldown_parse_and_survive_the_frozen_yaml(tmp_path):
    plain = parse(BASE, tmp_path)
    assert plain.metering.gpu == "counter" and plain.metering.cooldown_c is None
    sweep = parse(
        {**BASE, "metering": {"gpu": "power-integral", "cooldown_c": 60, "cooldown_max_s": 90}}, tmp_path
    )
    assert (sweep.metering.gpu, sweep.metering.cooldown_c, sweep.metering.cooldown_max_s) == (
        "power-integral",
        60.0,
        90.0,
    )
    again = parse(yaml.safe_load(sweep.to_yaml()), tmp_path)
    assert again.metering == sweep.metering


def test_quality_names_its_protocols_and_they_survive_the_frozen_yaml(tmp_path):
    doc = {**BASE, "quality": {"clap": {"checkpoint": "ckpt/clap"}, "fad": {"reference": "."}}}
    q = parse(doc, tmp_path).quality
    assert (q.clap, q.clap_checkpoint, q.clap_protocol) == ("ckpt/clap", "ckpt/clap", "stable-audio-metrics")
    assert (q.fad_reference, q.fad_embedding) == (str(tmp_path.resolve()), "fadtk")
    frozen = parse_sweep(yaml.safe_load(parse(doc, tmp_path).to_yaml()), base_dir=tmp_path)
    assert frozen.quality == q
    assert parse({**BASE, "quality": {"clap": True}}, tmp_path).quality.clap_checkpoint is None


def test_placement_defaults_to_auto_survives_the_frozen_yaml_and_names_what_is_allowed(tmp_path):
    assert parse(BASE, tmp_path).placement == "auto"
    spread = parse({**BASE, "placement": "spread"}, tmp_path)
    assert parse(yaml.safe_load(spread.to_yaml()), tmp_path).placement == "spread"
    with pytest.raises(
        ConfigError, match="placement = 'sprad': must be one of auto, spread, pack; did you mean"
    ):
        parse({**BASE, "placement": "sprad"}, tmp_path)
