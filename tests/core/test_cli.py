"""The CLI's outside: commands, help, exit codes, and bad input refused before anything is written."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from t2a_ray.cli import main

GOOD = """
name: good
models: [noop]
weights: tiny
grid: {steps: [10, 20]}
prompts: {text: ["a dog barks"]}
"""


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_the_five_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("launch", "resume", "status", "analyze", "models"):
        assert command in result.output
        assert invoke(command, "--help").exit_code == 0


def test_models_lists_every_card_with_parameters():
    result = invoke("models")
    assert result.exit_code == 0
    assert "noop" in result.output and "step_time_s" in result.output and "weights: pretrained, random, tiny" in result.output


BAD_CASES = {
    "unknown model": ("models: [noop, audioldm9]", "models[1]", "unknown model"),
    "zero steps": ("grid: {steps: [0, 10]}", "grid.steps[0]", "integer from 1"),
    "non-integer steps": ("grid: {steps: 12.5}", "grid.steps", "integer"),
    "negative guidance": ("grid: {guidance_scale: -2}", "grid.guidance_scale", "from 0"),
    "duration out of range": ("grid: {duration_s: 1000}", "grid.duration_s", "to 600 s"),
    "empty prompt list": ("prompts: {text: []}", "prompts.text", "non-empty"),
    "missing prompt file": ("prompts: {file: nowhere.csv}", "prompts.file", "no such file"),
    "unknown key": ("repetas: 3", "repetas", "did you mean 'repeats'"),
    "wrong type": ("warmup: [1]", "warmup", "must be an integer"),
    "zero-trial grid": ("grid: {steps: []}", "grid.steps", "zero trials"),
    "broken yaml": ("grid: {steps: [10,", "(yaml)", "invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_sweep_exits_2_with_one_line_and_writes_nothing(tmp_path, case):
    override, key, fragment = BAD_CASES[case]
    base = {line.split(":")[0]: line for line in textwrap.dedent(GOOD).strip().splitlines()}
    base[override.split(":")[0]] = override
    config = tmp_path / "bad.yaml"
    config.write_text("\n".join(base.values()) + "\n")
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["launch", "--config", str(config), "--out", str(out), "--gpus", "0"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and key in lines[0] and fragment in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_too_many_gpus_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("T2A_RAY_LOGICAL_GPUS", raising=False)
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    result = CliRunner().invoke(main, ["launch", "--config", str(config), "--out", str(tmp_path / "runs"), "--gpus", "64"])
    assert result.exit_code == 2
    assert "--gpus = 64" in result.output and "GPU(s) visible" in result.output
    assert not (tmp_path / "runs").exists()


def test_status_resume_analyze_refuse_a_folder_that_is_not_a_run(tmp_path):
    for args in (["status", str(tmp_path)], ["resume", str(tmp_path), "--gpus", "0"], ["analyze", str(tmp_path)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "not a run folder" in result.output


def test_analyze_needs_exactly_one_source_and_valid_quality_specs(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("model,steps,energy,clap\na,10,1.0,0.3\n")
    assert CliRunner().invoke(main, ["analyze"]).exit_code == 2
    bad = CliRunner().invoke(main, ["analyze", "--results", str(table), "--energy", "energy", "--quality", "clap:up"])
    assert bad.exit_code == 2 and "COL:max or COL:min" in bad.output
    missing = CliRunner().invoke(main, ["analyze", "--results", str(table), "--energy", "joules", "--quality", "clap:max"])
    assert missing.exit_code == 2 and "joules" in missing.output
