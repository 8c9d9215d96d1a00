"""`analyze` on tables as the field writes them: CodeCarbon files, units, --extract, --join, the
configuration inference, one-line errors, and the labels of the printout and the report."""

import csv
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from t2a_ray.analysis import analyze_table
from t2a_ray.analysis.energy_basis import is_estimate
from t2a_ray.analysis.inputs import CODECARBON_KWH, is_codecarbon, read_tables
from t2a_ray.cli import main

# The header CodeCarbon 2.x writes to emissions.csv (codecarbon/output_methods/emissions_data.py).
CODECARBON_2X = (
    "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,"
    "ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,country_iso_code,region,"
    "cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,"
    "gpu_model,longitude,latitude,ram_total_size,tracking_mode,on_cloud,pue"
).split(",")
MODELS = {"AudioLDM": (40.0, 2.0, 330.7), "Tango": (60.0, 4.0, 45.0)}  # J, J/step, g CO2e/kWh
STEPS = (10, 25, 50, 100)
REPEATS = 3


def write_codecarbon(folder, seed=0):
    """One emissions.csv per model, rows as CodeCarbon appends them: one per inference run."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for model, (icpt, slope, intensity) in MODELS.items():
        with open(folder / f"{model}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, CODECARBON_2X)
            w.writeheader()
            for steps in STEPS:
                for r in range(REPEATS):
                    gpu_kwh = (icpt + slope * steps) * (1 + 0.02 * rng.standard_normal()) / 3.6e6
                    cpu_kwh, ram_kwh = 0.2 * gpu_kwh, 0.05 * gpu_kwh
                    total = gpu_kwh + cpu_kwh + ram_kwh
                    w.writerow(
                        dict(
                            timestamp=f"2024-05-01T10:{steps:02d}:{r:02d}",
                            project_name=f"{model}-inference_{steps}-steps",
                            run_id=f"{model}-{steps}-{r}",
                            experiment_id="5b0fa12a-3dd7-45bb-9766-cc326314d9f1",
                            duration=3.0 + rng.random(),
                            emissions=total * intensity / 1000.0,  # kg
                            emissions_rate=1e-6,
                            cpu_power=42.5,
                            gpu_power=300.0,
                            ram_power=11.0,
                            cpu_energy=cpu_kwh,
                            gpu_energy=gpu_kwh,
                            ram_energy=ram_kwh,
                            energy_consumed=total,
                            country_name="Sweden",
                            country_iso_code="SWE",
                            region="",
                            cloud_provider="",
                            cloud_region="",
                            os="Linux-5.15.0-x86_64-with-glibc2.35",
                            python_version="3.10.12",
                            codecarbon_version="2.3.4",
                            cpu_count=32,
                            cpu_model="AMD EPYC 7302 16-Core Processor",
                            gpu_count=1,
                            gpu_model="1 x NVIDIA A100-SXM4-40GB",
                            longitude=18.06,
                            latitude=59.33,
                            ram_total_size=251.5,
                            tracking_mode="machine",
                            on_cloud="N",
                            pue=1.0,
                        )
                    )
    return folder


EXTRACT = r"project_name=^(?P<model>.*)-inference_(?P<steps>\d+)-steps$"


def run_cli(*args):
    return CliRunner().invoke(main, ["analyze", *map(str, args)])


def test_codecarbon_fits_csv_equals_an_independent_fit(tmp_path, monkeypatch):
    write_codecarbon(tmp_path / "cc")
    monkeypatch.chdir(tmp_path)
    result = run_cli(
        "--results",
        "cc/*.csv",
        "--energy",
        "gpu_energy",
        "--extract",
        EXTRACT,
        "--config-cols",
        "model,steps",
    )
    assert result.exit_code == 0, result.output
    fits = pd.read_csv(tmp_path / "t2a-report" / "fits.csv")
    assert list(fits.columns) == ["model", "slope_j_per_step", "intercept_j", "r2", "n"]
    raw = pd.concat([pd.read_csv(p) for p in sorted((tmp_path / "cc").glob("*.csv"))])
    for model, part in raw.groupby(raw.project_name.str.split("-inference").str[0]):
        steps = part.project_name.str.extract(r"_(\d+)-steps")[0].astype(float).to_numpy()
        joules = part.gpu_energy.to_numpy() * 3.6e6
        slope, intercept = np.polyfit(steps, joules, 1)
        r2 = np.corrcoef(steps, joules)[0, 1] ** 2
        row = fits.set_index("model").loc[model]
        assert row.slope_j_per_step == pytest.approx(slope, rel=1e-9)
        assert row.intercept_j == pytest.approx(intercept, rel=1e-9)
        assert row.r2 == pytest.approx(r2, rel=1e-9) and row.n == len(part)
    assert "J/step" in result.output and "gpu_energy is in kwh: converted to J" in result.output


def test_codecarbon_header_units_and_its_own_intensity(tmp_path):
    folder = write_codecarbon(tmp_path / "cc")
    raw = pd.read_csv(folder / "Tango.csv")
    assert list(raw.columns) == CODECARBON_2X and is_codecarbon(raw)
    table = read_tables([folder / "*.csv"])
    assert len(table.frame) == len(MODELS) * len(STEPS) * REPEATS
    assert all(table.units[c] == "kwh" for c in CODECARBON_KWH)
    assert {"duration", "run_id", "timestamp", "cpu_power"} <= table.not_keys
    assert "project_name" not in table.not_keys
    both = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("*.csv"))], ignore_index=True)
    own = both.emissions * 1000 / both.energy_consumed  # g/kWh of each row
    # Default: each row's own intensity; with --carbon-intensity: that one, from the energy in use.
    out = tmp_path / "r"
    plain = run_cli("--results", folder / "*.csv", "--energy", "cpu_energy", "--out", out)
    assert plain.exit_code == 0, plain.output
    expected = (both.cpu_energy * own).sum()
    assert re.search(r"Carbon: ([0-9.e+-]+) g CO2e", plain.output).group(1) == f"{expected:.4g}"
    given = run_cli(
        "--results", folder / "*.csv", "--energy", "gpu_energy", "--carbon-intensity", "100", "--out", out
    )
    assert f"Carbon: {(both.gpu_energy * 100).sum():.4g} g CO2e" in given.output
    assert "at 100 g CO2e/kWh" in given.output


def test_energy_units_from_option_suffix_or_none(tmp_path):
    df = pd.DataFrame(
        {"model": ["a", "a", "b", "b"], "steps": [10, 20, 10, 20], "energy_wh": [1.0, 2.0, 1.5, 3.0]}
    )
    path = tmp_path / "t.csv"
    df.assign(energy=df.energy_wh).to_csv(path, index=False)
    by_suffix = run_cli("--results", path, "--energy", "energy_wh", "--out", tmp_path / "a")
    assert by_suffix.exit_code == 0, by_suffix.output
    assert "energy column: energy_j" in by_suffix.output
    configs = pd.read_csv(tmp_path / "a" / "configs.csv")
    assert sorted(configs.energy_j) == sorted(df.energy_wh * 3600.0)
    by_option = run_cli(
        "--results", path, "--energy", "energy", "--energy-unit", "kwh", "--out", tmp_path / "b"
    )
    assert sorted(pd.read_csv(tmp_path / "b" / "configs.csv").energy_j) == sorted(df.energy_wh * 3.6e6)
    assert "energy is in kwh" in by_option.output
    unitless = run_cli("--results", path, "--energy", "energy", "--out", tmp_path / "c")
    assert "energy has no unit in its name: taken as joules" in unitless.output


def test_several_results_and_join_bring_in_quality(tmp_path):
    folder = write_codecarbon(tmp_path / "cc")
    scores = pd.DataFrame(
        [
            dict(model=m, steps=s, clap=0.5 - 1.0 / s + (0.02 if m == "Tango" else 0))
            for m in MODELS
            for s in STEPS
        ]
    )
    scores.to_csv(tmp_path / "clap.csv", index=False)
    result = run_cli(
        "--results",
        folder / "AudioLDM.csv",
        "--results",
        folder / "Tango.csv",
        "--energy",
        "gpu_energy",
        "--extract",
        EXTRACT,
        "--join",
        tmp_path / "clap.csv",
        "--on",
        "model,steps",
        "--quality",
        "clap:max",
        "--out",
        tmp_path / "r",
    )
    assert result.exit_code == 0, result.output
    assert "Front clap:max" in result.output
    configs = pd.read_csv(tmp_path / "r" / "configs.csv").set_index(["model", "steps"])
    assert len(configs) == len(MODELS) * len(STEPS) and (configs.n == REPEATS).all()
    for _, s in scores.iterrows():
        assert configs.loc[(s.model, s.steps), "clap"] == pytest.approx(s.clap)
    # One score per configuration, repeated on its rows: no ±0 (or 6e-18) interval is shown.
    assert configs["clap_ci95"].isna().all() and "clap ±95%" not in result.output
    assert "hypervolume (J × quality)" in result.output


def test_inference_leaves_measurements_out_and_says_so(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        dict(
            model=m,
            steps=s,
            energy_j=10.0 * s * (1 + 0.01 * rng.standard_normal()),
            duration=rng.random(),
            clap=rng.random(),
            fad=rng.random(),
        )
        for m in ("a", "b")
        for s in (10, 20, 50)
        for _ in range(5)
    ]
    a = analyze_table(pd.DataFrame(rows), "energy_j", ["clap:max"], [], tmp_path / "r")
    assert len(a.configs) == 6 and (a.configs.n == 5).all()
    note = next(n for n in a.notes if n.startswith("Configurations by"))
    assert "model, steps" in note and "left out as measurements: duration, fad" in note
    assert not any(n.startswith("Warning") for n in a.notes)
    # Keys named by the caller are used as given; most configurations of one row get a warning.
    ids = pd.DataFrame(rows).assign(take=[0 if i % 5 in (0, 4) else i for i in range(len(rows))])
    w = analyze_table(
        ids, "energy_j", ["clap:max"], [], tmp_path / "w", config_cols=["model", "steps", "take"]
    )
    assert any(n.startswith("Warning") and "one row each" in n for n in w.notes)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--energy", "os"], "--energy os: 24 value(s) are not numbers (e.g. 'Linux-5.15.0-x86_64"),
        (["--energy", "gpu_energy", "--quality", "country_name:max"], "quality column country_name"),
        (["--energy", "gpu_energy", "--out", "missing/deeper/report"], "parent folder"),
        (["--energy", "gpu_energy", "--out", "cc/Tango.csv/report"], "is a file, not a folder"),
        (["--energy", "gpu_energy", "--extract", "project_name=^(x)$"], "no named group"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, args, fragment):
    write_codecarbon(tmp_path / "cc")
    monkeypatch.chdir(tmp_path)
    result = run_cli("--results", "cc/*.csv", *args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and fragment in result.output, result.output
    assert not (tmp_path / "t2a-report").exists()


def test_a_file_given_as_run_dir_names_results(tmp_path):
    folder = write_codecarbon(tmp_path / "cc")
    result = run_cli(folder / "Tango.csv")
    assert result.exit_code == 2 and f"use --results {folder / 'Tango.csv'}" in result.output


def test_cpu_estimates_are_labelled_wherever_energy_is_shown(tmp_path):
    method = "gpu:none;cpu:estimate:cpu-time;dram:none;phases:estimate:cpu-time"
    df = pd.DataFrame(
        dict(
            model="a",
            steps=s,
            repeat=r,
            energy_per_waveform_j=s * (1.0 + 0.01 * r),
            clap=0.1 * s + 0.01 * r,
            energy_method=method,
            gpu_energy_j=None,
            cpu_energy_j=s * 1.0,
        )
        for s in (10, 20, 40)
        for r in range(3)
    )
    a = analyze_table(
        df, "energy_per_waveform_j", ["clap:max"], [], tmp_path / "r", intensity_g_per_kwh=300.0
    )
    headline, carbon = a.text().splitlines()[1:3]
    assert "CPU estimate, not a measurement" in headline
    assert carbon.startswith("Carbon:") and "CPU estimate, not a measurement" in carbon
    assert "CPU estimate" in (tmp_path / "r" / "index.html").read_text()
    assert a.energy_label == "Energy per waveform (J) — CPU estimate"  # the plots' axis and titles
    measured = df.assign(energy_method="gpu:nvml-counter-interp;cpu:rapl;dram:rapl;phases:gpu")
    m = analyze_table(measured, "energy_per_waveform_j", [], [], tmp_path / "m")
    assert "estimate" not in m.text().splitlines()[1] and "estimate" not in m.energy_label


@pytest.mark.parametrize(
    "method, column, estimated",
    [
        (
            "gpu:nvml-counter-interp;cpu:estimate:cpu-time;dram:none;phases:gpu",
            "energy_per_waveform_j",
            False,
        ),
        ("gpu:nvml-counter-interp;cpu:estimate:cpu-time;dram:none;phases:gpu", "cpu_energy_j", True),
        ("gpu:none;cpu:estimate:cpu-time;dram:none;phases:estimate:cpu-time", "energy_per_waveform_j", True),
        ("gpu:none;cpu:rapl;dram:rapl;phases:rapl", "energy_per_audio_s_j", False),
        ("gpu:none;cpu:estimate:cpu-time;dram:none;phases:estimate:cpu-time", "denoise_energy_j", True),
        ("estimate", "energy", True),
    ],
)
def test_which_energy_is_an_estimate(method, column, estimated):
    assert is_estimate(method, column) is estimated


def test_small_tables_speak_in_the_singular_and_link_only_what_exists(tmp_path):
    df = pd.DataFrame({"model": ["a", "a"], "energy_j": [1.0, 1.2]})
    a = analyze_table(df, "energy_j", [], [], tmp_path / "r")
    assert "1 configuration," in a.text() and "Fronts:" not in a.text()
    page = (tmp_path / "r" / "index.html").read_text()
    assert "fronts.csv" not in page and not (tmp_path / "r" / "fits.csv").exists()


def test_every_results_column_has_one_role_and_only_config_columns_become_keys():
    from t2a_ray.analysis.pipeline import configuration_keys
    from t2a_ray.schema import (
        CONFIG,
        MEASUREMENT_COLUMNS,
        REPEAT,
        REPEAT_COLUMNS,
        RESULT_COLUMNS,
        results_schema,
    )

    schema = results_schema({"steps": int, "guidance_scale": float})
    roles = {f.name: f.metadata[b"role"].decode() for f in schema}
    assert set(roles.values()) <= {"config", "repeat", "record", "measurement"}
    assert MEASUREMENT_COLUMNS == {n for n, r in roles.items() if r != CONFIG}
    assert set(REPEAT_COLUMNS) == {n for n, r in roles.items() if r == REPEAT}
    assert set(RESULT_COLUMNS) <= MEASUREMENT_COLUMNS  # what the meter fills is never a key
    # A table with every column of results.parquet (no trial_id): the keys are the config columns.
    rows = [
        {n: (f"{n}{i % 3}" if schema.field(n).type == "string" else float(i % 3)) for n in roles}
        for i in range(30)
    ]
    df = pd.DataFrame(rows).drop(columns=["trial_id"])
    keys, _ = configuration_keys(df, {"energy_per_waveform_j", *REPEAT_COLUMNS}, [])
    assert set(keys) == {n for n, r in roles.items() if r == CONFIG}


def test_every_row_its_own_configuration_is_warned_about(tmp_path):
    rows = pd.DataFrame(
        {"model": ["a"] * 4, "run_no": ["r1", "r2", "r3", "r4"], "energy_j": [1.0, 1.1, 0.9, 1.0]}
    )
    a = analyze_table(rows, "energy_j", [], [], tmp_path / "r")
    assert "one row each" in a.text() and "Warning: 4 of 4 configurations" in a.text()
    fixed = analyze_table(rows, "energy_j", [], [], tmp_path / "f", config_cols=["model"])
    assert len(fixed.configs) == 1 and "Warning" not in fixed.text()


def test_a_long_steps_sweep_without_repeats_keeps_steps_as_a_key(tmp_path):
    steps = list(range(10, 130, 10))  # 12 whole-number settings, one row each
    df = pd.DataFrame({"model": "a", "steps": steps, "energy_j": [2.0 * s + 5 for s in steps]})
    a = analyze_table(
        df.assign(clap=[0.3 + 0.001 * s for s in steps]), "energy_j", ["clap:max"], [], tmp_path
    )
    assert len(a.configs) == len(steps)
    assert a.fits["energy_vs_steps"].slope_j_per_step.iloc[0] == pytest.approx(2.0)
