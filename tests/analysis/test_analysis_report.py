"""The report end to end: a run folder in the paper's layout, the paper's table, a minimal CSV."""

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from t2a_ray.analysis import analyze_run, analyze_table, load_table, write_quality_table
from t2a_ray.cli import demo_config
from t2a_ray.config import load_sweep

MODELS = {  # model: (intercept J, J/step, CLAP ceiling, FAD floor)
    "audioldm": (40.0, 2.0, 0.45, 3.0),
    "audioldm2": (60.0, 3.5, 0.50, 2.5),
    "stable-audio-open": (90.0, 5.0, 0.55, 2.0),
    "tango": (50.0, 4.0, 0.48, 2.8),
    "tango2": (50.0, 4.1, 0.52, 2.4),
    "make-an-audio": (30.0, 1.5, 0.40, 3.5),
    "make-an-audio-2": (35.0, 2.5, 0.47, 2.9),
}
STEPS = (10, 25, 50, 100, 150, 200)
REPEATS = 5


def _tid(*parts):
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


def paper_run(seed=0):
    """results rows (one per window) and quality rows: 7 models × 6 steps × 5 repeats at batch 1, plus a
    batch sweep {2, 5, 10} at 100 steps; stable-audio-open at batch 10 is infeasible."""
    rng = np.random.default_rng(seed)
    rows, quality = [], []
    configs = [(m, s, 1) for m in MODELS for s in STEPS] + [(m, 100, b) for m in MODELS for b in (2, 5, 10)]
    for m, steps, batch in configs:
        icpt, slope, clap, fad = MODELS[m]
        tid = _tid(m, steps, batch)
        per_wave = (icpt + slope * steps) * (0.55 + 0.45 / batch)
        base = dict(
            run="paper",
            trial_id=tid,
            prompt_id="p0",
            model=m,
            weights="pretrained",
            dtype="float16",
            steps=steps,
            guidance_scale=3.5,
            duration_s=10.0,
            batch_size=batch,
            seed=0,
            gpu_name="NVIDIA H100",
            energy_method="nvml-counter",
            generations_in_window=batch,
        )
        if m == "stable-audio-open" and batch == 10:
            rows.append(base | dict(repeat=0, status="infeasible", error="CUDA out of memory"))
            continue
        for r in range(REPEATS):
            e = per_wave * (1 + 0.02 * rng.standard_normal())
            te, dec = 0.03 * e, 0.07 * e
            voc = np.nan if m == "stable-audio-open" else 0.05 * e
            rows.append(
                base
                | dict(
                    repeat=r,
                    status="ok",
                    error=None,
                    energy_per_waveform_j=e,
                    gpu_energy_j=e * batch,
                    energy_per_audio_s_j=e / 10.0,
                    cpu_energy_j=0.1 * e * batch,
                    dram_energy_j=0.02 * e * batch,
                    text_encoder_energy_j=te * batch,
                    decode_energy_j=dec * batch,
                    vocoder_energy_j=voc * batch,
                    denoise_energy_j=(e - te - dec - np.nan_to_num(voc)) * batch,
                    latency_s=e / 300.0,
                )
            )
        quality.append(
            dict(
                trial_id=tid,
                n_generations=REPEATS,
                clap_mean=clap - 0.8 / steps + 0.003 * rng.standard_normal(),
                clap_ci95=0.004,
                clap_model="laion/clap-htsat-fused",
                fad=fad + 30.0 / steps,
                fad_inf=fad + 25.0 / steps,
            )
        )
    return pd.DataFrame(rows), quality


def paper_table(seed=0):
    """The paper's layout as someone's table: model, steps, repeat, GPU energy, CLAP and FAD per dataset."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, (icpt, slope, clap, fad) in MODELS.items():
        for steps in STEPS:
            for r in range(REPEATS):
                e = (icpt + slope * steps) * (1 + 0.02 * rng.standard_normal())
                for ds, shift in (("audiocaps", 0.0), ("clotho", -0.05)):
                    rows.append(
                        dict(
                            model=m,
                            steps=steps,
                            repeat=r,
                            gpu_energy_j=e,
                            dataset=ds,
                            clap=clap + shift - 0.8 / steps + 0.01 * rng.standard_normal(),
                            fad=fad - 10 * shift + 30.0 / steps + 0.1 * rng.standard_normal(),
                        )
                    )
    return pd.DataFrame(rows)


def _expected_members(configs, energy, quality, sense, e_ci=None, q_ci=None):
    """Brute-force front by the definition where dominance has no cycle (these tables have none): the
    configurations no other dominates — none cheaper beyond noise and not worse beyond noise in quality,
    none better beyond noise in quality and not costlier beyond noise (CIs 0 when absent)."""
    e = configs[energy].to_numpy(float)
    c = configs[quality].to_numpy(float) * (-1 if sense == "max" else 1)
    ce = configs[e_ci].fillna(0).to_numpy(float) if e_ci else np.zeros_like(e)
    cq = configs[q_ci].fillna(0).to_numpy(float) if q_ci else np.zeros_like(e)

    def below(x, ci, i, j):
        return x[i] + ci[i] < x[j] - ci[j]

    def dominates(i, j):
        return (below(e, ce, i, j) and not below(c, cq, j, i)) or (
            below(c, cq, i, j) and not below(e, ce, j, i)
        )

    n = len(e)
    return {configs.index[j] for j in range(n) if not any(dominates(i, j) for i in range(n))}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "paper"
    run.mkdir()
    rows, quality = paper_run()
    rows.to_parquet(run / "results.parquet", index=False)
    write_quality_table(quality, run / "quality.parquet")
    sweep = load_sweep(demo_config(), overrides=("carbon.intensity_g_per_kwh=300",))
    (run / "sweep.yaml").write_text(sweep.to_yaml())
    return run


@pytest.fixture(scope="module")
def run_analysis(run_dir):
    return analyze_run(run_dir)


def test_run_report_files(run_dir, run_analysis):
    out = run_dir / "report"
    assert run_analysis.report_path == out / "index.html"
    names = {p.name for p in out.iterdir()}
    expected_plots = {
        "plot_energy_vs_steps.png",
        "plot_energy_vs_batch.png",
        "plot_phases.png",
        "plot_front_clap_mean.png",
        "plot_front_fad.png",
        "plot_front_fad_inf.png",
    }
    assert expected_plots | {"index.html", "fronts.csv", "configs.csv"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    page = (out / "index.html").read_text()
    for plot in expected_plots:
        assert f"src='{plot}'" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for p in expected_plots:
        assert (out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_fronts_csv_holds_the_input_rows_of_each_front(run_dir, run_analysis):
    rows = pd.read_parquet(run_dir / "results.parquet")
    quality = pd.read_parquet(run_dir / "quality.parquet")
    ok = rows[rows.status == "ok"]
    g = ok.groupby("trial_id")["energy_per_waveform_j"]
    configs = pd.DataFrame({"e": g.mean(), "n": g.count(), "sd": g.std()})
    configs["e_ci"] = stats.t.ppf(0.975, configs.n - 1) * configs.sd / np.sqrt(configs.n)
    configs = configs.join(quality.set_index("trial_id")[["clap_mean", "clap_ci95", "fad", "fad_inf"]])

    fronts = pd.read_csv(run_dir / "report" / "fronts.csv")
    assert list(fronts.columns) == list(rows.columns) + ["front", "on_front", "indistinguishable_in"]
    assert fronts.loc[fronts.on_front, "indistinguishable_in"].isna().all()
    assert fronts.loc[~fronts.on_front, "indistinguishable_in"].notna().all()
    assert all(f.on_cycle == () for f in run_analysis.fronts)
    assert set(fronts.front) == {"clap_mean:max", "fad:min", "fad_inf:min"}
    assert (fronts.status == "ok").all()
    for label, (metric, sense, q_ci) in {
        "clap_mean:max": ("clap_mean", "max", "clap_ci95"),
        "fad:min": ("fad", "min", None),
        "fad_inf:min": ("fad_inf", "min", None),
    }.items():
        expected = _expected_members(configs, "e", metric, sense, "e_ci", q_ci)
        got = fronts[(fronts.front == label) & fronts.on_front]
        assert set(got.trial_id) == expected
        assert len(got) == REPEATS * len(expected)  # every window of a front configuration
    assert 1 < len(set(fronts.trial_id)) < len(configs)


def test_run_text_and_tables(run_analysis):
    text = run_analysis.text()
    for needle in (
        "Pareto fronts",
        "Front clap_mean:max",
        "Energy vs steps",
        "Energy per waveform vs batch size",
        "Phase shares",
        "Spread over repeats",
        "1 infeasible",
        "300 g CO2e/kWh",
        "energy: energy_per_waveform_j, gross (idle power included)",  # which energy the fronts use
        "(0 failed, 1 infeasible)",  # the failures section lists the infeasible configuration
    ):
        assert needle in text, needle
    fits = run_analysis.fits["energy_vs_steps"].set_index("model")
    for model, (_, slope, _, _) in MODELS.items():
        assert fits.loc[model, "slope_j_per_step"] == pytest.approx(slope, rel=0.05)
        assert fits.loc[model, "r2"] > 0.99
    batch = run_analysis.fits["energy_vs_batch"]
    assert set(batch.batch_size) == {1, 2, 5, 10}
    assert (batch.groupby("model").vs_smallest_batch.min() < 0.7).all()
    assert run_analysis.carbon["intensity_g_per_kwh"] == 300.0
    # Carbon of the energy in use: energy_per_waveform_j is divided from the window's GPU energy.
    rows = pd.read_parquet(run_analysis.out_dir.parent / "results.parquet")
    joules = rows.loc[rows.status == "ok", "gpu_energy_j"].sum()
    assert run_analysis.carbon["total_g"] == pytest.approx(joules / 3.6e6 * 300)
    assert all(f.dominance == "ci95" for f in run_analysis.fronts)


def test_rerun_is_idempotent_and_removes_stale_plots(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows, quality = paper_run(seed=1)
    rows.to_parquet(run / "results.parquet", index=False)
    write_quality_table(quality, run / "quality.parquet")
    first = analyze_run(run)
    before = {p.name: p.read_bytes() for p in first.out_dir.iterdir()}
    (first.out_dir / "plot_old_metric.png").write_bytes(b"stale")
    second = analyze_run(run)
    after = {p.name: p.read_bytes() for p in second.out_dir.iterdir()}
    assert after == before
    assert second.text() == first.text()


def test_run_without_quality_still_reports_energy(tmp_path):
    run = tmp_path / "run"
    (run / "trials").mkdir(parents=True)
    rows, _ = paper_run(seed=2)
    for tid, part in rows.groupby("trial_id"):  # before the driver merged results.parquet
        part.to_parquet(run / "trials" / f"{tid}.parquet", index=False)
    a = analyze_run(run)
    assert a.fronts == [] and a.front_rows.empty
    assert "quality.parquet" in " ".join(a.notes)
    assert (run / "report" / "plot_energy_vs_steps.png").is_file()
    assert not (run / "report" / "fronts.csv").exists()  # no fronts: no header-only file
    assert "Fronts:" not in a.text() and "fronts.csv" not in a.report_path.read_text()


def test_paper_table_grouped_by_dataset(tmp_path):
    path = tmp_path / "paper.csv"
    paper_table().to_csv(path, index=False)
    df = load_table(path)
    a = analyze_table(df, "gpu_energy_j", ["clap:max", "fad:min"], ["dataset"], tmp_path / "out")
    fronts = pd.read_csv(tmp_path / "out" / "fronts.csv")
    labels = {
        "clap:max | dataset=audiocaps",
        "clap:max | dataset=clotho",
        "fad:min | dataset=audiocaps",
        "fad:min | dataset=clotho",
    }
    assert set(fronts.front) == labels
    assert list(fronts.columns) == list(df.columns) + ["front", "on_front", "indistinguishable_in"]
    for label in labels:
        ds = label.split("dataset=")[1]
        assert (fronts[fronts.front == label].dataset == ds).all()
    # Each configuration (model, steps, dataset) averaged over 5 repeats, CI-aware.
    assert len(a.configs) == 7 * 6 * 2 and (a.configs.n == REPEATS).all()
    sub = a.configs[a.configs.dataset == "audiocaps"]
    expected = _expected_members(sub, "gpu_energy_j", "clap", "max", "gpu_energy_j_ci95", "clap_ci95")
    front = next(f for f in a.fronts if f.label == "clap:max | dataset=audiocaps")
    assert set(front.members) == expected and front.knee in expected and front.on_cycle == ()
    # Energy is the same window for both datasets: one steps fit per model, not one per dataset.
    assert len(a.fits["energy_vs_steps"]) == 7
    assert "Front clap:max | dataset=clotho" in a.text()


def test_minimal_csv_plain_dominance_and_skipped_plots(tmp_path):
    t = paper_table()
    t = (
        t[t.dataset == "audiocaps"]
        .groupby(["model", "steps"], as_index=False)[["gpu_energy_j", "clap", "fad"]]
        .mean()
    )
    t = t.rename(columns={"gpu_energy_j": "energy"})
    path = tmp_path / "mine.csv"
    t.to_csv(path, index=False)
    a = analyze_table(load_table(path), "energy", [("clap", "max"), ("fad", "min")], [], tmp_path / "r")
    assert all(f.dominance == "plain" for f in a.fronts)
    front = a.fronts[0]
    assert set(front.members) == _expected_members(a.configs, "energy", "clap", "max")
    page = (tmp_path / "r" / "index.html").read_text()
    assert "batch size: skipped" in page and "Phase breakdown: skipped" in page
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"plot_energy_vs_steps.png", "plot_front_clap.png", "plot_front_fad.png"} <= names
    assert "plot_phases.png" not in names and "plot_energy_vs_batch.png" not in names
    # No intensity known (no sweep, no --carbon-intensity): no carbon figure, and a note says why.
    assert a.carbon is None and "Carbon:" not in a.text().split("Notes")[0]
    assert "no intensity known" in a.text()


def test_input_errors(tmp_path):
    with pytest.raises(ValueError, match="unsupported table suffix '.xlsx'"):
        load_table(tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match="no such file"):
        load_table(tmp_path / "missing.csv")
    (tmp_path / "t.csv").write_text("model,steps,energy\na,10,1.0\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) clap"):
        load_table(tmp_path / "t.csv", required=["energy", "clap"])
    df = load_table(tmp_path / "t.csv")
    with pytest.raises(ValueError, match=r"missing column\(s\) joules"):
        analyze_table(df, "joules", [], [], tmp_path / "o")
    with pytest.raises(ValueError, match="COLUMN:max or COLUMN:min"):
        analyze_table(df, "energy", ["clap"], [], tmp_path / "o")
    with pytest.raises(ValueError, match="must be max or min"):
        analyze_table(df, "energy", ["energy:best"], [], tmp_path / "o")
    with pytest.raises(ValueError, match="no results.parquet"):
        analyze_run(tmp_path)


def test_analysis_never_imports_torch_or_ray(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        import pandas as pd
        from t2a_ray.analysis import analyze_table
        df = pd.DataFrame({{"model": ["a", "a", "b"], "steps": [10, 20, 10], "energy": [1.0, 2.0, 1.5],
                           "clap": [0.1, 0.3, 0.2]}})
        analyze_table(df, "energy", ["clap:max"], [], {str(tmp_path / "o")!r})
        assert "torch" not in sys.modules and "ray" not in sys.modules, "heavy import"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_carbon_follows_the_energy_column_and_survives_an_unreadable_sweep(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows, _ = paper_run(seed=3)
    rows.to_parquet(run / "results.parquet", index=False)
    ok = rows[rows.status == "ok"]
    a = analyze_run(run, energy_col="cpu_energy_j", intensity_g_per_kwh=200.0)
    assert a.carbon["total_g"] == pytest.approx(ok.cpu_energy_j.sum() / 3.6e6 * 200)
    assert "the sum of cpu_energy_j at 200 g CO2e/kWh" in a.text()
    (run / "sweep.yaml").write_text("name: moved\nmodels: [nowhere]\n")
    b = analyze_run(run)
    assert b.carbon is None and any(n.startswith("Carbon intensity not read") for n in b.notes)
