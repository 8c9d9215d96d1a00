"""Energy against time: latency per waveform, RTF, J per audio second with their CIs, the energy–latency
front, and the minimum-energy configuration under latency limits (the rule: the latency's upper 95 %
CI at or below the limit, scaled to the clip's duration)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from t2a_ray.analysis import analyze_table
from t2a_ray.analysis.gpu_effect import config_mean_ci, grouped_mean_ci
from t2a_ray.analysis.latency import (
    LATENCY_COL,
    LIMIT_COL,
    RTF_COL,
    min_energy_under_limits,
    per_window,
)
from t2a_ray.analysis.stats import mean_ci

LABELS = ["model", "steps"]


def configs(
    points: dict[tuple[str, int], tuple[float, float, float]], duration_s: float = 10.0
) -> pd.DataFrame:
    """A configurations table: (model, steps) → (energy J, latency s, latency's 95 % CI half-width)."""
    rows = [
        {
            "model": m,
            "steps": s,
            "duration_s": duration_s,
            "energy_per_waveform_j": e,
            "energy_per_waveform_j_ci95": 0.0,
            LATENCY_COL: lat,
            f"{LATENCY_COL}_ci95": ci,
            RTF_COL: duration_s / lat,
        }
        for (m, s), (e, lat, ci) in points.items()
    ]
    return pd.DataFrame(rows)


def picks(table: pd.DataFrame, among: str) -> dict[float, str]:
    sub = table[table["among"] == among]
    return dict(zip(sub[LIMIT_COL], sub["configuration"], strict=True))


def test_a_window_gives_its_latency_per_waveform_and_real_time_factor():
    rows = pd.DataFrame(
        {
            "window_s": [4.0, 3.0],
            "generations_in_window": [2, 3],
            "batch_size": [4, 1],
            "duration_s": [5.0, 10.0],
        }
    )
    got = per_window(rows)
    assert got[LATENCY_COL].tolist() == pytest.approx([0.5, 1.0])  # 4 s / (2 × 4) and 3 s / 3
    assert got[RTF_COL].tolist() == pytest.approx([10.0, 10.0])  # 5 s of audio in 0.5 s; 10 s in 1 s


def test_the_cheapest_configuration_that_meets_each_limit_is_picked():
    table = min_energy_under_limits(
        configs(
            {
                ("a", 10): (50.0, 0.4, 0.05),  # cheapest, fast
                ("a", 50): (200.0, 1.8, 0.1),
                ("b", 10): (30.0, 3.0, 0.2),  # cheapest of all, but slow
                ("b", 50): (90.0, 9.0, 0.5),
            }
        ),
        "energy_per_waveform_j",
        LABELS,
    )
    assert picks(table, "all models") == {
        1.0: "model=a steps=10",
        2.0: "model=a steps=10",
        5.0: "model=b steps=10",
        10.0: "model=b steps=10",
    }
    assert picks(table, "b") == {
        1.0: "none meets 1 s per 10 s clip",
        2.0: "none meets 2 s per 10 s clip",
        5.0: "steps=10",
        10.0: "steps=10",
    }
    none = table[(table["among"] == "b") & (table[LIMIT_COL] == 1.0)].iloc[0]
    assert math.isnan(none["energy_per_waveform_j"]) and math.isnan(none[LATENCY_COL])
    five = table[(table["among"] == "all models") & (table[LIMIT_COL] == 5.0)].iloc[0]
    assert five["energy_per_waveform_j"] == 30.0 and five[RTF_COL] == pytest.approx(10.0 / 3.0)


def test_a_configuration_whose_latency_ci_straddles_the_limit_does_not_meet_it():
    table = min_energy_under_limits(
        configs({("a", 10): (40.0, 0.9, 0.2), ("a", 25): (70.0, 0.7, 0.05)}),  # 0.9 ± 0.2 straddles 1 s
        "energy_per_waveform_j",
        LABELS,
        limits_s=(1.0, 2.0),
    )
    assert picks(table, "a") == {1.0: "steps=25", 2.0: "steps=10"}


def test_ties_in_energy_go_to_the_lower_latency_then_to_the_first_configuration():
    tied = configs({("a", 10): (50.0, 0.8, 0.0), ("a", 25): (50.0, 0.5, 0.0), ("a", 50): (50.0, 0.5, 0.0)})
    table = min_energy_under_limits(tied, "energy_per_waveform_j", LABELS, limits_s=(1.0,))
    row = table.iloc[0]
    assert row["configuration"] == "steps=25" and row["others_within_ci95"] == 2


def test_limits_scale_with_the_clip_duration():
    five_s = configs({("a", 10): (20.0, 0.6, 0.0)}, duration_s=5.0)  # 0.6 s per 5 s clip = 1.2 s per 10 s
    table = min_energy_under_limits(five_s, "energy_per_waveform_j", LABELS, limits_s=(1.0, 2.0))
    assert picks(table, "a") == {1.0: "none meets 1 s per 10 s clip", 2.0: "steps=10"}
    assert table["limit_s"].iloc[1] == pytest.approx(1.0)  # 2 s × 5 s / 10 s


def test_grouped_means_equal_each_configurations_own_gpu_balanced_mean():
    rng = np.random.default_rng(0)
    rows = []
    for c in range(60):
        kind = c % 5  # one GPU; two GPUs; one value per GPU; a missing value; a row without its GPU
        for i in range(int(rng.integers(1, 6))):
            gpu = {0: "g0", 1: f"g{i % 2}", 2: f"g{i}", 3: "g0", 4: None if i == 0 else f"g{i % 2}"}[kind]
            value = math.nan if kind == 3 and i == 0 else rng.normal(10.0, 1.0)
            rows.append({"c": c, "gpu_uuid": gpu, "x": value})
    df = pd.DataFrame(rows)
    got = grouped_mean_ci(df, "x", "c")
    for c, sub in df.groupby("c"):
        mean, ci, n = config_mean_ci(sub, "x")
        if n == 0:
            assert c not in got.index
            continue
        assert got.loc[c, "mean"] == pytest.approx(mean) and got.loc[c, "n"] == n
        assert got.loc[c, "ci95"] == pytest.approx(ci, nan_ok=True)


def windows(seed: int = 0, *, with_time: bool = True) -> pd.DataFrame:
    """Three repeats of each (model, steps): a is cheap and slow, b dear and fast at 10 steps."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, j_per_step, s_per_step in (("a", 2.0, 0.2), ("b", 4.0, 0.05)):
        for steps in (10, 50):
            for r in range(3):
                window = s_per_step * steps * 2 * (1 + 0.02 * rng.standard_normal())  # two generations
                rows.append(
                    {
                        "model": model,
                        "steps": steps,
                        "repeat": r,
                        "duration_s": 10.0,
                        "batch_size": 1,
                        "generations_in_window": 2,
                        "window_s": window,
                        "energy_per_waveform_j": j_per_step * steps * (1 + 0.02 * rng.standard_normal()),
                        "energy_per_audio_s_j": j_per_step * steps / 10.0,
                    }
                )
    df = pd.DataFrame(rows)
    return df if with_time else df.drop(columns=["window_s", "generations_in_window"])


def test_a_report_has_latency_rtf_and_j_per_audio_second_with_cis_the_front_and_latency_csv(tmp_path):
    df = windows()
    a = analyze_table(df, "energy_per_waveform_j", [], out_dir=tmp_path / "r", config_cols=["model", "steps"])

    written = pd.read_csv(tmp_path / "r" / "configs.csv")
    cols = list(written.columns)
    assert cols.index("energy_per_audio_s_j") == cols.index("energy_per_waveform_j_ci95") + 1  # beside it
    for c in (LATENCY_COL, RTF_COL, "energy_per_audio_s_j"):
        assert f"{c}_ci95" in cols
    a10 = df[(df["model"] == "a") & (df["steps"] == 10)]
    mean, ci, _ = mean_ci(a10["window_s"] / 2)
    row = written[(written["model"] == "a") & (written["steps"] == 10)].iloc[0]
    assert row[LATENCY_COL] == pytest.approx(mean) and row[f"{LATENCY_COL}_ci95"] == pytest.approx(ci)
    assert row[RTF_COL] == pytest.approx((10.0 / (a10["window_s"] / 2)).mean())
    # a@10 (20 J, 2 s) and b@10 (40 J, 0.5 s): neither beats the other; the 50-step ones are dominated
    front = a.fits["energy_latency_front"]
    assert sorted(zip(front["model"], front["steps"], strict=True)) == [("a", 10), ("b", 10)]
    latency = pd.read_csv(tmp_path / "r" / "latency.csv")
    overall = latency[latency["among"] == "all models"].set_index(LIMIT_COL)["configuration"]
    assert overall[1.0] == "model=b steps=10" and overall[5.0] == "model=a steps=10"
    assert (tmp_path / "r" / "plot_energy_latency.png").stat().st_size > 0
    text = a.text()
    assert "Minimum energy under a latency limit" in text and "latency.csv" in text
    assert "Energy–latency front" in (tmp_path / "r" / "index.html").read_text()


def test_a_table_without_the_time_columns_says_which_are_needed_and_writes_no_latency_csv(tmp_path):
    out = tmp_path / "r"
    analyze_table(windows(), "energy_per_waveform_j", [], out_dir=out, config_cols=["model", "steps"])
    assert (out / "latency.csv").is_file()
    a = analyze_table(
        windows(with_time=False), "energy_per_waveform_j", [], out_dir=out, config_cols=["model", "steps"]
    )
    assert not (out / "latency.csv").exists() and not (out / "plot_energy_latency.png").exists()
    assert LATENCY_COL not in pd.read_csv(out / "configs.csv").columns
    assert any("window_s, generations_in_window" in n and "needs" in n for n in a.notes)
