"""An `Analysis` as text (what `t2a-ray analyze` prints) and as a static HTML page (report/index.html).

Nothing here computes a figure or touches a file: every number comes from the `Analysis` value. Both read
in one order: the quality banner (where the quality means nothing), the fronts with the configurations
indistinguishable from them beside each, the failures, then the fits and notes. Every table prints a
missing value as "–" and cuts a cell longer than `MAX_CELL_CHARS` with a note that says so.
"""

from __future__ import annotations

import html
import textwrap

import pandas as pd

from t2a_ray.analysis.energy_basis import GROSS, NET
from t2a_ray.analysis.fronts import BAND, RULE, Front
from t2a_ray.analysis.latency import TITLES as LATENCY_TITLES
from t2a_ray.analysis.pipeline import TABLE_CSVS, Analysis
from t2a_ray.analysis.plots import unit_of
from t2a_ray.analysis.report_paths import ReportPaths
from t2a_ray.analysis.runtime_tables import TITLES as RUNTIME_TITLES
from t2a_ray.analysis.search import TITLES as SEARCH_TITLES
from t2a_ray.analysis.values import count, fmt

# Each fit's heading: the HTML shows the title, the printed tables add the detail.
FIT_TITLES = {
    "energy_vs_steps": ("Energy vs steps", " (linear fit per series; slope in J/step)"),
    "energy_vs_batch": ("Energy per waveform vs batch size", ""),
    "energy_per_audio_s_vs_duration": ("Energy per audio second vs duration", " (linear fit)"),
    **LATENCY_TITLES,
    "phase_shares": ("Phase shares", " of the measured phase energy (– : a phase the model does not have)"),
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
MAX_CELL_CHARS = 120  # longer cells (a long prompt) are cut, with a note; the CSVs keep them whole
BESIDE = "Beside the front, not on it — indistinguishable from it within noise"
# The page's glossary: term → meaning.
GLOSSARY = {
    "Dominance (ci95)": RULE + ".",
    "Indistinguishable from the front": BAND + ".",
    "Hypervolume": "the area of the energy–quality plane that the configurations dominate, bounded by "
    "the reference point (hv_ref_energy, hv_ref_quality): larger is better; in energy units × quality "
    "units, comparable only between fronts with one reference.",
    "hv_norm": "the hypervolume over the box from the ideal point (lowest energy and best quality in the "
    "group) to the reference point: 0 to 1, where 1 would be one configuration best in both.",
    "Knee": "the front configuration farthest from the straight line through the front's two ends, both "
    "objectives scaled to the front's range: the best trade-off when neither objective is preferred. "
    "None is recommended where the quality means nothing.",
    "Gross energy": f"{GROSS}: the right figure where the GPU is kept busy with such work, or released or "
    "switched off when it is done — time saved is idle power saved too.",
    "Net of idle": f"{NET}: the right figure where the GPU stays on and idle after the work — its idle "
    "power is spent either way; what the work adds is the power above idle.",
}


def render_text(a: Analysis, paths: ReportPaths) -> str:
    """The banner, fronts, failures, fits and notes as plain-text tables."""
    lines = [f"t2a-ray analysis of {a.source}"]
    if a.banner:
        lines += ["", _boxed(a.banner), ""]
    lines.append(_used_line(a))
    if a.carbon is not None:
        lines.append(f"Carbon: {a.carbon['total_g']:.4g} g CO2e{_estimate(a)} ({a.carbon['method']})")
    lines.append("")
    if a.fronts:
        lines += [
            f"Pareto fronts (energy: {_energy_words(a)}, lower is better)",
            _table_text(_fronts_table(a)),
            "",
        ]
        for f in a.fronts:
            knee = "; * = knee" if f.knee is not None else ""
            lines += [
                f"Front {f.label} ({f.dominance} dominance{knee})",
                _table_text(_front_points(a, f)),
                "",
            ]
            if f.indistinguishable:
                lines += [f"  {BESIDE}:", _table_text(_band_points(a, f)), ""]
    if a.failures is not None:  # after the fronts: what is missing from them, and why
        lines += [a.failures.text(), ""]
    for key, (title, detail) in FIT_TITLES.items():
        if key in a.fits:
            lines += [title + detail, _table_text(a.fits[key]), ""]
    if a.notes:
        lines += ["Notes"] + [f"  - {n}" for n in a.notes] + [""]
    lines.append(f"Report: {paths.report_path}")
    if not a.front_rows.empty:
        lines.append(f"Fronts: {paths.fronts_csv_path}")
    if "energy_vs_steps" in a.fits:
        lines.append(f"Fits: {paths.fits_csv_path}")
    lines += [
        f"{label}: {paths.table_csv_path(key)}" for key, (label, _) in TABLE_CSVS.items() if key in a.fits
    ]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;max-width:100%;margin:.5rem 0}
table.t{border-collapse:collapse;font-size:.85rem}table.t th,table.t td{padding:.2rem .6rem;
border-bottom:1px solid #eee;text-align:right;white-space:nowrap}table.t th{background:#f6f6f6}figure{margin:1rem 0}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85rem;color:#555}.meta{color:#555;font-size:.9rem}
.banner{border:2px solid #8b0000;background:#fdecea;color:#8b0000;font-weight:bold;padding:.6rem 1rem;
margin:1rem 0}.cut{font-size:.8rem;color:#555}dl.glossary dt{font-weight:bold;margin-top:.4rem}
dl.glossary dd{margin-left:1.2rem;font-size:.9rem}
"""


def render_html(a: Analysis, paths: ReportPaths) -> str:
    """The report page: one self-contained file (no script, no remote resource), plots beside it."""
    e = html.escape
    files = [f"<a href='{paths.configs_csv_path.name}'>configs.csv</a> (one row per configuration)"]
    if not a.front_rows.empty:
        files.insert(
            0,
            f"<a href='{paths.fronts_csv_path.name}'>fronts.csv</a> (the input rows on a front, and those "
            "indistinguishable from it, marked by on_front and indistinguishable_in)",
        )
    if "energy_vs_steps" in a.fits:
        files.append(f"<a href='{paths.fits_csv_path.name}'>fits.csv</a> (energy vs steps, J/step)")
    for key, (_, holds) in TABLE_CSVS.items():
        if key in a.fits:
            name = paths.table_csv_path(key).name
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
    ]
    if a.banner:
        parts.append(f"<p class='banner'>{e(a.banner)}</p>")
    parts.append(f"<p class='meta'>{e(_used_line(a))}.{carbon}<br>Files: {', '.join(files)}.</p>")
    if a.fronts:
        parts += [
            "<h2>Pareto fronts</h2>",
            f"<p>Energy ({e(_energy_words(a))}) is minimised; each quality is maximised or minimised as "
            f"marked. Dominance: {e(RULE)}. Configurations the measurements cannot tell apart from a front "
            "are listed beside it, never on it. Terms: see the glossary at the end of the page.</p>",
            _html_table(_fronts_table(a)),
        ]
        for f in a.fronts:
            parts += [f"<h3>{e(f.label)}</h3>", _html_table(_front_points(a, f))]
            if f.indistinguishable:
                parts += [f"<p><em>{e(BESIDE)}:</em></p>", _html_table(_band_points(a, f))]
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
    parts += ["<h2>Glossary</h2><dl class='glossary'>"]
    parts += [f"<dt>{e(term)}</dt><dd>{e(text)}</dd>" for term, text in GLOSSARY.items()]
    parts += ["</dl>", "<p class='meta'>Written by t2a-ray analyze.</p></body></html>"]
    return "\n".join(parts)


def _boxed(text: str, width: int = 100) -> str:
    """`text` wrapped inside a frame of '!' so that it stands out of the printout."""
    inner = textwrap.wrap(text, width - 4)
    bar = "!" * width
    return "\n".join([bar, *(f"! {line.ljust(width - 4)} !" for line in inner), bar])


def _estimate(a: Analysis) -> str:
    return f" — {a.estimate}, not a measurement" if a.estimate else ""


def _energy_words(a: Analysis) -> str:
    """The energy column with what it holds: gross or net of idle, or a CPU estimate."""
    basis = f", {a.energy_basis}" if a.energy_basis else ""
    return f"{a.energy_col}{basis}{_estimate(a)}"


def _used_line(a: Analysis) -> str:
    u = a.used
    status = (
        ", ".join(f"{v} {k}" for k, v in sorted(u["status"].items())) if u["status"] else "no status column"
    )
    rep = "with repeats (95 % CIs, CI-aware fronts)" if u["repeats"] else "one row each (plain dominance)"
    return (
        f"Rows: {u['used']} of {u['rows']} used ({status}); {count(u['configs'], 'configuration')}, {rep}; "
        f"energy column: {_energy_words(a)}"
    )


def _fronts_table(a: Analysis) -> pd.DataFrame:
    """The fronts summary with the hypervolume's units in its column name."""
    unit = unit_of(a.energy_col) or a.energy_col
    return a.fronts_table.rename(columns={"hypervolume": f"hypervolume ({unit} × quality)"})


def _points(a: Analysis, front: Front, labels: list) -> pd.DataFrame:
    """The configurations `labels` of `front`'s group: their parameters, energy and quality with CIs."""
    c = a.configs.loc[labels]
    e, q = a.energy_col, front.metric
    cols = [x for x in a.label_cols if x not in dict(front.group)] + ["n", e, f"{e}_ci95", q]
    if a.quality_ci.get(q) in c.columns:
        cols.append(a.quality_ci[q])
    out = c[[x for x in cols if x in c.columns]].copy()
    out = out[[x for x in out.columns if not (x.endswith("_ci95") and out[x].isna().all())]]
    return out.rename(columns={f"{e}_ci95": "±95%", a.quality_ci.get(q, "_"): f"{q} ±95%"})


def _front_points(a: Analysis, front: Front) -> pd.DataFrame:
    out = _points(a, front, list(front.members))
    if front.knee is not None:
        out.insert(0, "knee", ["*" if i == front.knee else "" for i in front.members])
    return out


def _band_points(a: Analysis, front: Front) -> pd.DataFrame:
    labels = [m for m, _ in front.indistinguishable]
    out = _points(a, front, labels)
    out.insert(0, "indistinguishable in", [why for _, why in front.indistinguishable])
    return out


def _cells(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Every cell as the analysis prints it (`values.fmt`: a missing value is "–", whatever its type), cut
    at `MAX_CELL_CHARS`; and the
    columns where a cell was cut."""
    out = df.astype(object).map(fmt)
    cut = []
    for col in out.columns:
        long = out[col].str.len() > MAX_CELL_CHARS
        if long.any():
            out.loc[long, col] = out.loc[long, col].str.slice(0, MAX_CELL_CHARS - 1) + "…"
            cut.append(str(col))
    return out, cut


def _cut_note(cut: list[str]) -> str:
    return (
        f"cells of {', '.join(cut)} longer than {MAX_CELL_CHARS} characters are cut short here (…); "
        "the CSV files and the input hold them whole"
    )


def _table_text(df: pd.DataFrame) -> str:
    if df.empty:
        return "  (none)"
    cells, cut = _cells(df)
    text = cells.to_string(index=False)
    return text + (f"\n  ({_cut_note(cut)})" if cut else "")


def _html_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p><em>none</em></p>"
    cells, cut = _cells(df)
    table = cells.to_html(index=False, border=0, classes="t", escape=True)
    note = f"<p class='cut'>{html.escape(_cut_note(cut))}.</p>" if cut else ""
    return f"<div class='scroll'>{table}</div>{note}"
