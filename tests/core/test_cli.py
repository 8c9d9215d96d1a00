"""The CLI's outside: commands, help, exit codes, and bad input refused before anything is written."""

from __future__ import annotations

import sys
import textwrap
import types

import pytest
from click.testing import CliRunner

from t2a_ray.cli import main
from t2a_ray.metering.gpu import find_visible_gpu, visible_gpu_count

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
    assert (
        "noop" in result.output
        and "step_time_s" in result.output
        and "weights: pretrained, random, tiny" in result.output
    )


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
    result = CliRunner().invoke(
        main, ["launch", "--config", str(config), "--out", str(tmp_path / "runs"), "--gpus", "64"]
    )
    assert result.exit_code == 2
    assert "--gpus = 64" in result.output and "GPU(s) visible" in result.output
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write, root included: a read-only tmpfs where mounting is allowed, else a
    folder without write permission (which binds everyone but root)."""
    import os
    import shutil
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = (
        shutil.which("mount")
        and not subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
        ).returncode
    )
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("cannot make a folder read-only for root here (mount refused)")
        folder.chmod(0o555)
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        folder.chmod(0o755)


@pytest.mark.parametrize("where", ["inside", "below"])
def test_launch_out_that_cannot_be_written_is_one_line_before_anything_starts(
    tmp_path, read_only_folder, where
):
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    out = read_only_folder if where == "inside" else read_only_folder / "runs" / "deeper"
    result = CliRunner().invoke(main, ["launch", "--config", str(config), "--out", str(out), "--gpus", "0"])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    reason = "cannot be written" if where == "inside" else "cannot be created"
    assert line.startswith(f"error: --out = '{out}': {reason} (") and "Read-only file system" in line
    assert list(read_only_folder.iterdir()) == []


def test_launch_out_below_a_file_names_the_path_and_why(tmp_path):
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "runs"
    result = CliRunner().invoke(main, ["launch", "--config", str(config), "--out", str(out), "--gpus", "0"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: --out = '{out}': cannot be created (Not a directory)"


def test_status_says_no_driver_runs_a_sweep_left_behind(tmp_path):
    from t2a_ray.config import load_sweep
    from t2a_ray.runfolder import RunFolder

    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    run = RunFolder(tmp_path / "runs" / "good")
    run.create(load_sweep(config, device="cpu").to_yaml())
    result = invoke("status", str(run.root))
    assert result.exit_code == 0
    assert "trials    2: 0 ok, 0 infeasible, 0 failed, 2 pending" in result.output
    assert "driver    none running (`t2a-ray resume` continues the sweep)" in result.output


def test_status_resume_analyze_refuse_a_folder_that_is_not_a_run(tmp_path):
    for args in (
        ["status", str(tmp_path)],
        ["resume", str(tmp_path), "--gpus", "0"],
        ["analyze", str(tmp_path)],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "not a run folder" in result.output


def test_analyze_needs_exactly_one_source_and_valid_quality_specs(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("model,steps,energy,clap\na,10,1.0,0.3\n")
    assert CliRunner().invoke(main, ["analyze"]).exit_code == 2
    bad = CliRunner().invoke(
        main, ["analyze", "--results", str(table), "--energy", "energy", "--quality", "clap:up"]
    )
    assert bad.exit_code == 2 and "COL:max or COL:min" in bad.output
    missing = CliRunner().invoke(
        main, ["analyze", "--results", str(table), "--energy", "joules", "--quality", "clap:max"]
    )
    assert missing.exit_code == 2 and "joules" in missing.output


# --------------------------------------------------------------------------------------------------
# launch --set KEY=VALUE


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["bad"], "--set = 'bad'", "must be KEY=VALUE"),
        (["weights=tiny", "grid..steps=1"], "--set = 'grid..steps=1'", "must be KEY=VALUE"),
        (["weights.x=1"], "--set = 'weights.x=1'", "holds a value, not a mapping"),
        (["grid.steps=[10,"], "--set", "not valid YAML"),
        (["repetas=3"], "repetas", "did you mean 'repeats'"),  # the override is validated like the file
        (["grid.steps=[]"], "grid.steps", "zero trials"),
    ],
)
def test_bad_set_exits_2_with_one_line_and_writes_nothing(tmp_path, overrides, key, fragment):
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    out = tmp_path / "runs"
    args = ["launch", "--config", str(config), "--out", str(out), "--gpus", "0"]
    for item in overrides:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {config}: ") and key in lines[0] and fragment in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_set_changes_the_run_name_that_launch_checks(tmp_path):
    # An existing run is refused before anything runs: the refusal names the overridden name.
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    out = tmp_path / "runs"
    (out / "renamed").mkdir(parents=True)
    (out / "renamed" / "sweep.yaml").write_text(GOOD)
    result = CliRunner().invoke(
        main, ["launch", "--config", str(config), "--out", str(out), "--gpus", "0", "--set", "name=renamed"]
    )
    assert result.exit_code == 2, result.output
    assert "--name = 'renamed'" in result.output and "a run already exists" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["renamed"]


def test_launch_help_documents_set():
    result = invoke("launch", "--help")
    assert "--set KEY=VALUE" in result.output


# --------------------------------------------------------------------------------------------------
# visible_gpu_count (the CLI's count): NVML's count, no more than CUDA_VISIBLE_DEVICES names


def fake_pynvml(count=4, init_error=None):
    module = types.ModuleType("pynvml")
    module.calls = []

    def nvmlInit():
        module.calls.append("init")
        if init_error is not None:
            raise init_error

    def nvmlDeviceGetCount():
        module.calls.append("count")
        return count

    def nvmlShutdown():
        module.calls.append("shutdown")

    module.nvmlInit, module.nvmlDeviceGetCount, module.nvmlShutdown = (
        nvmlInit,
        nvmlDeviceGetCount,
        nvmlShutdown,
    )
    return module


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, 4),
        ("0,1", 2),
        ("1", 1),
        ("", 0),
        ("-1", 0),
        ("0,-1,1", 1),  # CUDA stops at the first entry it cannot use
        ("0,,1", 1),
        ("GPU-abc,GPU-def", 2),
        ("0,1,2,3,4,5", 4),  # never more than the driver sees
        (" 0 , 1 ", 2),
    ],
)
def test_visible_gpus_honours_cuda_visible_devices(monkeypatch, visible, expected):
    nvml = fake_pynvml(count=4)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert visible_gpu_count() == expected
    assert nvml.calls == ["init", "count", "shutdown"]


@pytest.mark.parametrize("visible", [None, "0,1"])
def test_visible_gpus_is_zero_without_a_driver(monkeypatch, visible):
    nvml = fake_pynvml(init_error=RuntimeError("NVML Shared Library Not Found"))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert visible_gpu_count() == 0
    assert nvml.calls == ["init"]


@pytest.mark.parametrize(
    "visible", [None, "0,1", "0,,1", "0,-1,1", "", "-1", "NoDevFiles", " 2 , 3 ", "0,1,2,3,4,5"]
)
def test_the_cli_counts_the_gpus_the_meter_can_find(visible):
    """One reading of CUDA_VISIBLE_DEVICES: every GPU the CLI counts is one the meter finds by ordinal,
    and the meter finds none past that count."""
    from t2a_ray.metering.fakes import FakeClock, FakeGPU, FakeNVML

    def fleet():
        clock = FakeClock()
        return FakeNVML([FakeGPU(clock, index=i, uuid=f"GPU-{i}{i}{i}{i}-x") for i in range(4)])

    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    count = visible_gpu_count(fleet(), env)
    found = [find_visible_gpu(fleet(), o, env=env, ask_cuda_driver=False)[0] for o in range(6)]
    assert [i is not None for i in found] == [o < count for o in range(6)]


def test_too_many_gpus_counts_only_the_visible_ones(tmp_path, monkeypatch):
    monkeypatch.delenv("T2A_RAY_LOGICAL_GPUS", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(count=4))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    result = CliRunner().invoke(
        main, ["launch", "--config", str(config), "--out", str(tmp_path / "runs"), "--gpus", "2"]
    )
    assert result.exit_code == 2, result.output
    assert "only 1 NVIDIA GPU(s) visible here; use --gpus 1 or fewer" in result.output
    assert not (tmp_path / "runs").exists()
