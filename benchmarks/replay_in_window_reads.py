"""How few counter reads can a window have? A replay of the recorded H100 trace.

Each counter read costs the H100's driver ~2.4 ms and slows launch-bound work whichever process reads
(`results/meter_precision_h100.md`), so the meter should read as seldom as precision allows inside a
window. This replays the 5 ms trace recorded with the 10 matmul and 10 AudioLDM-s windows of
`results/meter_precision_h100.json`, keeps every sample outside the windows (the meter samples densely
there), thins the samples inside them, and recomputes each window's energy with the meter's own
timeline code. It prints the CV over the repeats and the error against the full 5 ms trace for

- a fixed in-window interval (the meter's `window_sample_interval_s`, 50 ms by default), and
- one read per counter tick, `delta` after it (the tick times taken from the full trace), and
- the meter's own schedule (`tickgrid.TickGrid`, learnt from the kept samples as they come): midway
  between the ticks it predicts, dense for a moment where its error has grown.

    python benchmarks/replay_in_window_reads.py        # no GPU needed; ~1 s
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
import statistics
from pathlib import Path

from t2a_ray.metering.tickgrid import TickGrid
from t2a_ray.metering.timeline import CounterTimeline, counter_updates

RESULTS = Path(__file__).parent / "results"


def load() -> tuple[dict, list[dict], float]:
    run = json.loads((RESULTS / "meter_precision_h100.json").read_text())
    samples = json.loads(gzip.decompress((RESULTS / "meter_precision_h100_samples.json.gz").read_bytes()))
    rows = run["sections"]["matmul_rows"] + [
        dict(r, workload="audioldm") for r in run["sections"]["audioldm"]["rows"]
    ]
    return samples, rows, run["meter_settings"]["counter_lag_s"]


def energies_j(
    samples: dict, keep: list[int], rows: list[dict], lag_s: float, refine: bool = True
) -> list[float]:
    t = [samples["t_s"][i] for i in keep]
    e = [samples["energy_mj"][i] for i in keep]
    timeline = CounterTimeline(counter_updates(t, e), lag_s, "step", refine=refine)
    return [(timeline.energy_mj_at(r["end_s"]) - timeline.energy_mj_at(r["start_s"])) * 1e-3 for r in rows]


@functools.cache
def _loaded() -> tuple[dict, list[dict], float]:
    return load()


def thinned_cv(workload: str, interval_s: float | None, refine: bool) -> float:
    """The energy CV over one workload's windows with the in-window samples thinned to one per
    `interval_s` (None: all of them), with or without the tick-time refinement."""
    samples, rows, lag_s = _loaded()
    keep = list(range(len(samples["t_s"]))) if interval_s is None else keep_every(samples, rows, interval_s)
    energies = energies_j(samples, keep, rows, lag_s, refine)
    x = [energies[i] for i, r in enumerate(rows) if r["workload"] == workload]
    return statistics.stdev(x) / statistics.mean(x)


def window_of(rows: list[dict], t_s: float) -> int | None:
    return next((k for k, r in enumerate(rows) if r["start_s"] < t_s < r["end_s"]), None)


def keep_every(samples: dict, rows: list[dict], interval_s: float) -> list[int]:
    keep, last_read = [], {}
    for i, t in enumerate(samples["t_s"]):
        k = window_of(rows, t)
        if k is None or t - last_read.get(k, -1e9) >= interval_s:
            keep.append(i)
            if k is not None:
                last_read[k] = t
    return keep


def keep_per_tick(samples: dict, rows: list[dict], delta_s: float) -> list[int]:
    t = samples["t_s"]
    ticks = [0.5 * (u.before_s + u.seen_s) for u in counter_updates(t, samples["energy_mj"])]
    keep = {i for i, ti in enumerate(t) if window_of(rows, ti) is None}
    for r in rows:
        k = bisect.bisect_left(ticks, r["start_s"])
        while k < len(ticks) and ticks[k] + delta_s < r["end_s"]:
            j = bisect.bisect_left(t, ticks[k] + delta_s)  # the first sample delta after the tick
            if j < len(t) and t[j] < r["end_s"]:
                keep.add(j)
            k += 1
    return sorted(keep)


def keep_as_planned(samples: dict, rows: list[dict]) -> list[int]:
    """The samples the meter's sampler would have taken: all outside windows; inside, the first at or
    after each read the tick grid plans (as the samples come, so the grid knows only the past)."""
    grid, keep, last, next_read_s = TickGrid(sharp_s=0.015), [], None, -1e9
    for i, (t, e) in enumerate(zip(samples["t_s"], samples["energy_mj"], strict=True)):
        inside = window_of(rows, t) is not None
        if inside and t < next_read_s:
            continue
        keep.append(i)
        if last is not None and e != last[1]:
            grid.observe(last[0], t)
        last = (t, e)
        planned_s = grid.next_read_s(t, 0.005)
        next_read_s = t + 0.05 if planned_s is None else planned_s
    return keep


def report(
    label: str, energies: list[float], full: list[float], rows: list[dict], reads_per_s: float
) -> None:
    for workload in ("matmul", "audioldm"):
        idx = [i for i, r in enumerate(rows) if r["workload"] == workload]
        x = [energies[i] for i in idx]
        err = [abs(energies[i] / full[i] - 1) for i in idx]
        print(
            f"| {label} | {reads_per_s:.1f} | {workload} | {statistics.stdev(x) / statistics.mean(x):.2%} "
            f"| {max(err):.3%} | {statistics.mean(err):.3%} |"
        )


def main() -> None:
    samples, rows, lag_s = load()
    full = energies_j(samples, list(range(len(samples["t_s"]))), rows, lag_s)
    print("| in-window reads | reads per s | windows | energy CV | max error vs 5 ms | mean error |")
    print("|---|---|---|---|---|---|")
    for interval_s in (0.005, 0.05, 0.1, 0.2, 0.5):
        report(
            f"every {interval_s * 1e3:.0f} ms",
            energies_j(samples, keep_every(samples, rows, interval_s), rows, lag_s),
            full,
            rows,
            1 / interval_s,
        )
    report("none", energies_j(samples, keep_every(samples, rows, 1e9), rows, lag_s), full, rows, 0)
    for delta_s in (0.01, 0.03, 0.05, 0.07):
        report(
            f"one per tick, {delta_s * 1e3:.0f} ms after it",
            energies_j(samples, keep_per_tick(samples, rows, delta_s), rows, lag_s),
            full,
            rows,
            10,
        )
    planned = keep_as_planned(samples, rows)
    inside = sum(window_of(rows, samples["t_s"][i]) is not None for i in planned)
    report(
        "the meter's tick grid",
        energies_j(samples, planned, rows, lag_s),
        full,
        rows,
        inside / sum(r["end_s"] - r["start_s"] for r in rows),
    )


if __name__ == "__main__":
    main()
