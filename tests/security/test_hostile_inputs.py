"""Hostile inputs refused at validation, before Ray starts (one line, exit 2, nothing written): a model
repo that is a URL, a system folder or a path to nothing; --out at a system folder; and formula cells
(CSV injection) written as text in every CSV of the report."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from t2a_ray.analysis.report import spreadsheet_safe
from t2a_ray.cli import main
from t2a_ray.config import is_system_path, parse_sweep
from t2a_ray.errors import ConfigError

BASE = {"name": "t", "weights": "tiny", "grid": {"steps": 2}, "prompts": {"text": ["a dog barks"]}}
FORMULAS = ["=cmd|' /C calc'!A0", "+x", "-x", "@x", '=HYPERLINK("http://evil.example","click")', "\tx", "\rx"]


def with_repo(repo):
    return {**BASE, "models": [{"id": "audioldm", "repo": repo}]}


@pytest.mark.parametrize(
    "repo, fragment",
    [
        ("https://example.org/model", "not a URL"),
        ("http://x", "not a URL"),
        ("file:///etc", "not a URL"),
        ("s3://bucket/m", "not a URL"),
        ("hf://org/name", "not a URL"),
        ("/etc", "/etc is a folder of the operating system"),
        ("/", "/ is a folder of the operating system"),
        ("/proc/self", "is a folder of the operating system"),
        ("../../nowhere/at/all", "no such folder"),
        ("./missing", "no such folder"),
        ("org/name/extra", "no such folder"),
    ],
)
def test_a_bad_model_repo_is_refused_at_validation(tmp_path, repo, fragment):
    with pytest.raises(ConfigError) as info:
        parse_sweep(with_repo(repo), tmp_path)
    assert info.value.key_path == "models[0].repo" and fragment in str(info.value)


def test_a_repo_climbing_to_a_system_folder_is_refused(tmp_path):
    climb = "../" * len(tmp_path.parts) + "etc"
    with pytest.raises(ConfigError, match="/etc is a folder of the operating system"):
        parse_sweep(with_repo(climb), tmp_path)


def test_a_file_as_repo_is_refused(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        parse_sweep(with_repo("model.bin"), tmp_path)


def test_hub_ids_and_existing_folders_are_taken(tmp_path):
    assert (
        parse_sweep(with_repo("cvssp/audioldm-s-full-v2"), tmp_path).models[0].repo
        == "cvssp/audioldm-s-full-v2"
    )
    (tmp_path / "weights" / "audioldm").mkdir(parents=True)
    # a folder relative to the sweep file, made absolute (a worker's working directory may differ)
    sweep = parse_sweep(with_repo("weights/audioldm"), tmp_path)
    assert sweep.models[0].repo == str(tmp_path / "weights" / "audioldm")


def test_a_bad_repo_at_launch_is_one_line_exit_2(tmp_path, write_sweep):
    config = write_sweep(
        "name: t\nmodels: [{id: audioldm, repo: '../../etc'}]\nweights: tiny\ngrid: {steps: 2}\n"
        "prompts: {text: [a]}\n"
    )
    result = CliRunner().invoke(
        main, ["launch", "--config", str(config), "--gpus", "0", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "models[0].repo = '../../etc'" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("out", ["/", "/etc", "/usr", "/bin", "/proc", "/sys", "/dev", "/usr/lib/x", "/var"])
def test_out_at_a_system_folder_is_refused(tmp_path, write_sweep, out):
    config = write_sweep("name: t\nmodels: [noop]\nweights: tiny\ngrid: {steps: 2}\nprompts: {text: [a]}\n")
    result = CliRunner().invoke(main, ["launch", "--config", str(config), "--gpus", "0", "--out", out])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert f"--out = '{out}': is a folder of the operating system" in result.output
    table = tmp_path / "t.csv"
    pd.DataFrame({"model": ["a", "b"], "energy_j": [1.0, 2.0]}).to_csv(table, index=False)
    result = CliRunner().invoke(
        main, ["analyze", "--results", str(table), "--energy", "energy_j", "--out", out]
    )
    assert result.exit_code == 2 and "is a folder of the operating system" in result.output


def test_formula_cells_become_text_and_numbers_stay_numbers():
    df = pd.DataFrame({"label": [*FORMULAS, "a dog", None], "energy_j": [-1.5] * 7 + [2.0, 3.0]})
    safe = spreadsheet_safe(df)
    assert safe["label"].tolist()[:7] == [f"'{f}" for f in FORMULAS]
    assert safe["label"].tolist()[7] == "a dog" and safe["label"].isna().tolist()[8]
    assert safe["energy_j"].tolist() == df["energy_j"].tolist()  # -1.5 is a number, not a formula
    assert list(spreadsheet_safe(pd.DataFrame({"=x": [1]})).columns) == ["'=x"]
    # a number written as text is a number too; text that only starts like one is not
    text = pd.DataFrame({"v": ["-1.5", "+2", "-3e-4", "-1+1", "-inf", "1-1"]})
    assert spreadsheet_safe(text)["v"].tolist() == ["-1.5", "+2", "-3e-4", "'-1+1", "'-inf", "1-1"]


def read_raw(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_every_csv_of_the_report_escapes_formulas_from_prompts_and_joined_tables(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        dict(
            model=m,
            steps=s,
            prompt=FORMULAS[i % len(FORMULAS)],
            energy_j=-0.5 + s * (1 + 0.01 * rng.random()),
            clap=0.1 * s,
        )
        for i, m in enumerate(["=1+1", "+a", "-b", "@c"])
        for s in (10, 20)
        for _ in range(3)
    ]
    table = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    notes = pd.DataFrame({"model": ["=1+1", "+a", "-b", "@c"], "comment": FORMULAS[:4]})
    notes.to_csv(tmp_path / "notes.csv", index=False)
    args = ["analyze", "--results", str(table), "--energy", "energy_j", "--quality", "clap:max"]
    args += ["--config-cols", "model,steps", "--join", str(tmp_path / "notes.csv"), "--on", "model"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    written = sorted((tmp_path / "r").glob("*.csv"))
    assert {p.name for p in written} >= {"configs.csv", "fronts.csv"}
    for path in written:
        for row in read_raw(path):
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (path.name, cell)
                if cell.startswith("-"):  # a negative number, never text
                    float(cell)
    configs = pd.read_csv(tmp_path / "r" / "configs.csv")
    assert set(configs["model"]) == {"'=1+1", "'+a", "'-b", "'@c"}
    front = pd.read_csv(tmp_path / "r" / "fronts.csv")
    assert front["prompt"].str.startswith("'").all() and (front["energy_j"] < 10).any()


@pytest.mark.parametrize(
    "path, system",
    [
        ("/", True),
        ("/usr", True),
        ("/usr/lib/python3", True),
        ("/etc/t2a", True),
        ("/proc/self", True),
        ("/home", True),
        ("/usr/local/src/project/runs", False),
        ("/home/me/runs", False),
        ("/tmp/runs", False),
        ("/var/tmp/runs", False),
    ],
)
def test_system_folders_are_the_roots_and_the_trees_below_them(path, system):
    assert is_system_path(path) is system
