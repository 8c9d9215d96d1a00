"""benchmarks/recompute.py: every registered figure of the committed records recomputes from the
committed run data, and the records say which figures come from runs whose folders were not kept."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from t2a_ray.runfolder import RunFolder

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recompute():
    return _load("recompute")


def test_every_registered_figure_recomputes_to_what_its_record_writes(recompute):
    results = recompute.check()
    mismatches = [
        f"{f.record}: {f.name} written {f.written}, recomputed {v:.6g}" for f, v, ok in results if not ok
    ]
    assert mismatches == []
    records = {f.record for f, _, _ in results}
    assert {"README.md", "docs/results/h100/README.md", "docs/results/replication/README.md"} <= records


def test_every_registered_value_is_written_in_its_record_and_unkept_runs_are_marked(recompute):
    assert recompute.record_problems() == []


def test_every_figure_bearing_record_names_the_data_behind_it(recompute):
    assert recompute.inventory_problems() == []


def test_a_figure_off_by_more_than_its_rounding_is_a_mismatch(recompute):
    figure = next(f for f in recompute.check() if f[0].name == "tango J/step")[0]
    value = figure.compute()
    off = dataclasses.replace(figure, written=f"{value + 3 * figure.tolerance:.2f}")
    assert off.check()[1] is False
    assert figure.check()[1] is True


def test_the_replication_reading_holds_the_tables_recomputed_from_its_run_folders(recompute):
    text = (recompute.ROOT / "docs/results/replication/README.md").read_text()
    missing = [line for line in recompute.replication_tables().splitlines() if line and line not in text]
    assert missing == []


def test_a_kept_run_has_its_rows_and_logs_but_not_tunes_own_state(tmp_path):
    keep_runs = _load("keep_runs")
    src = tmp_path / "src" / "replication-batch"
    shutil.copytree(BENCHMARKS.parent / "docs/results/replication/replication-batch", src)
    (src / "tune" / "experiment").mkdir(parents=True)
    (src / "tune" / "experiment" / "state.json").write_text("{}")
    dest = keep_runs.runs_dir(tmp_path / "results", "scaling_gpu")
    kept = keep_runs.keep_run(RunFolder(src), dest)
    assert kept == tmp_path / "results" / "runs" / "scaling_gpu" / "replication-batch"
    assert not (kept / "tune").exists() and not (kept / "report").exists()
    assert (kept / "sweep.yaml").read_text() == (src / "sweep.yaml").read_text()
    assert sorted(p.name for p in (kept / "trials").iterdir()) == sorted(
        p.name for p in (src / "trials").iterdir()
    )
    assert sorted(p.name for p in (kept / "logs").iterdir()) == sorted(
        p.name for p in (src / "logs").iterdir()
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(kept / "results.parquet"), pd.read_parquet(src / "results.parquet")
    )
