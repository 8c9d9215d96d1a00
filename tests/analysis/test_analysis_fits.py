"""Scaling fits on synthetic data with known slopes."""

import numpy as np
import pandas as pd
import pytest

from t2a_ray.analysis.fits import (
    energy_per_audio_s_vs_duration,
    energy_vs_batch,
    energy_vs_steps,
    fit_line,
    held_fixed,
    per_gpu,
    phase_shares,
    repeat_spread,
)

TRUE = {"a": (2.0, 40.0), "b": (5.0, 90.0)}  # model: (J/step, intercept J)


def _steps_table(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for model, (slope, icpt) in TRUE.items():
        for batch in (1, 4):
            for steps in (10, 25, 50, 100, 200):
                for r in range(5):
                    e = (icpt + slope * steps) / batch**0.5 + noise * rng.standard_normal()
                    rows.append(
                        dict(model=model, batch_size=batch, steps=steps, repeat=r, energy_per_waveform_j=e)
                    )
    return pd.DataFrame(rows)


def test_exact_line():
    f = fit_line([1, 2, 3, 4], [3, 5, 7, 9])
    assert f["slope"] == pytest.approx(2.0) and f["intercept"] == pytest.approx(1.0)
    assert f["r2"] == pytest.approx(1.0) and f["slope_ci95"] == pytest.approx(0.0, abs=1e-12) and f["n"] == 4
    assert np.isnan(fit_line([1, 1], [2, 3])["slope"])  # one distinct x: no line


def test_energy_vs_steps_recovers_slopes_per_model_and_batch():
    df = _steps_table()
    fits = energy_vs_steps(df, "energy_per_waveform_j", ["model"], ["model", "batch_size", "steps"])
    assert set(fits.columns) >= {"model", "batch_size", "slope_j_per_step", "intercept_j", "r2", "n"}
    assert len(fits) == 4  # 2 models × 2 batch sizes held fixed
    for _, row in fits.iterrows():
        slope, icpt = TRUE[row["model"]]
        scale = row["batch_size"] ** -0.5
        assert row["slope_j_per_step"] == pytest.approx(slope * scale)
        assert row["intercept_j"] == pytest.approx(icpt * scale)
        assert row["r2"] == pytest.approx(1.0) and row["n"] == 25


def test_noisy_slope_ci_covers_the_truth():
    df = _steps_table(noise=3.0, seed=1)
    fits = energy_vs_steps(df[df.batch_size == 1], "energy_per_waveform_j", ["model"], ["model", "steps"])
    for _, row in fits.iterrows():
        slope = TRUE[row["model"]][0]
        assert abs(row["slope_j_per_step"] - slope) < row["slope_ci95_j_per_step"] * 1.5
        assert 0 < row["slope_ci95_j_per_step"] < 0.2 and 0.99 < row["r2"] < 1.0


def test_held_fixed_ignores_columns_the_axis_determines():
    df = _steps_table().assign(steps_label=lambda d: "s" + d.steps.astype(str), weights="tiny")
    assert held_fixed(df, "steps", ["batch_size", "steps_label", "weights", "trial_id"], ["model"]) == [
        "batch_size"
    ]


def test_energy_vs_batch_with_ci():
    rng = np.random.default_rng(2)
    rows = []
    for batch, per in ((1, 100.0), (2, 70.0), (8, 40.0)):
        for r in range(6):
            rows.append(
                dict(
                    model="m", steps=50, batch_size=batch, repeat=r, energy_per_waveform_j=per + rng.normal()
                )
            )
    t = energy_vs_batch(
        pd.DataFrame(rows), "energy_per_waveform_j", ["model"], ["model", "steps", "batch_size"]
    )
    assert list(t["batch_size"]) == [1, 2, 8]
    assert t["energy_per_waveform_j_mean"].to_numpy() == pytest.approx([100, 70, 40], abs=1.5)
    assert (t["energy_per_waveform_j_ci95"] > 0).all() and (t["n"] == 6).all()
    assert t["vs_smallest_batch"].to_numpy() == pytest.approx([1.0, 0.7, 0.4], abs=0.03)


def test_energy_per_audio_second_vs_duration():
    rows = [
        dict(model="m", duration_s=d, energy_per_audio_s_j=30.0 - 0.5 * d, repeat=r)
        for d in (5.0, 10.0, 20.0, 30.0)
        for r in range(3)
    ]
    t = energy_per_audio_s_vs_duration(
        pd.DataFrame(rows), "energy_per_audio_s_j", ["model"], ["model", "duration_s"]
    )
    assert t.loc[0, "slope_j_per_audio_s_per_s"] == pytest.approx(-0.5)
    assert t.loc[0, "intercept_j_per_audio_s"] == pytest.approx(30.0)


def test_phase_shares_and_a_phase_a_model_lacks_is_null():
    df = pd.DataFrame(
        [
            dict(
                model="x",
                gpu_energy_j=110.0,
                text_encoder_energy_j=10.0,
                denoise_energy_j=80.0,
                decode_energy_j=5.0,
                vocoder_energy_j=5.0,
            ),
            dict(
                model="x",
                gpu_energy_j=110.0,
                text_encoder_energy_j=10.0,
                denoise_energy_j=80.0,
                decode_energy_j=5.0,
                vocoder_energy_j=5.0,
            ),
            dict(
                model="y",
                gpu_energy_j=50.0,
                text_encoder_energy_j=5.0,
                denoise_energy_j=40.0,
                decode_energy_j=5.0,
                vocoder_energy_j=None,
            ),  # no vocoder
        ]
    )
    t = phase_shares(df, ["model"], "gpu_energy_j").set_index("model")
    assert t.loc["x", "denoise_share"] == pytest.approx(0.8) and t.loc["x", "n"] == 2
    assert t.loc["x", "unattributed_share"] == pytest.approx(1 - 100 / 110)
    # a phase the model lacks has no share (null, never 0); the measured phases still sum to the total
    assert pd.isna(t.loc["y", "vocoder_share"]) and t.loc["y", "unattributed_share"] == pytest.approx(0.0)
    shares = t[[c for c in t.columns if c.endswith("_share") and c != "unattributed_share"]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)


def test_repeat_spread_puts_energy_cv_beside_the_window_cv():
    df = pd.DataFrame(
        {
            "model": ["x"] * 4 + ["y"] * 3,
            "_config": [0, 0, 1, 1, 2, 2, 3],  # config 3 has one repeat: no CV
            "energy_per_waveform_j": [90.0, 110.0, 10.0, 10.0, 50.0, 70.0, 1.0],
            "window_s": [1.0, 1.0, 2.0, 2.2, 3.0, 3.0, 1.0],
        }
    )
    t = repeat_spread(df, "energy_per_waveform_j").set_index("model")
    cv_x0 = np.std([90, 110], ddof=1) / 100
    assert t.loc["x", "configs"] == 2 and t.loc["y", "configs"] == 1
    assert t.loc["x", "energy_cv_median"] == pytest.approx(cv_x0 / 2) and t.loc[
        "x", "energy_cv_max"
    ] == pytest.approx(cv_x0)
    assert t.loc["x", "window_s_cv_median"] == pytest.approx(np.std([2.0, 2.2], ddof=1) / 2.1 / 2)
    assert t.loc["y", "energy_cv_max"] == pytest.approx(np.std([50, 70], ddof=1) / 60)


def test_per_gpu_lists_each_card_and_its_idle_baselines():
    df = pd.DataFrame(
        {
            "gpu_uuid": ["GPU-a", "GPU-a", "GPU-a", "GPU-b", None],
            "gpu_name": ["H100", "H100", "H100", "H100", None],
            "idle_power_w": [122.25, 122.25, 121.0, None, None],  # two worker processes on GPU-a
        }
    )
    t = per_gpu(df).set_index("gpu_uuid")
    assert list(t.index) == ["GPU-a", "GPU-b"]
    assert t.loc["GPU-a", "rows"] == 3 and t.loc["GPU-a", "idle_power_w"] == "121.0, 122.2"
    assert pd.isna(t.loc["GPU-b", "idle_power_w"])
    assert per_gpu(df.drop(columns="gpu_uuid")).empty


def test_per_gpu_of_a_table_without_idle_power_names_none():
    from t2a_ray.analysis.fits import per_gpu

    table = per_gpu(pd.DataFrame({"gpu_uuid": ["GPU-a", "GPU-a", "GPU-b"], "gpu_name": ["H200"] * 3}))
    assert table[["gpu_uuid", "rows"]].values.tolist() == [["GPU-a", 2], ["GPU-b", 1]]
    assert table["idle_power_w"].isna().all()
