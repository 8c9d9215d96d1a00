"""`analyze --join`: globs, files of one schema stacked (never renamed into configuration keys), a
column that clashes with the results and differs refused; ±inf energies named and not counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from t2a_ray.analysis import analyze_table
from t2a_ray.analysis.inputs import join_all, read_tables
from t2a_ray.cli import main

MODELS = ("audioldm", "tango", "stable-audio-open")
STEPS = (10, 20)


def results(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        dict(model=m, steps=s, energy_j=(i + 1) * s * (1 + 0.01 * rng.standard_normal()))
        for i, m in enumerate(MODELS)
        for s in STEPS
        for _ in range(3)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    return tmp_path / "results.csv"


def scores(tmp_path, models=MODELS, clap=None):
    """One score file per model, one schema: as the study keeps its CLAP scores."""
    folder = tmp_path / "scores"
    folder.mkdir(exist_ok=True)
    for i, m in enumerate(models):
        df = pd.DataFrame([dict(model=m, steps=s, clap=clap or 0.1 * (i + 1) + s / 1000) for s in STEPS])
        df.to_csv(folder / f"{m}.csv", index=False)
    return folder


def analyze(tmp_path, *args):
    base = ["analyze", "--results", str(results(tmp_path)), "--energy", "energy_j", "--quality", "clap:max"]
    return CliRunner().invoke(main, [*base, *args, "--out", str(tmp_path / "r")])


def test_a_join_glob_stacks_files_of_one_schema(tmp_path):
    folder = scores(tmp_path)
    result = analyze(tmp_path, "--join", str(folder / "*.csv"), "--on", "model,steps")
    assert result.exit_code == 0, result.output
    configs = pd.read_csv(tmp_path / "r" / "configs.csv")
    assert len(configs) == len(MODELS) * len(STEPS) and configs["clap"].notna().all()
    assert not any(c.startswith("clap_") and c != "clap_ci95" for c in configs.columns)
    assert "3 files of one schema stacked" in result.output
    front = pd.read_csv(tmp_path / "r" / "fronts.csv")
    assert set(front["model"]) >= {"stable-audio-open"}  # the best CLAP: every model is on one front


def test_several_joins_of_one_schema_stack_like_a_glob(tmp_path):
    folder = scores(tmp_path)
    joins = [a for m in MODELS for a in ("--join", str(folder / f"{m}.csv"))]
    result = analyze(tmp_path, *joins, "--on", "model,steps")
    assert result.exit_code == 0, result.output
    configs = pd.read_csv(tmp_path / "r" / "configs.csv")
    assert configs["clap"].notna().all() and len(configs) == 6
    assert [
        c for c in configs.columns if "_x" in c or "_y" in c or c.startswith("clap_") and c != "clap_ci95"
    ] == []


def test_a_join_glob_that_matches_nothing_is_one_line(tmp_path):
    result = analyze(tmp_path, "--join", str(tmp_path / "none*.csv"), "--on", "model,steps")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "--join" in result.output and "matches no file" in result.output


def test_a_joined_column_that_clashes_and_differs_is_refused(tmp_path):
    folder = scores(tmp_path)
    for path in folder.glob("*.csv"):
        pd.read_csv(path).assign(energy_j=1.0).to_csv(path, index=False)
    result = analyze(tmp_path, "--join", str(folder / "*.csv"), "--on", "model,steps")
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "column energy_j is also in the results and differs" in result.output
    assert not (tmp_path / "r").exists()


def test_a_joined_column_equal_to_the_results_is_taken_once(tmp_path):
    table = read_tables([results(tmp_path)])
    table.frame["dataset"] = "audiocaps"
    folder = scores(tmp_path)
    for path in folder.glob("*.csv"):
        pd.read_csv(path).assign(dataset="audiocaps").to_csv(path, index=False)
    join_all(table, [str(folder / "*.csv")], [["model", "steps"]])
    assert [c for c in table.frame.columns if c.startswith("dataset")] == ["dataset"]
    assert table.frame["clap"].notna().all() and (table.frame["dataset"] == "audiocaps").all()


def test_two_stacked_files_that_disagree_on_a_key_are_refused(tmp_path):
    folder = scores(tmp_path)
    pd.read_csv(folder / "tango.csv").assign(clap=0.9).to_csv(folder / "tango-again.csv", index=False)
    result = analyze(tmp_path, "--join", str(folder / "*.csv"), "--on", "model,steps")
    assert result.exit_code == 2 and "repeat a key of --on model,steps" in result.output


@pytest.mark.parametrize("inf", [np.inf, -np.inf])
def test_infinite_energies_are_named_and_not_counted_as_used(tmp_path, inf):
    df = pd.read_csv(results(tmp_path))
    df.loc[0, "energy_j"] = inf
    a = analyze_table(df, "energy_j", [], [], tmp_path / "r", config_cols=["model", "steps"])
    assert a.used["rows"] == len(df) and a.used["used"] == len(df) - 1
    assert "1 row(s) with an infinite energy_j (±inf) were left out." in a.notes
    assert np.isfinite(a.configs["energy_j"]).all()
