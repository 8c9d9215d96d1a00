"""A fit, front or ranking whose configurations were measured on different GPUs or hosts, with nothing
to balance them, carries a warning naming them and the reference workload's ratio between them (from
the run's logs/, or "unknown" without them)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from t2a_ray.analysis import analyze_run
from t2a_ray.analysis.hosts import mixing_warnings, reference_table
from t2a_ray.cli import main

REPO = Path(__file__).resolve().parents[2]
# Two workers on two hosts, as a run resumed on another machine: the second host's CPU launches slower.
GPUS = [
    {"worker": 0, "host_id": "h0", "gpu_uuid": "GPU-0", "reference_launch_j": 2.0, "reference_launch_s": 0.010,
     "reference_matmul_j": 30.0, "reference_matmul_s": 0.040},
    {"worker": 0, "host_id": "h1", "gpu_uuid": "GPU-1", "reference_launch_j": 2.5, "reference_launch_s": 0.012,
     "reference_matmul_j": 30.0, "reference_matmul_s": 0.040},
]  # fmt: skip


def rows(placement: dict[int, list[int]], model: str = "a") -> pd.DataFrame:
    """One row per repeat of each steps value, measured on the GPU (index into GPUS) listed for it."""
    out = []
    for steps, gpus in placement.items():
        for repeat, g in enumerate(gpus):
            out.append(
                {
                    "trial_id": f"{model}{steps}",
                    "model": model,
                    "steps": steps,
                    "repeat": repeat,
                    "status": "ok",
                    "node": "vm",
                    "host_id": GPUS[g]["host_id"],
                    "gpu_uuid": GPUS[g]["gpu_uuid"],
                    "duration_s": 10.0,
                    "batch_size": 1,
                    "generations_in_window": 1,
                    "window_s": 0.05 * steps * (1 + 0.01 * repeat),
                    "energy_per_waveform_j": 2.0 * steps * (1 + 0.01 * repeat),
                }
            )
    return pd.DataFrame(out)


def run_folder(root: Path, table: pd.DataFrame, logs: list[list[dict]] | None) -> Path:
    """A run folder with results.parquet and, per attempt, its logs/gpus-attempt-N.json."""
    (root / "logs").mkdir(parents=True)
    table.to_parquet(root / "results.parquet", index=False)
    for n, workers in enumerate(logs or [], start=1):
        (root / "logs" / f"gpus-attempt-{n}.json").write_text(json.dumps(workers))
    return root


def warnings_of(notes: list[str]) -> list[str]:
    return [n for n in notes if "different GPUs/hosts" in n]


def test_steps_measured_on_two_hosts_warn_with_the_reference_workloads_ratio(tmp_path):
    table = rows({10: [0, 0, 0], 25: [0, 0, 0], 50: [1, 1, 1], 100: [1, 1, 1]})
    run = run_folder(tmp_path / "run", table, [[GPUS[0]], [GPUS[1]]])  # attempt 2 on the other host

    (warning,) = warnings_of(analyze_run(run).notes)

    assert "the fit of energy vs steps (model=a)" in warning and "the energy–latency front" in warning
    assert "GPU-0 on vm (host h0) (2 configurations), GPU-1 on vm (host h1) (2 configurations)" in warning
    assert "launch ×1.25 J, ×1.2 s; matmul ×1 J, ×1 s" in warning  # the logs' 2.5 / 2.0 and 0.012 / 0.010


def test_repeats_spread_over_both_gpus_or_one_gpu_alone_raise_no_warning(tmp_path):
    spread = rows({10: [0, 1, 0, 1], 50: [1, 0, 1, 0]})
    one = rows({10: [1, 1], 50: [1, 1]})
    for name, table in (("spread", spread), ("one", one)):
        run = run_folder(tmp_path / name, table, [GPUS])
        assert warnings_of(analyze_run(run).notes) == []


def test_a_configuration_on_one_gpu_against_one_spread_over_two_is_not_balanced():
    table = rows({10: [0, 0], 50: [0, 1]})
    table["_config"] = table["trial_id"]
    (warning,) = mixing_warnings(table, [("the ranking", ["a10", "a50"])], reference_table([]))
    assert warning.startswith("Warning: the ranking — ") and "1 of 2 of them on one only" in warning
    assert "ratio between them is unknown" in warning


def test_cpu_workers_are_told_apart_by_their_host():
    table = rows({10: [0, 0], 50: [1, 1]}).assign(gpu_uuid=None)
    table["_config"] = table["trial_id"]
    (warning,) = mixing_warnings(table, [("the ranking", ["a10", "a50"])], None)
    assert "the CPU on vm (host h0)" in warning and "the CPU on vm (host h1)" in warning
    same_host = table.assign(host_id="h0")
    assert mixing_warnings(same_host, [("the ranking", ["a10", "a50"])], None) == []


def test_combined_run_folders_name_the_hosts_and_give_the_ratio_only_where_logs_are_beside_them(tmp_path):
    a = run_folder(tmp_path / "a", rows({10: [0, 0], 25: [0, 0]}), None)
    b = run_folder(tmp_path / "b", rows({10: [1, 1], 25: [1, 1]}, model="b"), None)
    args = ["analyze", "--results", str(a / "results.parquet"), "--results", str(b / "results.parquet")]
    args += ["--energy", "energy_per_waveform_j", "--out", str(tmp_path / "r")]

    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "GPU-0 on vm (host h0)" in result.output and "GPU-1 on vm (host h1)" in result.output
    assert "ratio between them is unknown" in result.output

    (a / "logs" / "gpus-attempt-1.json").write_text(json.dumps([GPUS[0]]))
    (b / "logs" / "gpus-attempt-1.json").write_text(json.dumps([GPUS[1]]))
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "launch ×1.25 J" in result.output and "unknown" not in result.output


@pytest.mark.slow
def test_the_committed_h100_steps_run_warns_that_tango2_ran_on_two_gpus(tmp_path):
    run = REPO / "docs" / "results" / "h100" / "paper-steps"
    warnings = warnings_of(analyze_run(run, out_dir=tmp_path / "report").notes)
    tango2 = [w for w in warnings if "the fit of energy vs steps (model=tango2)" in w]
    assert len(tango2) == 1
    assert "GPU-7201daf1 on vm (4 configurations), GPU-2d873470 on vm (2 configurations)" in tango2[0]
    assert "ratio between them is unknown" in tango2[0]  # these logs predate the reference workload
    assert any("the fits of energy vs steps side by side" in w for w in warnings)
