"""What can be known before anything loads is refused at validation: a weight mode's limits (from the
card), a CUDA-graph runtime on the CPU, keys and grid values given twice, a model id in another case;
and `t2a-ray models` shows the limits of each weight mode."""

from __future__ import annotations

import inspect
import json
import sys

import pytest
from click.testing import CliRunner

from t2a_ray.adapters import get_card
from t2a_ray.adapters.base import TINY_TEXT_TOKENS
from t2a_ray.cli import main
from t2a_ray.config import load_sweep, parse_sweep, prompt_notes
from t2a_ray.errors import ConfigError
from t2a_ray.runfolder import RunFolder

SAO = {
    "name": "sao",
    "models": ["stable-audio-open"],
    "weights": "tiny",
    "grid": {"steps": [2, 3], "duration_s": 5},
    "prompts": {"text": ["a dog barks"]},
}
SWEEP_TEXT = """\
name: t
models: [noop]
weights: tiny
grid:
  steps: [2, 3]
  duration_s: 0.5
prompts: {text: [a dog barks]}
"""


def launch(tmp_path, config, *args):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["launch", "--config", str(config), "--out", str(out), *args])
    return result, out


def test_tiny_stable_audio_open_refuses_a_duration_beyond_its_window(tmp_path):
    with pytest.raises(ConfigError) as info:
        parse_sweep(SAO, tmp_path)
    assert info.value.key_path == "grid.duration_s" and info.value.value == 5.0
    assert "tiny stable-audio-open runs duration_s up to 2.97 s" in str(info.value)
    assert "256 latents × 512 samples at 44100 Hz" in str(info.value)
    # the model's default duration (10 s) is beyond it too, and the message says it is the default
    with pytest.raises(ConfigError, match="it is stable-audio-open's default: set grid.duration_s"):
        parse_sweep({**SAO, "grid": {"steps": 2}}, tmp_path)
    # up to the window it runs; full size takes the card's range
    assert parse_sweep({**SAO, "grid": {"duration_s": 2.97}}, tmp_path).trials()
    assert parse_sweep({**SAO, "weights": "random"}, tmp_path).trials()


def test_the_tiny_window_is_derived_from_the_tiny_configuration():
    card = get_card("stable-audio-open")
    assert card.limits("tiny").maximum["duration_s"] == pytest.approx((256 * 8 * 8 * 8 - 1) / 44_100)
    assert card.limits("pretrained").maximum["duration_s"] == card.param("duration_s").maximum
    assert card.limits("tiny").text_max_tokens == TINY_TEXT_TOKENS
    assert card.limits("pretrained").text_max_tokens == card.text_max_tokens == 128


def test_a_refused_limit_at_launch_is_one_line_exit_2_and_nothing_written(tmp_path, write_sweep):
    config = write_sweep(SWEEP_TEXT.replace("noop", "stable-audio-open").replace("0.5", "5"))
    result, out = launch(tmp_path, config, "--gpus", "0")
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "grid.duration_s = 5.0" in result.output
    assert not (out / "t").exists()


def test_models_shows_the_limits_of_each_weight_mode():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    block = result.output.split("stable-audio-open  —")[1].split("\n\n")[0]
    limits = next(line for line in block.splitlines() if line.strip().startswith("limits:"))
    assert "pretrained, random: duration_s 0.1–47 s, prompts 128 tokens" in limits
    assert "tiny: duration_s 0.1–2.97 s (its window: 256 latents × 512 samples at 44100 Hz)" in limits
    docs = {d["id"]: d for d in json.loads(CliRunner().invoke(main, ["models", "--json"]).output)}
    sao = docs["stable-audio-open"]["limits"]
    assert sao["tiny"]["maximum"]["duration_s"] == pytest.approx(2.9722, abs=1e-4)
    assert sao["pretrained"]["maximum"]["duration_s"] == 47.0
    assert sao["tiny"]["text_max_tokens"] == 32 and docs["noop"]["limits"]["tiny"]["text_max_tokens"] is None


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_a_cuda_graph_runtime_on_the_cpu_is_refused_before_ray_starts(tmp_path, write_sweep, mode):
    text = SWEEP_TEXT.replace("noop", "audioldm").replace("duration_s: 0.5", f"compile: [none, {mode}]")
    result, out = launch(tmp_path, write_sweep(text), "--gpus", "0")
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert f"grid.compile = '{mode}': captures CUDA graphs, which need a GPU" in result.output
    assert not out.exists() or not any(out.iterdir())
    # validated without a device (a worker reading sweep.yaml), the same file is fine
    assert len(load_sweep(write_sweep(text)).trials()) == 4


def test_a_duplicated_yaml_key_is_refused_naming_the_key_and_its_lines(write_sweep):
    text = SWEEP_TEXT.replace("  duration_s: 0.5\n", "  duration_s: 0.5\n  steps: 4\n")
    with pytest.raises(ConfigError) as info:
        load_sweep(write_sweep(text))
    assert info.value.key_path == "grid.steps"
    assert "given twice (lines 5 and 7): give each key once" in str(info.value)
    nested = SWEEP_TEXT.replace(
        "models: [noop]", "models: [{id: noop, options: {fault: none, fault: error}}]"
    )
    with pytest.raises(ConfigError, match=r"models\[0\]\.options\.fault = 'error': given twice"):
        load_sweep(write_sweep(nested))
    with pytest.raises(ConfigError, match="^.*sweep.yaml: name = 'u': given twice"):
        load_sweep(write_sweep(SWEEP_TEXT + "name: u\n"))


def test_brackets_nested_too_deeply_are_refused_where_the_level_too_many_starts(write_sweep):
    """Read without recursing past MAX_DEPTH: under a recursion limit that composing 300 levels would
    exceed, the refusal still names the bracket that opens the 17th level."""
    deep = write_sweep(SWEEP_TEXT + "x: " + "[" * 300 + "]" * 300 + "\n")
    line = SWEEP_TEXT.count("\n") + 1
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 250)
    try:
        with pytest.raises(ConfigError) as info:
            load_sweep(deep)
    finally:
        sys.setrecursionlimit(limit)
    assert str(info.value).endswith(
        f"(yaml) = 'line {line}, column 20': invalid YAML: nested too deeply"
        " (at most 16 levels; a sweep file needs 5)"
    )


def test_a_set_value_nested_too_deeply_is_refused_in_one_line(tmp_path, write_sweep):
    result, _ = launch(tmp_path, write_sweep(SWEEP_TEXT), "--gpus", "0", "--set", "x=" + "[" * 20 + "]" * 20)
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "the value is not valid YAML: nested too deeply (at most 16 levels" in result.output
    assert "(line 1, column 18)" in result.output  # the 17th level's bracket


def test_a_duplicated_key_at_launch_is_exit_2(tmp_path, write_sweep):
    result, _ = launch(tmp_path, write_sweep(SWEEP_TEXT + "repeats: 1\nrepeats: 2\n"), "--gpus", "0")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "repeats = '2': given twice (lines 8 and 9)" in result.output


def test_yaml_merge_keys_and_equal_keys_of_different_mappings_are_not_duplicates(write_sweep):
    text = SWEEP_TEXT.replace("grid:\n", "base: &b {steps: 2}\ngrid:\n  <<: *b\n").replace("base:", "x-base:")
    # an unknown top-level key is refused on its own account; the merge key is not a duplicate
    with pytest.raises(ConfigError, match="x-base = .*unknown key"):
        load_sweep(write_sweep(text))


def test_a_grid_value_given_twice_is_refused(tmp_path):
    doc = {**SAO, "models": ["noop"], "grid": {"steps": [2, 2]}}
    with pytest.raises(ConfigError) as info:
        parse_sweep(doc, tmp_path)
    assert str(info.value) == "grid.steps = [2, 2]: 2 given twice"
    # 2 and 2.0 are different values of a YAML file; the expansion still refuses them as one configuration
    with pytest.raises(ConfigError, match="same configuration"):
        parse_sweep({**doc, "grid": {"duration_s": [2, 2.0]}}, tmp_path)


@pytest.mark.parametrize(
    "written, meant", [("AudioLDM", "audioldm"), ("Stable-Audio-Open", "stable-audio-open")]
)
def test_a_model_id_in_another_case_gets_its_suggestion(tmp_path, written, meant):
    with pytest.raises(ConfigError, match=f"unknown model .*did you mean '{meant}'"):
        parse_sweep({**SAO, "models": [written]}, tmp_path)


def test_prompts_certain_to_be_truncated_are_named_with_the_token_limit(tmp_path):
    long = " ".join(["dog"] * (TINY_TEXT_TOKENS + 1))
    doc = {
        **SAO,
        "models": ["audioldm", "noop"],
        "grid": {"steps": 2},
        "prompts": {"items": [{"id": "short", "text": "a dog"}, {"id": "long", "text": long}]},
    }
    sweep = parse_sweep(doc, tmp_path)
    assert prompt_notes(sweep) == ["prompt 'long' is cut short: audioldm (tiny) reads 32 tokens of a prompt."]
    assert prompt_notes(parse_sweep({**doc, "weights": "random"}, tmp_path)) == []  # 512 tokens
    recorded = prompt_notes(sweep, {"audioldm": {"short", "long"}})
    assert recorded == [
        "prompts 'long', 'short' were cut short: audioldm (tiny) reads 32 tokens of a prompt."
    ]


def test_resume_on_the_cpu_refuses_a_cuda_graph_runtime(tmp_path, write_sweep):
    text = SWEEP_TEXT.replace("noop", "audioldm").replace(
        "duration_s: 0.5", "compile: [none, reduce-overhead]"
    )
    run = RunFolder(tmp_path / "runs" / "t")
    run.create(load_sweep(write_sweep(text), device="cuda").to_yaml())  # launched where a GPU was
    result = CliRunner().invoke(main, ["resume", str(run.root), "--gpus", "0"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "grid.compile = 'reduce-overhead': captures CUDA graphs" in result.output
    assert not run.results.exists()


def test_a_key_given_twice_in_a_set_value_is_refused(write_sweep):
    with pytest.raises(
        ConfigError, match=r"--set = 'grid=\{steps: 2, steps: 3\}': the value gives steps twice"
    ):
        load_sweep(write_sweep(SWEEP_TEXT), overrides=("grid={steps: 2, steps: 3}",))
