"""The paper's sweep files (configs/paper-*.yaml) load as shipped, and with the overrides their comments suggest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from t2a_ray.config import load_sweep
from t2a_ray.errors import ConfigError

CONFIGS = Path(__file__).parents[2] / "configs"
PAPER_MODELS = [
    "audioldm",
    "audioldm2",
    "stable-audio-open",
    "tango",
    "tango2",
    "make-an-audio",
    "make-an-audio-2",
]
STEPS = [10, 25, 50, 100, 150, 200]
# Tiny stable-audio-open has a short window (its limit in `t2a-ray models`): its tiny sweeps are shorter.
TINY_DURATION_S = 2
WEIGHT_OVERRIDES = [
    ((), "pretrained"),
    (("weights=random",), "random"),
    (("weights=tiny", f"grid.duration_s={TINY_DURATION_S}"), "tiny"),
]


def load_paper(name: str, overrides: tuple[str, ...], weights: str):
    """The sweep and its trials, after the checks every paper config shares."""
    sweep = load_sweep(CONFIGS / f"{name}.yaml", overrides=overrides)
    assert sweep.name == name and sweep.weights == weights and sweep.dtype == "float16"
    assert [m.id for m in sweep.models] == PAPER_MODELS
    return sweep, sweep.trials()


def test_the_paper_configs_are_where_the_tests_look():
    assert sorted(p.name for p in CONFIGS.glob("paper-*.yaml")) == [
        "paper-batch.yaml",
        "paper-quality.yaml",
        "paper-steps.yaml",
    ]


@pytest.mark.parametrize(("overrides", "weights"), WEIGHT_OVERRIDES)
def test_paper_steps_is_7_models_by_6_step_counts(overrides, weights):
    sweep, trials = load_paper("paper-steps", overrides, weights)
    assert len(trials) == 42 == len({t.trial_id for t in trials})
    assert sorted({t.params["steps"] for t in trials}) == STEPS
    assert {(t.model.id, t.params["steps"]) for t in trials} == {(m, s) for m in PAPER_MODELS for s in STEPS}
    assert {t.params["batch_size"] for t in trials} == {1}
    assert all(t.params["duration_s"] == (TINY_DURATION_S if weights == "tiny" else 10) for t in trials)
    assert sweep.repeats == 5 and len(sweep.prompts) == 1
    assert sweep.metering.min_window_s == 1.0 and sweep.metering.min_waveforms_per_window == 1


@pytest.mark.parametrize(("overrides", "weights"), WEIGHT_OVERRIDES)
def test_paper_batch_meters_10_waveforms_per_window_at_4_batch_sizes(overrides, weights):
    sweep, trials = load_paper("paper-batch", overrides, weights)
    assert len(trials) == 28 == len({t.trial_id for t in trials})
    assert sweep.metering.min_waveforms_per_window == 10
    assert sorted({t.params["batch_size"] for t in trials}) == [1, 2, 5, 10]
    assert {(t.model.id, t.params["batch_size"]) for t in trials} == {
        (m, b) for m in PAPER_MODELS for b in (1, 2, 5, 10)
    }
    assert {t.params["steps"] for t in trials} == {100}


def test_the_paper_configs_on_tiny_weights_at_10_s_are_refused_naming_the_tiny_window():
    with pytest.raises(ConfigError) as info:
        load_sweep(CONFIGS / "paper-steps.yaml", overrides=("weights=tiny",))
    assert info.value.key_path == "grid.duration_s"
    assert "tiny stable-audio-open runs duration_s up to 2.97 s" in str(info.value)


def test_the_weights_override_changes_every_trial_id():
    # a run on random weights must never be mistaken for (or resumed as) one on the published weights
    pretrained = {t.trial_id for t in load_sweep(CONFIGS / "paper-steps.yaml").trials()}
    random = {
        t.trial_id for t in load_sweep(CONFIGS / "paper-steps.yaml", overrides=("weights=random",)).trials()
    }
    assert pretrained.isdisjoint(random)


def test_paper_quality_needs_captions_and_reference_audio():
    with pytest.raises(ConfigError) as info:
        load_sweep(CONFIGS / "paper-quality.yaml")
    assert info.value.key_path == "prompts.file"
    assert "captions.csv" in str(info.value) and "no such file" in str(info.value)


def test_paper_quality_with_a_missing_reference_folder_names_it(tmp_path):
    captions = tmp_path / "captions.csv"
    captions.write_text("id,caption\n1,a dog barks\n")
    with pytest.raises(ConfigError) as info:
        load_sweep(CONFIGS / "paper-quality.yaml", overrides=(f"prompts.file={captions}",))
    assert info.value.key_path == "quality.fad.reference"
    assert "no such folder" in str(info.value)


def test_paper_quality_loads_with_captions_and_reference_given_by_overrides(tmp_path):
    captions = tmp_path / "captions.csv"
    captions.write_text(
        'id,caption\nac1,a dog barks\nac2,"rain on a tin roof, then thunder"\nac3,a train passes\n'
    )
    reference = tmp_path / "reference"
    reference.mkdir()
    sweep = load_sweep(
        CONFIGS / "paper-quality.yaml",
        overrides=(f"prompts.file={captions}", f"quality.fad.reference={reference}"),
    )
    assert sweep.name == "paper-quality" and sweep.weights == "pretrained"
    assert [m.id for m in sweep.models] == PAPER_MODELS
    assert [(p.id, p.text) for p in sweep.prompts] == [
        ("ac1", "a dog barks"),
        ("ac2", "rain on a tin roof, then thunder"),
        ("ac3", "a train passes"),
    ]
    assert sweep.quality.clap is True
    assert sweep.quality.fad_reference == str(reference.resolve())
    assert len(sweep.trials()) == 42
    assert sorted({t.params["steps"] for t in sweep.trials()}) == STEPS


def test_runtime_sweep_is_the_paper_models_by_compile_batch_and_steps():
    _, trials = load_paper("runtime", ("weights=random",), "random")
    grid = Counter((t.params["compile"], t.params["batch_size"], t.params["steps"]) for t in trials)
    assert set(grid) == {(c, b, s) for c in ("none", "reduce-overhead") for b in (1, 4) for s in (25, 100)}
    assert set(grid.values()) == {7} and {t.params["attention"] for t in trials} == {"default"}
    swept = load_sweep(
        CONFIGS / "runtime.yaml",
        overrides=("weights=random", "grid.attention=[default, flash, efficient, math]"),
    )
    assert len(swept.trials()) == 4 * len(trials)
