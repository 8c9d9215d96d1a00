"""An `Analysis` as text (what `t2a-ray analyze` prints) and as a static HTML page (report/index.html).

Nothing here computes a figure or touches a file: every number comes from the `Analysis` value.
"""

from __future__ import annotations

import html

import pandas as pd

from t2a_ray.analysis.fronts import Front
from t2a_ray.analysis.pipeline import TABLE_CSVS, Analysis
from t2a_ray.analysis.plots import unit_of
from t2a_ray.analysis.runtime import TITLES as RUNTIME_TITLES
from t2a_ray.analysis.search import TITLES as SEARCH_TITLES
from t2a_ray.analysis.values import count, fmt

# Each fit's heading: the HTML shows the title, the printed tables add the detail.
FIT_TITLES = {
    "energy_vs_steps": ("Energy vs steps", " (linear fit per series; slope in J/step)"),
    "energy_vs_batch": ("Energy per waveform vs batch size", ""),
    "energy_per_audio_s_vs_duration": ("Energy per audio second vs duration", " (linear fit)"),
    "phase_shares": ("Phase shares", " of the measured phase energy"),
    "repeat_spread": (
        "Spread over repeats",
        " (coefficient of variation per configuration; window duration beside energy)",
    ),
    "gpus": ("GPUs", " (idle power measured by each worker before its first trial)"),
    **RUNTIME_TITLES,
    **SEARCH_TITLES,
    "gpu_effect": (
        "GPU effect",
        " (each GPU's energy over the GPU-balanced mean of the configurations it shares with other GPUs,"
        " with its 95 % CI; configuration means above weigh each GPU equally)",
    ),
    "workers": (
        "Workers",
        " (from logs/: host, reference workload per call, loads, warm-ups, busy time, idle gaps, the"
        " plan's prediction)",
    ),
}


def render_text(a: Analysis) -> str:
    """The headline, fronts, fits and notes as plain-text tables."""
    lines = [f"t2a-ray analysis of {a.source}", _used_line(a)]
    if a.carbon is not None:
        lines.append(f"Carbon: {a.carbon['total_g']:.4g} g CO2e{_estimate(a)} ({a.carbon['method']})")
    lines.append("")
    if a.fronts:
        lines += [
            f"Pareto fronts (energy: {a.energy_col}{_estimate(a)}, lower is better)",
            _table_text(_fronts_table(a)),
            "",
        ]
        for f in a.fronts:
            lines += [
                f"Front {f.label} ({f.dominance} dominance; * = knee)",
                _table_text(_front_points(a, f)),
                "",
            ]
    if a.failures is not None:  # after the fronts: what is missing from them, and why
        lines += [a.failures.text(), ""]
    for key, (title, detail) in FIT_TITLES.items():
        if key in a.fits:
            lines += [title + detail, _table_text(a.fits[key]), ""]
    if a.notes:
        lines += ["Notes"] + [f"  - {n}" for n in a.notes] + [""]
    lines.append(f"Report: {a.report_path}")
    if a.fronts:
        lines.append(f"Fronts: {a.fronts_csv_path}")
    if "energy_vs_steps" in a.fits:
        lines.append(f"Fits: {a.fits_csv_path}")
    lines += [f"{label}: {a.table_csv_path(key)}" for key, (label, _) in TABLE_CSVS.items() if key in a.fits]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table.t{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}table.t th,table.t td{padding:.2rem .6rem;
border-bottom:1px solid #eee;text-align:right}table.t th{background:#f6f6f6}figure{margin:1rem 0}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85rem;color:#555}.meta{color:#555;font-size:.9rem}
"""


def render_html(a: Analysis) -> str:
    """The report page: one self-contained file (no script, no remote resource), plots beside it."""
    e = html.escape
    files = [f"<a href='{a.configs_csv_path.name}'>configs.csv</a> (one row per configuration)"]
    if a.fronts:
        files.insert(0, f"<a href='{a.fronts_csv_path.name}'>fronts.csv</a> (the input rows on a front)")
    if "energy_vs_steps" in a.fits:
        files.append(f"<a href='{a.fits_csv_path.name}'>fits.csv</a> (energy vs steps, J/step)")
    for key, (_, holds) in TABLE_CSVS.items():
        if key in a.fits:
            name = a.table_csv_path(key).name
            files.append(f"<a href='{name}'>{name}</a> ({holds})")
    carbon = ""
    if a.carbon is not None:
        carbon = (
            f"<br>Carbon: {a.carbon['total_g']:.4g} g CO2e{e(_estimate(a))} ({e(str(a.carbon['method']))}); "
            "carbon_g in the configurations table is that of the mean energy."
        )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>t2a-ray report — {e(a.source)}</title><style>{_CSS}</style></head><body>",
        f"<h1>t2a-ray report — {e(a.source)}</h1>",
        f"<p class='meta'>{e(_used_line(a))}.{carbon}<br>Files: {', '.join(files)}.</p>",
    ]
    if a.fronts:
        parts += [
            "<h2>Pareto fronts</h2>",
            "<p>Energy is minimised; each quality is maximised or minimised as marked. "
            "<em>ci95</em> dominance drops a configuration only when another beats it in both objectives "
            "beyond the 95 % confidence intervals of their repeats; <em>plain</em> is ordinary dominance. "
            "The hypervolume is measured against the stated reference point (energy, quality).</p>",
            _html_table(_fronts_table(a)),
        ]
        for f in a.fronts:
            parts += [f"<h3>{e(f.label)}</h3>", _html_table(_front_points(a, f))]
    if a.failures is not None:
        parts += ["<h2>Failures</h2>", f"<p>{e(a.failures.text().splitlines()[0])}.</p>"]
        if a.failures.groups:
            parts.append(_html_table(a.failures.table()))
    if a.figures:
        parts.append("<h2>Plots</h2>")
    for fig in a.figures:
        parts.append(
            f"<figure><img src='{e(fig.name)}' alt='{e(fig.caption)}'>"
            f"<figcaption>{e(fig.caption)}</figcaption></figure>"
        )
    for key, (title, _) in FIT_TITLES.items():
        if key in a.fits:
            parts += [f"<h2>{e(title)}</h2>", _html_table(a.fits[key])]
    parts += ["<h2>Configurations</h2>", _html_table(a.configs[a.shown])]
    if a.notes:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li>{e(n)}</li>" for n in a.notes] + ["</ul>"]
    parts.append("<p class='meta'>Written by t2a-ray analyze.</p></body></html>")
    return "\n".join(parts)


def _estimate(a: Analysis) -> str:
    return f" — {a.estimate}, not a measurement" if a.estimate else ""


def _used_line(a: Analysis) -> str:
    u = a.used
    status = (
        ", ".join(f"{v} {k}" for k, v in sorted(u["status"].items())) if u["status"] else "no status column"
    )
    rep = "with repeats (95 % CIs, CI-aware fronts)" if u["repeats"] else "one row each (plain dominance)"
    return (
        f"Rows: {u['used']} of {u['rows']} used ({status}); {count(u['configs'], 'configuration')}, {rep}; "
        f"energy column: {a.energy_col}{_estimate(a)}"
    )


def _fronts_table(a: Analysis) -> pd.DataFrame:
    """The fronts summary with the hypervolume's units in its column name."""
    unit = unit_of(a.energy_col) or a.energy_col
    return a.fronts_table.rename(columns={"hypervolume": f"hypervolume ({unit} × quality)"})


def _front_points(a: Analysis, front: Front) -> pd.DataFrame:
    c = a.configs.loc[list(front.members)]
    e, q = a.energy_col, front.metric
    cols = [x for x in a.label_cols if x not in dict(front.group)] + ["n", e, f"{e}_ci95", q]
    if a.quality_ci.get(q) in c.columns:
        cols.append(a.quality_ci[q])
    out = c[[x for x in cols if x in c.columns]].copy()
    out = out[[x for x in out.columns if not (x.endswith("_ci95") and out[x].isna().all())]]
    out.insert(0, "knee", ["*" if i == front.knee else "" for i in c.index])
    return out.rename(columns={f"{e}_ci95": "±95%", a.quality_ci.get(q, "_"): f"{q} ±95%"})


def _table_text(df: pd.DataFrame) -> str:
    if df.empty:
        return "  (none)"
    return df.to_string(index=False, float_format=fmt, na_rep="–")


def _html_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p><em>none</em></p>"
    return df.to_html(index=False, na_rep="–", float_format=fmt, border=0, classes="t", escape=True)
