"""`t2a-ray doctor` on this CPU machine: no GPU, no RAPL — warnings, exit 0, and its record."""

from __future__ import annotations

import json

from click.testing import CliRunner

from t2a_ray.cli import main


def test_doctor_without_a_gpu_warns_exits_0_and_writes_its_record(tmp_path, monkeypatch):
    monkeypatch.delenv("T2A_RAY_LOGICAL_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, even on a machine that has one
    out = tmp_path / "doc"
    result = CliRunner().invoke(main, ["doctor", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count("| WARN | no GPU") == 6
    assert "| 7 | CPU energy (RAPL) | WARN | RAPL absent" in result.output
    assert "estimate:cpu-time" in result.output
    record = json.loads((out / "doctor.json").read_text())
    assert record["result"] == "warn" and record["places"][0]["gpu"] == {}
    assert [c["number"] for c in record["places"][0]["checks"]] == [1, 2, 3, 4, 5, 6, 7]
    text = (out / "doctor.md").read_text()
    assert f"- command: `t2a-ray doctor --out {out} --quick`" in text
    assert "- host: " in text and "- date: " in text


def test_doctor_rejects_a_negative_gpu_count_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["doctor", "--gpus", "-1", "--out", str(tmp_path / "doc")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "--gpus = -1" in result.output
    assert not (tmp_path / "doc").exists()


def test_help_lists_doctor():
    result = CliRunner().invoke(main, ["--help"])
    assert "doctor" in result.output
    assert CliRunner().invoke(main, ["doctor", "--help"]).exit_code == 0
