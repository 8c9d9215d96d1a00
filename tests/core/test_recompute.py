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


def test_every_recomputed_table_and_printout_agrees_with_its_record(recompute):
    problems = [p for _, _, _, found in recompute.table_checks() for p in found]
    assert problems == []
    assert recompute.printout_checks()[1] == ()
    covered = {t.record for t, _, cells, _ in recompute.table_checks() if cells}
    assert {"docs/results/h100/README.md", "docs/results/h200/runtime/README.md"} <= covered
    assert any(
        record == "benchmarks/results/search_bench.md" for record, _, _ in recompute.printout_checks()[0]
    )


def test_every_figure_of_every_record_is_checked_marked_or_a_listed_setting(recompute):
    # a record without kept data says so at its top; no record has an unchecked, unmarked figure
    assert recompute.coverage_problems() == []
    assert all(recompute.coverage(r).uncovered == () for r in recompute.figure_records())


def test_the_extractor_finds_figures_and_leaves_out_code_dates_versions_and_names(recompute):
    text = """# A record

> **Not recomputable from committed data: figures from the run's output.**

- date: 2026-11-30 07:00 UTC, driver 580.159.04, torch 2.11, on an H100 (GPU-2d873470), fp16
- command: `python bench.py --steps 10 --budget 0.1`
- saves 76–81 % gross, 1.91× in wall time, 2 cores, 7 repeats, idle 122 W, p = 3.5e-11

| model | batch 10 / batch 1 |
|---|---|
| make-an-audio-2 | 0.53 |
"""
    numbers = recompute.record_numbers.numbers("a.md", text)
    assert [n.text for n in numbers] == ["76", "81 %", "1.91×", "122", "3.5e-11", "0.53"]
    assert [n.table for n in numbers][-1] == 0
    assert recompute.record_numbers.sections(text)[0].marked
    assert not recompute.record_numbers.sections(text.replace("Not recomputable", "Recorded"))[0].marked


def test_a_cell_off_by_more_than_its_rounding_is_a_mismatch(recompute):
    # the report's CI of AudioLDM at batch 2 (docs/results/h100/paper-batch/report/configs.csv) is 47.4975
    compare = recompute.record_numbers.compare_cell
    assert compare("327 ± 47", (327.12115534183306, 47.49753391917656)) is None
    assert compare("327 ± 48", (327.12115534183306, 47.49753391917656)) is not None
    assert compare("−76 %", "-75.9 %") is None and compare("−76 %", "-76.6 %") is not None
    assert compare("64 / 64", (64, 63)) is not None


def test_a_wrong_oracle_bound_or_summary_cell_in_the_search_bench_record_is_a_mismatch(recompute):
    search = recompute.record_search
    sections = search.sections()
    assert search.bullet_lines(sections)[1] == [] and search.printouts(sections)[1] == []
    # the bound with two rows per configuration on AudioCaps, both metrics: 0.043 written
    k, s = next(
        (k, s)
        for k, s in enumerate(sections)
        if any("audiocaps clap_model + fad_model" in b for _, b in s.bullets)
    )
    bullets = tuple((i, b.replace("0.043 measuring", "0.041 measuring")) for i, b in s.bullets)
    off = (dataclasses.replace(s, bullets=bullets),)
    (problem,) = search.bullet_lines(off)[1]
    assert "0.041 measuring" in problem and "0.043 measuring" in problem
    # the last column of a summary row: the median energy to 95 % of the hypervolume over the seeds
    i, row = next((i, line) for i, line in s.printout if line.rstrip().endswith(("0.031", "0.032")))
    printout = tuple((j, line[:-5] + "0.052" if j == i else line) for j, line in s.printout)
    (problem,) = search.printouts((dataclasses.replace(s, printout=printout),))[1]
    assert "energy_to_hv95_median" in problem and f"line {i}" in problem
    assert sections[k] is s
