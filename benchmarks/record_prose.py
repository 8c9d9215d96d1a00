"""The figures the records' prose states beside their tables, each recomputed from the committed data."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pandas as pd
import record_tables
from record_data import ROOT, bench_json, rows
from record_figures import (
    COMMON_STEPS,
    ENERGY,
    MODELS,
    REP_BATCH,
    REP_STEPS,
    Below,
    Figure,
    cv_below_window_cv_share,
    fig,
    per_waveform,
    slopes,
    steps_fit,
)

from t2a_ray.analysis.fits import fit_line


def _doctor_effects_pct() -> list[float]:
    """Each doctor GPU's coverage by offset, as % off the offsets' mean (check 2's phase effect)."""
    from t2a_ray.metering import doctor

    out = []
    for place in bench_json("doctor_h200.json")["places"]:
        data = next(c for c in place["checks"] if c["number"] == 2)["data"]
        coverage = doctor.judge_coverage(data).data["coverage"]
        out += [100 * (v - 1) for v in coverage.values()]
    return out


def _audioldm_change(col: str, pick: Callable) -> float:
    """CUDA graphs against eager on AudioLDM at batch 1 (H200): the smaller or larger saving, in %."""
    t = record_tables.runtime("docs/results/h200/runtime/runtime-audioldm-h200")
    return pick(-t[t["batch_size"] == 1][col])


def prose_figures() -> list[Figure]:
    """Figures the prose of a record states beside (or apart from) its tables."""
    nvml = bench_json("meter_overhead_h100_2026-11-26b.json")["sections"]["nvml_cost"]
    dose = [
        bench_json(n)["sections"]["overhead"]["dose_response"]["predicted_through_origin"]["ticks"]
        for n in ("meter_overhead_h100_2026-11-26e.json", "meter_overhead_h100_2026-11-26f.json")
    ]
    readme = "README.md"
    return [
        fig(
            readme,
            "a counter read's driver time, ms",
            "2.4",
            lambda: nvml["fields_energy_and_power"]["wall_ms_median"],
        ),
        fig(readme, "the meter's overhead at one read per tick, %", "0.19", lambda: 100 * max(dose)),
        fig(
            readme,
            "CUDA graphs' gross saving, AudioLDM b1, least",
            "76",
            lambda: _audioldm_change("gross_change_pct", min),
        ),
        fig(
            readme,
            "CUDA graphs' gross saving, AudioLDM b1, most",
            "81",
            lambda: _audioldm_change("gross_change_pct", max),
        ),
        fig(
            readme,
            "CUDA graphs' net saving, AudioLDM b1, least",
            "16",
            lambda: _audioldm_change("net_change_pct", min),
        ),
        fig(
            readme,
            "CUDA graphs' net saving, AudioLDM b1, most",
            "23",
            lambda: _audioldm_change("net_change_pct", max),
        ),
        fig(readme, "the doctor's phase effect, lowest", "−13", lambda: min(_doctor_effects_pct())),
        fig(readme, "the doctor's phase effect, highest", "+11", lambda: max(_doctor_effects_pct())),
        fig(
            readme,
            "the doctor's wall time on two H200s, s",
            "63",
            lambda: bench_json("doctor_h200.json")["wall_s"],
        ),
        *_h100_prose(),
        *_h200_prose(),
        *_doctor_prose(),
        *_replication_prose(),
        *_replication_runtime_prose(),
        *_orchestrator_prose(),
        *_meter_prose(),
    ]


def _meter_prose() -> list[Figure]:
    """The latest look's readings in meter_precision_h100.md, from its runs' JSON."""
    rec = "benchmarks/results/meter_precision_h100.md"
    ticks, ticks_b, first = (bench_json(f"meter_precision_h100{n}.json") for n in ("_ticks", "_ticks_b", ""))
    seq = {
        "first": ticks["sections"]["overhead"],
        "then": bench_json("meter_overhead_h100_2026-11-26d.json")["sections"]["overhead"],
    }
    doses = [bench_json(f"meter_overhead_h100_2026-11-26{x}.json")["sections"]["overhead"] for x in "ef"]
    nvml = bench_json("meter_overhead_h100_2026-11-26b.json")["sections"]["nvml_cost"]

    def audioldm(run: dict) -> dict:
        return run["summaries"][1]

    def pair(which: str, key: str) -> list[float]:
        x = seq[which][key]
        return [100 * x["pair_ratio_quartiles"][1], *(100 * v for v in x["pair_ratio_median_ci95"])]

    def tick_grid_max_error() -> float:
        errors = [
            cell
            for row in record_tables.replay_table()
            if row[0] == "the meter's tick grid"
            for cell in row[4:5]
        ]
        return max(float(e.rstrip("%")) for e in errors)

    slopes = [100 * d["dose_response"]["slope_through_origin_per_read_per_s"] for d in doses]
    reads = [s["counter_reads_per_window_s"] for s in ticks["summaries"]]
    out = [
        fig(rec, "idle, first run, W", "124", lambda: ticks["idle_power_w"]),
        fig(rec, "idle, second run, W", "119", lambda: ticks_b["idle_power_w"]),
        fig(
            rec,
            "AudioLDM duration CV on the host of 2026-11-25, %",
            "15",
            lambda: 100 * audioldm(first)["duration_cv"],
        ),
        fig(
            rec, "naive residual CV, first run, %", "1.44", lambda: 100 * audioldm(ticks)["naive_residual_cv"]
        ),
        fig(
            rec,
            "naive residual CV, second run, %",
            "0.92",
            lambda: 100 * audioldm(ticks_b)["naive_residual_cv"],
        ),
        fig(rec, "the tick grid's largest error in the replay, %", "0.04", tick_grid_max_error),
        fig(rec, "the loop's time, shortest, s", "0.2", lambda: min(d["off_median_s"] for d in doses)),
        fig(rec, "cost per read per s, least, %", "0.013", lambda: min(slopes)),
        fig(rec, "cost per read per s, most, %", "0.014", lambda: max(slopes)),
        fig(
            rec,
            "a counter read's driver time, ms",
            "2.4",
            lambda: nvml["fields_energy_and_power"]["wall_ms_median"],
        ),
        fig(
            rec,
            "the line's cost on ≥ 1 s windows, %",
            "0.14",
            lambda: sum(slopes) / len(slopes) * sum(reads) / len(reads),
        ),
        fig(
            rec,
            "reads per s, first sequential run",
            "12.2",
            lambda: seq["first"]["ticks"]["counter_reads_per_window_s"],
        ),
        fig(
            rec,
            "reads per s, second sequential run",
            "12.5",
            lambda: seq["then"]["ticks"]["counter_reads_per_window_s"],
        ),
    ]
    out += _meter_history(rec)
    for which, key, written in (
        ("first", "ticks", ("+0.20", "−0.13", "+0.56")),
        ("then", "ticks", ("+0.67", "+0.45", "+1.07")),
        ("first", "0.05", ("+0.36", "−0.18", "+0.85")),
        ("then", "0.05", ("+0.18", "−0.40", "+0.78")),
    ):
        for i, (w, what) in enumerate(zip(written, ("median", "CI low", "CI high"), strict=True)):
            out.append(
                fig(
                    rec,
                    f"sequential pairs, {which}, {key}, {what}, %",
                    w,
                    lambda which=which, key=key, i=i: pair(which, key)[i],
                )
            )
    return out


def _orchestrator_prose() -> list[Figure]:
    """The readings of the orchestrator's benchmarks (scaling, overhead, 10,000 trials), from their JSON."""
    res = "benchmarks/results/"
    cluster = bench_json("cluster_scale_noop_cpu.json")
    a, b = (bench_json(f"orchestrator_overhead_audioldm_random_h100_{x}.json") for x in "ab")
    noop = bench_json("orchestrator_overhead_noop_tiny_cpu.json")
    old_gpu = bench_json("scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.json")["results"][-1]
    cpu, run1, gpu = (bench_json(f"scaling_{n}.json") for n in ("cpu", "cpu_run1", "gpu"))

    def fixed(j: dict) -> float:  # the launch's start-up and tear-down over the bare loop's, s
        return (j["launch"]["wall_s"] - j["launch"]["steady_s"]) - (
            j["bare"]["wall_s"] - j["bare"]["steady_s"]
        )

    def step(run: dict, name: str) -> list[float]:
        return [
            end - start for w in run["prepare_steps_s"].values() for k, (start, end) in w.items() if k == name
        ]

    def prepare(run: dict) -> float:
        return run["breakdown_s"]["first_prepare_s"]

    pack1, pack2, spread2 = gpu
    idle = sorted(old_gpu["idle_power_w"].values(), reverse=True)
    run1_busy = sorted(run1[-1]["busy_s"].values())
    h100 = pd.concat([rows("docs/results/h100/paper-steps")])
    at100 = h100[h100["steps"] == 100].groupby("model")["avg_power_w"].mean()
    return [
        fig(
            res + "cluster_scale_noop_cpu.md",
            "trial latency in all, s",
            "50.5",
            lambda: cluster["trial_latency_total_s"],
        ),
        fig(
            res + "cluster_scale_noop_cpu.md",
            "wall per trial, ms",
            "8",
            lambda: 1e3 * cluster["driver_overhead_per_trial_s"],
        ),
        fig(
            res + "cluster_scale_noop_cpu.md",
            "driver CPU per trial, ms",
            "7",
            lambda: 1e3 * cluster["driver_cpu_per_trial_s"],
        ),
        fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "run A's fixed cost over the bare loop, s",
            "9.3",
            lambda: fixed(a),
        ),
        fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "run B's fixed cost over the bare loop, s",
            "7.2",
            lambda: fixed(b),
        ),
        fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "bare time for 1.05× with run B's fixed cost, min",
            "2.4",
            lambda: fixed(b) / 0.05 / 60,
        ),
        fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "run B's bare loop over its launch, steady state, %",
            "9",
            lambda: 100 * (b["bare"]["steady_s"] / b["launch"]["steady_s"] - 1),
        ),
        fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "H100 power at batch 1, least (docs/results/h100, 100 steps), W",
            "140",
            lambda: at100.min(),
            5,
        ),
        fig(
            res + "orchestrator_overhead_audioldm_random_h100.md",
            "H100 power at batch 1, most, W",
            "310",
            lambda: at100.max(),
            5,
        ),
        fig(
            res + "orchestrator_overhead_noop_tiny_cpu.md",
            "the launch over the bare loop, %",
            "4.7",
            lambda: 100 * (noop["wall_ratio"] - 1),
        ),
        fig(
            res + "orchestrator_overhead_noop_tiny_cpu.md",
            "first to last trial, %",
            "0.3",
            lambda: 100 * (noop["steady_ratio"] - 1),
        ),
        fig(
            res + "scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.md",
            "idle power, first card, W",
            "122.6",
            lambda: bench_json("scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.json")["results"][
                0
            ]["idle_power_w"]["GPU-94f0b513-f721-408e-7782-e256b433992c"],
        ),
        fig(
            res + "scaling_audioldm-tango-stable-audio-open-make-an-audio_gpu.md",
            "idle power, second card, W",
            "119.0",
            lambda: idle[-1],
        ),
        fig(
            res + "scaling_cpu.md",
            "the configurations' latency in all, s",
            "84.2",
            lambda: cpu[0]["predicted_sweep_s"],
        ),
        fig(
            res + "scaling_cpu.md",
            "4 workers, share of the ideal",
            "0.91",
            lambda: cpu[0]["sweep_s"] / cpu[2]["sweep_s"] / 4,
        ),
        fig(
            res + "scaling_cpu.md",
            "8 workers, share of the ideal",
            "0.97",
            lambda: cpu[0]["sweep_s"] / cpu[3]["sweep_s"] / 8,
        ),
        fig(
            res + "scaling_cpu.md",
            "the ideal sweep phase on 4 workers, s",
            "21.1",
            lambda: cpu[0]["sweep_s"] / 4,
        ),
        fig(
            res + "scaling_cpu_run1.md",
            "the other workers' busy time at 8 (median), s",
            "10.5",
            lambda: float(pd.Series(run1_busy[:-1]).median()),
        ),
        fig(res + "scaling_gpu.md", "the one-GPU sweep, min", "7.6", lambda: pack1["wall_s"] / 60),
        fig(
            res + "scaling_gpu.md",
            "pack: the GPUs' end apart, s",
            "2.6",
            lambda: max(pack2["busy_s"].values()) - min(pack2["busy_s"].values()),
        ),
        fig(
            res + "scaling_gpu.md", "pack: busy, first GPU, s", "215.6", lambda: min(pack2["busy_s"].values())
        ),
        fig(
            res + "scaling_gpu.md",
            "spread: the GPUs' end apart, s",
            "3.1",
            lambda: max(spread2["busy_s"].values()) - min(spread2["busy_s"].values()),
        ),
        fig(
            res + "scaling_gpu.md",
            "spread: busy, first GPU, s",
            "220.9",
            lambda: min(spread2["busy_s"].values()),
        ),
        fig(
            res + "scaling_gpu.md",
            "the reference workload, least, s",
            "2.5",
            lambda: min(x for r in gpu for x in step(r, "reference")),
        ),
        fig(
            res + "scaling_gpu.md",
            "the reference workload, most, s",
            "2.6",
            lambda: max(x for r in gpu for x in step(r, "reference")),
        ),
        fig(
            res + "scaling_gpu.md",
            "from a worker prepared to its first unit, s",
            "0.01",
            lambda: pack1["breakdown_s"]["to_first_unit_s"],
        ),
        fig(
            res + "scaling_gpu.md",
            "the prefetch, least, s",
            "8.4",
            lambda: min(x for r in gpu for x in step(r, "prefetch")),
        ),
        fig(
            res + "scaling_gpu.md",
            "the prefetch, most, s",
            "10.9",
            lambda: max(x for r in gpu for x in step(r, "prefetch")),
        ),
        fig(
            res + "scaling_gpu.md",
            "the wait for it, least, s",
            "3.2",
            lambda: min(x for r in gpu for x in step(r, "prefetch_wait")),
        ),
        fig(
            res + "scaling_gpu.md",
            "the wait for it, most, s",
            "5.6",
            lambda: max(x for r in gpu for x in step(r, "prefetch_wait")),
        ),
        fig(
            res + "scaling_gpu.md",
            "spread with the one-GPU run's preparation as short as its own",
            "1.85",
            lambda: (pack1["wall_s"] - (prepare(pack1) - prepare(spread2))) / spread2["wall_s"],
        ),
        fig(
            res + "scaling_gpu.md",
            "time in windows, least, %",
            "82",
            lambda: 100 * min(r["window_fraction_of_wall"] for r in gpu),
        ),
        fig(
            res + "scaling_gpu.md",
            "time in windows, most, %",
            "88",
            lambda: 100 * max(r["window_fraction_of_wall"] for r in gpu),
        ),
        *(
            fig(
                res + "scaling_gpu.md",
                f"GPU effect {g['gpu_uuid'][:12]} {col}",
                written,
                lambda g=g, col=col: g[col],
            )
            for g, pairs in zip(
                spread2["gpu_effect"], (("1.0033", "0.0277"), ("0.9954", "0.0178")), strict=True
            )
            for col, written in zip(("energy_ratio", "energy_ratio_ci95"), pairs, strict=True)
        ),
    ]


def _replication_runtime_prose() -> list[Figure]:
    """The reading beside the table of eager against CUDA graphs on one H100."""
    rec = "docs/results/replication/README.md"
    t = lambda: record_tables.runtime(record_tables.REP_RUNTIME)  # noqa: E731

    def of(models: tuple[str, ...], col: str) -> pd.Series:
        d = t()
        return d[d["model"].isin(models)][col]

    ldm, maa2 = ("audioldm", "audioldm2"), ("make-an-audio-2",)
    rise = lambda: of(maa2, "gpu_busy_fraction") - of(maa2, "eager_gpu_busy_fraction")  # noqa: E731
    return [
        fig(
            rec,
            "idle power of GPU-c9173097, W",
            "115.8",
            lambda: rows(record_tables.REP_RUNTIME)["idle_power_w"].mean(),
        ),
        fig(rec, "eager busy fraction, lowest", "0.13", lambda: t()["eager_gpu_busy_fraction"].min()),
        fig(rec, "eager busy fraction, highest", "0.47", lambda: t()["eager_gpu_busy_fraction"].max()),
        fig(
            rec,
            "AudioLDM/AudioLDM2 gross change, about",
            "-70",
            lambda: of(ldm, "gross_change_pct").mean(),
            5,
        ),
        fig(rec, "AudioLDM/AudioLDM2 net change, least", "-23", lambda: of(ldm, "net_change_pct").max()),
        fig(rec, "AudioLDM/AudioLDM2 net change, most", "-30", lambda: of(ldm, "net_change_pct").min()),
        fig(
            rec, "Make-An-Audio 2 gross change, about", "-20", lambda: of(maa2, "gross_change_pct").mean(), 2
        ),
        fig(rec, "Make-An-Audio 2 net change, least", "-2", lambda: of(maa2, "net_change_pct").max()),
        fig(rec, "Make-An-Audio 2 net change, most", "-3", lambda: of(maa2, "net_change_pct").min()),
        fig(rec, "Make-An-Audio 2 busy rise, least", "0.12", lambda: rise().min()),
        fig(rec, "Make-An-Audio 2 busy rise, most", "0.19", lambda: rise().max()),
        fig(rec, "SNR against eager, lowest, dB", "42", lambda: t()["output_snr_db"].min()),
        fig(rec, "SNR against eager, highest, dB", "54", lambda: t()["output_snr_db"].max()),
    ]


def _replication_prose() -> list[Figure]:
    from scipy.stats import t as student_t

    rec = "docs/results/replication/README.md"
    old_steps, old_batch = "docs/results/h100/paper-steps", "docs/results/h100/paper-batch"

    def energy(run: str, model: str) -> pd.Series:
        d = rows(run)
        return d[(d["model"] == model) & (d["status"] == "ok")].groupby("steps")[ENERGY].mean()

    def per_steps(run: str, num: str, den: str) -> pd.Series:
        ratio = energy(run, num) / energy(run, den)
        return ratio[ratio.index.isin(COMMON_STEPS)]

    def sao_ratio() -> pd.Series:
        return (energy(REP_STEPS, "stable-audio-open") / energy(old_steps, "stable-audio-open")).dropna()

    def busy(run: str, **where) -> pd.Series:
        d = rows(run)
        for k, v in where.items():
            d = d[d[k] == v]
        return 100 * d.groupby("model")["gpu_busy_fraction"].median()

    def idle_of(prefix: str) -> float:
        d = pd.concat([rows(old_steps), rows(old_batch)])
        return d[d["gpu_uuid"].str.startswith(prefix)]["idle_power_w"].max()

    def bound(model: str, sign: int) -> float:
        f = steps_fit(REP_STEPS, model)
        return f["slope"] + sign * f["slope_ci95"]

    ratios = lambda: slopes(REP_STEPS) / slopes(old_steps, COMMON_STEPS)  # noqa: E731
    return [
        fig(rec, "this card's idle power, W", "114.9", lambda: rows(REP_STEPS)["idle_power_w"].mean()),
        fig(rec, "idle power of GPU-2d873470, W", "122.3", lambda: idle_of("GPU-2d873470")),
        fig(rec, "idle power of GPU-7201daf1, W", "117.5", lambda: idle_of("GPU-7201daf1")),
        fig(rec, "t-quantile with 3 repeats", "4.3", lambda: student_t.ppf(0.975, 2)),
        fig(rec, "t-quantile with 2 repeats", "12.7", lambda: student_t.ppf(0.975, 1)),
        fig(
            rec,
            "busy %, audioldm(2), batch 1, least",
            "13",
            lambda: busy(REP_BATCH, batch_size=1)[["audioldm", "audioldm2"]].min(),
        ),
        fig(
            rec,
            "busy %, audioldm(2), batch 1, most",
            "18",
            lambda: busy(REP_BATCH, batch_size=1)[["audioldm", "audioldm2"]].max(),
        ),
        fig(rec, "stable-audio-open per-steps ratio, least", "0.90", lambda: sao_ratio().min()),
        fig(rec, "stable-audio-open per-steps ratio, most", "1.02", lambda: sao_ratio().max()),
        fig(
            rec, "earlier tango J/step, steps 10–200", "10.30", lambda: steps_fit(old_steps, "tango")["slope"]
        ),
        fig(
            rec,
            "earlier tango2 J/step, steps 10–200",
            "8.57",
            lambda: steps_fit(old_steps, "tango2")["slope"],
        ),
        fig(
            rec,
            "earlier tango2 / tango, 10 steps",
            "0.91",
            lambda: per_steps(old_steps, "tango2", "tango")[10],
        ),
        fig(
            rec,
            "earlier tango2 / tango, 25 steps",
            "1.13",
            lambda: per_steps(old_steps, "tango2", "tango")[25],
        ),
        fig(
            rec,
            "earlier tango2 / tango, 50 steps",
            "0.77",
            lambda: per_steps(old_steps, "tango2", "tango")[50],
        ),
        fig(
            rec,
            "earlier tango2 / tango, 100 steps",
            "0.85",
            lambda: per_steps(old_steps, "tango2", "tango")[100],
        ),
        fig(rec, "tango J/step, lower end", "7.92", lambda: bound("tango", -1)),
        fig(rec, "tango J/step, upper end", "9.12", lambda: bound("tango", 1)),
        fig(rec, "tango2 J/step, lower end", "8.02", lambda: bound("tango2", -1)),
        fig(rec, "tango2 J/step, upper end", "10.21", lambda: bound("tango2", 1)),
        fig(
            rec,
            "tango2 / tango per steps, least",
            "0.96",
            lambda: per_steps(REP_STEPS, "tango2", "tango").min(),
        ),
        fig(
            rec,
            "tango2 / tango per steps, most",
            "1.08",
            lambda: per_steps(REP_STEPS, "tango2", "tango").max(),
        ),
        fig(rec, "busy %, least model median", "13", lambda: busy(REP_STEPS).min()),
        fig(rec, "busy %, most model median", "36", lambda: busy(REP_STEPS).max()),
        fig(rec, "share energy CV ≤ window CV, %", "93", lambda: 100 * cv_below_window_cv_share(REP_STEPS)),
        fig(
            rec,
            "largest J/step difference between the sweeps, %",
            "25",
            lambda: 100 * (ratios() - 1).abs().max(),
        ),
    ]


def _doctor_prose() -> list[Figure]:
    from t2a_ray.metering import doctor

    rec = "benchmarks/results/doctor_h200.md"
    places = {
        p["label"]: {c["number"]: c for c in p["checks"]} for p in bench_json("doctor_h200.json")["places"]
    }
    g0, g1 = (places[k] for k in sorted(places))
    judged = {k: doctor.judge_coverage(p[2]["data"]).data for k, p in places.items()}
    j0, j1 = (judged[k] for k in sorted(judged))

    def effect(j: dict, offset: str) -> float:
        return 100 * (j["coverage"][offset] - 1)

    def ci_half_pct() -> float:
        halves = [(hi - lo) / 2 for j in judged.values() for lo, hi in j["coverage_ci"].values()]
        return 100 * sum(halves) / len(halves)

    def window_s() -> float:
        windows = [w["duration_s"] for p in places.values() for w in p[5]["data"]["windows"]]
        return sum(windows) / len(windows)

    return [
        fig(
            rec,
            "one read, ms (both GPUs)",
            "2.5",
            lambda: 1e3 * (g0[4]["data"]["read_s"] + g1[4]["data"]["read_s"]) / 2,
        ),
        fig(rec, "fixed-work windows, s", "0.9", window_s),
        fig(rec, "coverage, least (GPU 0)", "0.87", lambda: min(j0["coverage"].values())),
        fig(rec, "coverage CI half-width, %", "2.5", ci_half_pct),
        fig(rec, "offset 7 below the mean, GPU 0, %", "12.7", lambda: -effect(j0, "7")),
        fig(rec, "offset 7 below the mean, GPU 1, %", "10.8", lambda: -effect(j1, "7")),
        fig(rec, "offset 1 above the mean, GPU 0, %", "10.8", lambda: effect(j0, "1")),
        fig(rec, "offset 1 above the mean, GPU 1, %", "11.2", lambda: effect(j1, "1")),
        fig(rec, "ANOVA p, GPU 1", "3.6e-8", lambda: j1["anova_p"], tolerance=0.05e-8),
        fig(
            rec,
            "the largest effect, %",
            "13",
            lambda: max(abs(effect(j, k)) for j in judged.values() for k in j["coverage"]),
        ),
    ]


def _h200_prose() -> list[Figure]:
    from t2a_ray.analysis.gpu_effect import gpu_effect
    from t2a_ray.analysis.runtime_tables import read_setup, runtime_tables

    rec = "docs/results/h200/runtime/README.md"
    one, six = "docs/results/h200/runtime/runtime-audioldm-h200", "docs/results/h200/runtime/runtime-h200"
    t = record_tables.runtime(one)

    def cfg(batch: int, steps: int, col: str) -> float:
        return float(t[(t["batch_size"] == batch) & (t["steps"] == steps)][col].iloc[0])

    def j_per_step(compile_: str) -> float:
        d = rows(one)
        d = d[(d["batch_size"] == 1) & (d["compile"] == compile_) & (d["status"] == "ok")]
        return fit_line(d["steps"], d[ENERGY])["slope"]

    @functools.cache
    def boundness() -> pd.DataFrame:
        return runtime_tables(rows(one), read_setup(ROOT / one))["launch_boundness"]

    def power_over_idle(steps: int) -> float:
        lb = boundness()
        return float(
            lb[(lb["batch_size"] == 1) & (lb["compile"] == "none") & (lb["steps"] == steps)][
                "power_over_idle"
            ].iloc[0]
        )

    @functools.cache
    def effects() -> pd.DataFrame:
        d = rows(six)
        return gpu_effect(d[d["status"] == "ok"], ENERGY)

    def effect(col: str, pick: Callable) -> float:
        return pick(effects()[col])

    def cv_medians(compile_: str) -> pd.Series:
        d = rows(six)
        g = d.groupby(["model", "compile", "batch_size", "steps"])[ENERGY]
        cv = (g.std() / g.mean()).groupby(["model", "compile"]).median()
        return 100 * cv.xs(compile_, level="compile")

    def throttled_power(pick: Callable) -> float:
        d = rows(six)
        return pick(d[d["throttled"].fillna(False).astype(bool)]["avg_power_w"])

    busy = {(b, s): 100 * cfg(b, s, "gpu_busy_fraction") for b in (1, 4) for s in (25, 100)}
    return [
        fig(rec, "eager J/step, batch 1", "6.71", lambda: j_per_step("none")),
        fig(rec, "CUDA graphs J/step, batch 1", "1.19", lambda: j_per_step("reduce-overhead")),
        fig(
            rec,
            "batch 4 against batch 1, eager, 100 steps, %",
            "−70",
            lambda: (
                100
                * (
                    cfg(4, 100, "eager_energy_per_waveform_j") / cfg(1, 100, "eager_energy_per_waveform_j")
                    - 1
                )
            ),
        ),
        fig(
            rec,
            "eager busy %, batch 1, 25 steps",
            "12.5",
            lambda: 100 * cfg(1, 25, "eager_gpu_busy_fraction"),
        ),
        fig(
            rec,
            "eager busy %, batch 1, 100 steps",
            "12.6",
            lambda: 100 * cfg(1, 100, "eager_gpu_busy_fraction"),
        ),
        fig(rec, "eager power over idle, batch 1, 100 steps", "1.14", lambda: power_over_idle(100)),
        fig(rec, "eager power over idle, batch 1, 25 steps", "1.16", lambda: power_over_idle(25)),
        fig(rec, "graphs busy %, batch 1, least", "50", lambda: min(busy[(1, 25)], busy[(1, 100)])),
        fig(rec, "graphs busy %, batch 1, most", "58", lambda: max(busy[(1, 25)], busy[(1, 100)])),
        fig(rec, "graphs busy %, batch 4, most", "64", lambda: max(busy[(4, 25)], busy[(4, 100)])),
        fig(rec, "compile s, batch 1", "72", lambda: cfg(1, 25, "overhead_s")),
        fig(rec, "compile kJ, batch 1", "9.1", lambda: cfg(1, 25, "overhead_j") / 1000),
        fig(rec, "compile s, batch 4", "57", lambda: cfg(4, 25, "overhead_s")),
        fig(rec, "compile kJ, batch 4", "7.4", lambda: cfg(4, 25, "overhead_j") / 1000),
        fig(rec, "relative L2 error %, least", "0.26", lambda: 100 * t["output_rel_l2_error"].min()),
        fig(rec, "relative L2 error %, most", "0.37", lambda: 100 * t["output_rel_l2_error"].max()),
        fig(
            rec,
            "audioldm eager J/step on the H100s",
            "6.32",
            lambda: steps_fit("docs/results/h100/paper-steps", "audioldm")["slope"],
        ),
        fig(rec, "GPU effect, least", "0.984", lambda: effect("energy_ratio", min)),
        fig(rec, "GPU effect, most", "1.021", lambda: effect("energy_ratio", max)),
        fig(rec, "GPU effect CI, least", "0.015", lambda: effect("energy_ratio_ci95", min)),
        fig(rec, "GPU effect CI, most", "0.022", lambda: effect("energy_ratio_ci95", max)),
        fig(
            rec,
            "audioldm eager busy fraction, batch 1",
            "0.13",
            lambda: cfg(1, 25, "eager_gpu_busy_fraction"),
        ),
        fig(
            rec,
            "energy CV under graphs, least model median, %",
            "0.7",
            lambda: cv_medians("reduce-overhead").min(),
        ),
        fig(
            rec,
            "energy CV under graphs, largest model median, %",
            "3.5",
            lambda: cv_medians("reduce-overhead").max(),
        ),
        fig(rec, "energy CV eager, least model median, %", "2.2", lambda: cv_medians("none").min()),
        fig(rec, "energy CV eager, largest model median, %", "15", lambda: cv_medians("none").max()),
        fig(rec, "throttled windows' power, least, W", "288", lambda: throttled_power(min)),
        fig(rec, "throttled windows' power, most, W", "685", lambda: throttled_power(max)),
    ]


def _h100_prose() -> list[Figure]:
    from scipy.stats import t as student_t

    h100 = "docs/results/h100/README.md"
    steps_run, batch_run = "docs/results/h100/paper-steps", "docs/results/h100/paper-batch"
    rep_steps = "docs/results/replication/replication-steps"
    phases = record_tables.h100_phases()
    fits = {m: steps_fit(steps_run, m) for m in MODELS}

    def share(model: str, col: int) -> float:
        return phases[(model,)][col]

    def idle_by_gpu() -> list[float]:
        both = pd.concat([rows(steps_run), rows(batch_run)])
        return sorted(both.groupby("gpu_uuid")["idle_power_w"].max())

    def at100(model: str, col: str) -> float:
        d = rows(steps_run)
        return d[(d["model"] == model) & (d["steps"] == 100)][col].mean()

    def call_s(model: str, batch: int) -> float:
        d = rows(batch_run)
        d = d[(d["model"] == model) & (d["batch_size"] == batch)]
        return (d["window_s"] / d["generations_in_window"]).mean()

    def window_cv_medians() -> pd.Series:
        g = rows(steps_run).groupby(["model", "steps"])["window_s"]
        return 100 * (g.std() / g.mean()).groupby("model").median()

    def s_per_step(model: str, steps: int) -> float:
        d = rows(steps_run)
        return d[(d["model"] == model) & (d["steps"] == steps)]["latency_s"].mean() / steps

    not_maa2 = [m for m in MODELS if m != "make-an-audio-2"]
    out = [
        fig(h100, "t-quantile with 2 repeats", "12.7", lambda: student_t.ppf(0.975, 1)),
        fig(h100, "idle power, lowest H100", "117.5", lambda: idle_by_gpu()[0]),
        fig(h100, "idle power, highest of the four H100s", "122.3", lambda: idle_by_gpu()[-2]),
        fig(h100, "idle power, the H100 of the make-an-audio-2 rerun", "138.2", lambda: idle_by_gpu()[-1]),
        fig(
            h100,
            "denoising share, least (not make-an-audio-2)",
            "92",
            lambda: min(share(m, 1) for m in not_maa2),
        ),
        fig(h100, "denoising share, most", "98", lambda: max(share(m, 1) for m in not_maa2)),
        fig(h100, "make-an-audio-2 text encoder share", "12", lambda: share("make-an-audio-2", 0)),
        fig(h100, "make-an-audio-2 vocoder share", "12", lambda: share("make-an-audio-2", 3)),
        fig(h100, "R², least", "0.93", lambda: min(f["r2"] for f in fits.values())),
        fig(h100, "R², most", "0.99", lambda: max(f["r2"] for f in fits.values())),
        fig(
            h100,
            "tango J/step on one card (replication)",
            "8.52",
            lambda: steps_fit(rep_steps, "tango")["slope"],
        ),
        fig(h100, "its CI", "0.60", lambda: steps_fit(rep_steps, "tango")["slope_ci95"]),
        fig(
            h100,
            "tango2 J/step on one card (replication)",
            "9.11",
            lambda: steps_fit(rep_steps, "tango2")["slope"],
        ),
        fig(h100, "its CI", "1.10", lambda: steps_fit(rep_steps, "tango2")["slope_ci95"]),
        fig(
            h100,
            "audioldm idle share of energy at 100 steps",
            "85",
            lambda: 100 * at100("audioldm", "idle_power_w") / at100("audioldm", "avg_power_w"),
        ),
        fig(
            h100,
            "audioldm2 idle share of energy at 100 steps",
            "89",
            lambda: 100 * at100("audioldm2", "idle_power_w") / at100("audioldm2", "avg_power_w"),
        ),
        fig(
            h100,
            "stable-audio-open latency growth, batch 1 → 10",
            "2.9",
            lambda: call_s("stable-audio-open", 10) / call_s("stable-audio-open", 1),
        ),
        fig(
            h100,
            "make-an-audio-2 at batch 10, J",
            "93",
            lambda: per_waveform(batch_run, "make-an-audio-2", batch_size=10)[0],
        ),
        fig(
            h100,
            "stable-audio-open / audioldm at batch 10",
            "8",
            lambda: (
                per_waveform(batch_run, "stable-audio-open", batch_size=10)[0]
                / per_waveform(batch_run, "audioldm", batch_size=10)[0]
            ),
        ),
        fig(h100, "window CV, least model median", "5", lambda: window_cv_medians().min()),
        fig(h100, "window CV, largest model median", "13", lambda: window_cv_medians().max()),
        fig(h100, "audioldm2 s/step at 200 steps", "0.083", lambda: s_per_step("audioldm2", 200)),
        fig(h100, "audioldm2 s/step at 150 steps", "0.107", lambda: s_per_step("audioldm2", 150)),
    ]
    out += [
        fig(h100, f"{m} J/step, one decimal", f"{written}", lambda m=m: fits[m]["slope"])
        for m, written in (
            ("stable-audio-open", "15.4"),
            ("audioldm2", "12.2"),
            ("tango", "10.3"),
            ("tango2", "8.6"),
            ("audioldm", "6.3"),
            ("make-an-audio", "3.9"),
            ("make-an-audio-2", "1.7"),
        )
    ]
    return out


def _meter_history(rec: str) -> list[Figure]:
    """The first look (2026-11-25) of meter_precision_h100.md, from its two runs' JSON."""
    import statistics

    run2, run1 = bench_json("meter_precision_h100.json"), bench_json("meter_precision_h100_run1.json")
    characterise = {n: r["sections"]["characterise"] for n, r in (("run 1", run1), ("run 2", run2))}
    matmul, audioldm = run2["summaries"][0], run2["summaries"][1]
    variants = matmul["variants"]
    durations = [w["duration_s"] for w in run2["sections"]["audioldm"]["rows"]]
    rows1 = run1["sections"]["audioldm"]["rows"]
    read_ms = [1e-3 * c["read_cost_us"]["nvmlDeviceGetTotalEnergyConsumption"] for c in characterise.values()]
    return [
        fig(
            rec,
            "first look: counter − power∫ sd, matmul, %",
            "2.3",
            lambda: 100 * matmul["counter_vs_power_sd"],
        ),
        fig(
            rec,
            "first look: matmul CV under linear interpolation, %",
            "1.09",
            lambda: 100 * variants["linear,lag=used(5ms)"]["cv"],
        ),
        fig(
            rec,
            "first look: linear's mean below step's, J",
            "23",
            lambda: variants["step,lag=used(5ms)"]["mean_j"] - variants["linear,lag=used(5ms)"]["mean_j"],
        ),
        fig(rec, "run 1: matmul meter CV, %", "0.87", lambda: 100 * run1["summaries"][0]["meter_cv"]),
        fig(
            rec,
            "the counter's lag fitted in run 2, ms",
            "8",
            lambda: 1e3 * characterise["run 2"]["counter_lag_s_fit"],
        ),
        fig(rec, "a counter read, least, ms", "3.4", lambda: min(read_ms)),
        fig(rec, "a counter read, most, ms", "3.9", lambda: max(read_ms)),
        fig(
            rec,
            "the 1 s power average's delay, s",
            "0.95",
            lambda: characterise["run 2"]["power_average_delay_s_fit"],
        ),
        fig(rec, "idle with the context open, W", "121", lambda: run2["idle_power_w"]),
        fig(rec, "AudioLDM-s generation, shortest, s", "3.26", lambda: min(durations)),
        fig(rec, "AudioLDM-s generation, longest, s", "5.29", lambda: max(durations)),
        fig(rec, "AudioLDM-s duration CV, %", "15.2", lambda: 100 * audioldm["duration_cv"]),
        fig(
            rec, "AudioLDM-s duration CV, run 1, %", "18.5", lambda: 100 * run1["summaries"][1]["duration_cv"]
        ),
        fig(
            rec,
            "energy per extra second, run 1, W",
            "122",
            lambda: (
                statistics.linear_regression(
                    [w["duration_s"] for w in rows1], [w["meter_j"] for w in rows1]
                ).slope
            ),
        ),
        fig(rec, "AudioLDM-s net energy CV, %", "3.0", lambda: 100 * audioldm["meter_net_cv"]),
        *_meter_history_counter(rec, run1, run2),
    ]


def _meter_history_counter(rec: str, run1: dict, run2: dict) -> list[Figure]:
    """The first look's counter, overhead and in-window thinning, and the later looks' NVML costs and
    medians, from the runs' JSON (and the 5 ms trace of run 2, replayed)."""
    import replay_in_window_reads as replay

    c2 = run2["sections"]["characterise"]
    q2 = c2["counter_gap_ms_quantiles"]  # the 5 %, 10 %, …, 95 % quantiles
    close = [
        r["close_wait_s"] for r in run2["sections"]["matmul_rows"] + run2["sections"]["audioldm"]["rows"]
    ]
    at20 = run2["sections"]["overhead"]["0.02"]
    off_cv = {
        n: r["sections"]["audioldm"]["overhead_generation"]["off_cv"] for n, r in (("1", run1), ("2", run2))
    }
    second = _overhead_json("meter_overhead_h100_2026-11-25b.json")["0.05"]
    costs = [
        bench_json(f"meter_overhead_h100_2026-11-26{x}.json")["sections"]["nvml_cost"][
            "total_energy_consumption"
        ]
        for x in "bc"
    ]
    other = _overhead_json("meter_overhead_h100_2026-11-26c.json")
    third = [
        _overhead_json("meter_overhead_h100_2026-11-26.json")["0.05"],
        other["0.05"],
        other["0.05-other-process"],
    ]
    # the in-process pair medians of the third look's H100 runs: two JSONs and the log of the third
    medians = [
        100 * third[0]["pair_ratio_quartiles"][1],
        record_tables._log_overhead("meter_overhead_h100_2026-11-26b.log")[0],
        100 * third[1]["pair_ratio_quartiles"][1],
    ]

    def thinned(interval_s: float | None, refine: bool) -> float:
        return 100 * replay.thinned_cv("matmul", interval_s, refine)

    variants = run2["summaries"][0]["variants"]
    return [
        fig(
            rec, "the counter's fitted period, run 2, ms", "100.0", lambda: 1e3 * c2["counter_grid_period_s"]
        ),
        fig(rec, "the counter's median gap, run 2, ms", "100.1", lambda: 1e3 * c2["counter_period_s"]),
        fig(rec, "the counter's gaps, 10th percentile, ms", "97.5", lambda: q2[1]),
        fig(rec, "the counter's gaps, 90th percentile, ms", "102", lambda: q2[17]),
        fig(rec, "the wait after a window, least, s", "0.11", lambda: min(close)),
        fig(rec, "the wait after a window, most, s", "0.22", lambda: max(close)),
        fig(rec, "the wait after a window, mean, s", "0.16", lambda: sum(close) / len(close)),
        fig(rec, "overhead at 20 ms, pair median, %", "+0.70", lambda: 100 * at20["overhead_median"]),
        fig(
            rec,
            "overhead at 20 ms, lower quartile, %",
            "−0.01",
            lambda: 100 * at20["pair_ratio_quartiles"][0],
        ),
        fig(rec, "overhead at 20 ms, median pair, %", "+1.48", lambda: 100 * at20["pair_ratio_quartiles"][1]),
        fig(
            rec,
            "overhead at 20 ms, upper quartile, %",
            "+3.64",
            lambda: 100 * at20["pair_ratio_quartiles"][2],
        ),
        fig(
            rec,
            "overhead at 5 ms, %",
            "+2.30",
            lambda: 100 * run2["sections"]["overhead"]["0.005"]["overhead_median"],
        ),
        fig(
            rec,
            "AudioLDM-s overhead, mean, %",
            "+6.3",
            lambda: 100 * run2["sections"]["audioldm"]["overhead_generation"]["overhead_mean"],
        ),
        fig(rec, "AudioLDM-s meter-off CV, run 2, %", "11", lambda: 100 * off_cv["2"]),
        fig(rec, "AudioLDM-s meter-off CV, run 1, %", "16", lambda: 100 * off_cv["1"]),
        fig(rec, "second look: the loop's CV, off, %", "11", lambda: 100 * second["off_cv"]),
        fig(rec, "second look: the loop's CV, on, %", "12", lambda: 100 * second["on_cv"]),
        fig(rec, "a counter read's CPU, least, ms", "2.34", lambda: min(c["cpu_ms_median"] for c in costs)),
        fig(rec, "a counter read's CPU, most, ms", "2.41", lambda: max(c["cpu_ms_median"] for c in costs)),
        fig(rec, "a counter read, other-process run, ms", "2.41", lambda: costs[1]["wall_ms_median"]),
        fig(
            rec,
            "the ratio of medians' swing, %",
            "7",
            lambda: 100 * max(abs(x["overhead_median"]) for x in third),
        ),
        fig(rec, "third look, in-process pair median, least, %", "+0.65", lambda: min(medians)),
        fig(rec, "third look, in-process pair median, most, %", "0.80", lambda: max(medians)),
        fig(
            rec,
            "first look: matmul CV under step, %",
            "0.43",
            lambda: 100 * variants["step,lag=used(5ms)"]["cv"],
        ),
        Below(
            rec,
            "first look: the CV's change with a lag of 0 or 8 ms, points",
            "0.03",
            lambda: max(
                abs(100 * (variants[f"step,lag={k}"]["cv"] - variants["step,lag=used(5ms)"]["cv"]))
                for k in ("zero(0ms)", "fit(8ms)")
            ),
            0.0,
        ),
        fig(rec, "the step CV with the refinement, %", "0.44", lambda: thinned(None, True)),
        fig(rec, "thinned to 40 ms, refined, %", "0.45", lambda: thinned(0.04, True)),
        fig(rec, "thinned to 60 ms, refined, %", "0.45", lambda: thinned(0.06, True)),
        fig(rec, "thinned to 40 ms, unrefined, %", "0.65", lambda: thinned(0.04, False)),
        fig(rec, "thinned to 60 ms, unrefined, %", "0.95", lambda: thinned(0.06, False)),
    ]


def _overhead_json(name: str) -> dict:
    return bench_json(name)["sections"]["overhead"]
