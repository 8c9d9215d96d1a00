"""The GPU effect: two fake GPUs whose hosts make the same work cost 5 % apart, metered by the real Meter."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from t2a_ray.analysis import analyze_run
from t2a_ray.analysis.fronts import compute_fronts
from t2a_ray.analysis.gpu_effect import balanced_mean_ci, gpu_effect, gpu_warnings
from t2a_ray.analysis.stats import mean_ci
from t2a_ray.metering import Meter
from t2a_ray.metering.fakes import FakeClock, FakeGPU

WATTS = 300.0


class Rig:
    """One fake GPU on its own clock; `gain` is how much more its host makes the same work cost."""

    def __init__(self, index: int, gain: float):
        self.clock = FakeClock(sample_jitter_s=0.002, seed=index)
        self.gpu = FakeGPU(self.clock, index=index, uuid=f"GPU-{index}", name="Fake H200")
        self.meter = Meter(self.gpu, None, clock=self.clock)
        self.gain = gain

    def window(self, trial_id: str, seconds: float) -> dict:
        self.clock.sleep(0.3)
        with self.meter.window() as w:
            self.gpu.busy(seconds, WATTS * self.gain)
        return {
            "trial_id": trial_id,
            "gpu_uuid": self.gpu.uuid(),
            "gpu_name": self.gpu.name(),
            "node": "host",
            "gpu_energy_j": w.result.gpu_energy_j,
        }


def measured(placement: dict[str, list[int]], seconds: dict[str, float], gains=(1.0, 1.05)) -> pd.DataFrame:
    """Rows of each configuration's windows, run on the GPUs listed for it (one entry per repeat)."""
    rigs = [Rig(i, g) for i, g in enumerate(gains)]
    return pd.DataFrame([rigs[g].window(t, seconds[t]) for t, gpus in placement.items() for g in gpus])


def test_a_gpu_five_percent_off_is_flagged_with_its_ratio_and_ci():
    seconds = {f"c{i}": 1.0 + 0.5 * i for i in range(4)}
    rows = measured({t: [0, 1, 0, 1] for t in seconds}, seconds)  # spread: two repeats on each GPU
    effect = gpu_effect(rows, "gpu_energy_j").set_index("gpu_uuid")
    assert list(effect.index) == ["GPU-0", "GPU-1"]
    assert effect.loc["GPU-0", "energy_ratio"] == pytest.approx(1 / 1.025, abs=0.003)
    assert effect.loc["GPU-1", "energy_ratio"] == pytest.approx(1.05 / 1.025, abs=0.003)
    assert (effect["energy_ratio_ci95"] < 0.005).all()
    assert effect["warning"].all() and (effect["configurations"] == 4).all()
    lines = gpu_warnings(effect.reset_index())
    assert len(lines) == 2 and "GPU-1" in lines[1] and "+2.4%" in lines[1]


def test_identical_gpus_give_ratios_of_one_and_no_warning():
    seconds = {f"c{i}": 1.0 + 0.5 * i for i in range(3)}
    rows = measured({t: [0, 1, 0, 1] for t in seconds}, seconds, gains=(1.0, 1.0))
    effect = gpu_effect(rows, "gpu_energy_j")
    assert effect["energy_ratio"].to_numpy() == pytest.approx([1.0, 1.0], abs=0.003)
    assert not effect["warning"].any() and gpu_warnings(effect) == []


def test_configurations_on_one_gpu_only_give_no_effect():
    rows = measured({"c0": [0, 0], "c1": [1, 1]}, {"c0": 1.0, "c1": 1.0})
    assert gpu_effect(rows, "gpu_energy_j").empty


def test_fronts_on_gpu_balanced_means_keep_the_truly_cheaper_configuration():
    # y costs 1 % less than x; x ran 3 of 4 repeats on the cheap GPU, y 3 of 4 on the dear one.
    seconds = {"x": 1.0, "y": 0.99}
    rows = measured({"x": [0, 0, 0, 1], "y": [0, 1, 1, 1]}, seconds)

    def front(mean) -> list[str]:
        configs = pd.DataFrame(
            [
                {"config": t, "energy": mean(sub), "quality": 0.5}
                for t, sub in rows.groupby("trial_id", sort=True)
            ]
        ).set_index("config")
        return list(compute_fronts(configs, "energy", [("quality", "max")])[0].members)

    assert front(lambda sub: mean_ci(sub["gpu_energy_j"])[0]) == ["x"]  # the plain mean is fooled
    assert front(lambda sub: balanced_mean_ci(sub["gpu_energy_j"], sub["gpu_uuid"])[0]) == ["y"]


def test_balanced_mean_weights_each_gpu_equally_and_falls_back_to_the_plain_mean():
    mean, ci, n = balanced_mean_ci([10.0, 10.2, 9.8, 20.0], ["a", "a", "a", "b"])
    assert mean == pytest.approx(15.0) and n == 4 and ci > 0
    assert balanced_mean_ci([1.0, 2.0, 3.0], ["a"] * 3) == pytest.approx(mean_ci([1.0, 2.0, 3.0]))
    assert balanced_mean_ci([1.0, 3.0], ["a", "b"])[0] == pytest.approx(2.0)


def test_a_run_report_shows_the_gpu_effect_its_warning_the_csv_and_the_workers(tmp_path):
    seconds = {f"t{s}": 0.5 + 0.01 * s for s in (10, 25, 50, 100)}
    rows = measured({t: [0, 1, 0, 1] for t in seconds}, seconds)
    rows["repeat"] = rows.groupby("trial_id").cumcount()
    rows["steps"] = rows["trial_id"].str[1:].astype(int)
    rows = rows.assign(
        model="noop", status="ok", idle_power_w=70.0, energy_per_waveform_j=rows["gpu_energy_j"]
    )
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    rows.to_parquet(run / "results.parquet", index=False)
    gpus = [
        {
            "worker": i,
            "host": "h",
            "gpu_uuid": f"GPU-{i}",
            "reference_launch_j": 1.0 + i,
            "reference_launch_s": 0.1,
        }
        for i in (0, 1)
    ]
    workers = [
        {"worker": i, "loads": {"m": 1}, "busy_s": 9.0, "window_s": 8.0, "gaps_s": [0.1]} for i in (0, 1)
    ]
    for kind, doc in (
        ("gpus", gpus),
        ("workers", workers),
        ("plan", {"workers": [{"worker": 0, "predicted_s": 7}]}),
    ):
        (run / "logs" / f"{kind}-attempt-1.json").write_text(json.dumps(doc))

    a = analyze_run(run)

    text = a.text()
    assert "GPU effect" in text and "Warning: GPU GPU-1" in text and "Workers" in text
    effect = pd.read_csv(run / "report" / "gpu_effect.csv")
    assert list(effect["gpu_uuid"]) == ["GPU-0", "GPU-1"] and effect["warning"].all()
    html = (run / "report" / "index.html").read_text()
    assert "GPU effect" in html and "gpu_effect.csv" in html and "reference_launch_j" in html
    workers_table = a.fits["workers"].set_index("worker")
    assert workers_table.loc[1, "reference_launch_j"] == 2.0 and workers_table.loc[0, "predicted_s"] == 7
    # the configuration means weigh both GPUs equally: halfway between the two GPUs' means
    by_gpu = rows.groupby(["trial_id", "gpu_uuid"])["energy_per_waveform_j"].mean().unstack()
    means = a.configs.set_index("trial_id")["energy_per_waveform_j"]
    assert means.sort_index().to_numpy() == pytest.approx(by_gpu.mean(axis=1).sort_index().to_numpy())
