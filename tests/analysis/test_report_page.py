"""What a reader of the report sees: the band beside the front, the banner where the quality means
nothing, one notation for a missing value, tables that scroll, cut cells that say so, legends of what is
drawn, labels that do not overlap, a glossary."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from t2a_ray.analysis import analyze_table
from t2a_ray.analysis.energy_basis import GROSS, NET, energy_basis
from t2a_ray.analysis.fronts import IN_QUALITY, compute_fronts
from t2a_ray.analysis.meaning import UNTRAINED_BANNER, quality_is_trained
from t2a_ray.analysis.plots import fronts_figure, phases_figure
from t2a_ray.analysis.render import GLOSSARY, MAX_CELL_CHARS
from t2a_ray.analysis.stats import t_quantile

BAND_LABEL = "indistinguishable from the front (not on it)"


def _repeats(mean: float, ci95: float, n: int = 3) -> list[float]:
    """n values whose mean is `mean` and whose t-based 95 % CI half-width is `ci95`."""
    spread = np.linspace(-1.0, 1.0, n)
    spread *= ci95 * np.sqrt(n) / t_quantile(n - 1) / spread.std(ddof=1)
    return list(mean + spread)


def noisy_tango(**extra) -> pd.DataFrame:
    """The usertest case: tango at 5, 10 and 20 steps with energy (J) 1.36 ± 0.05, 2.95 ± 0.10 and
    6.17 ± 0.20, CLAP 0.290 ± 0.020 each; and audioldm, beaten by tango at 5 steps in both beyond noise."""
    cases = [
        ("tango", 5, 1.36, 0.05, 0.290, 0.020),
        ("tango", 10, 2.95, 0.10, 0.290, 0.020),
        ("tango", 20, 6.17, 0.20, 0.290, 0.020),
        ("audioldm", 5, 2.0, 0.05, 0.150, 0.010),
        ("audioldm", 10, 3.0, 0.05, 0.160, 0.010),
    ]
    rows = []
    for model, steps, e, ce, q, cq in cases:
        for r, (ei, qi) in enumerate(zip(_repeats(e, ce), _repeats(q, cq), strict=True)):
            rows.append({"model": model, "steps": steps, "repeat": r, "energy_j": ei, "clap": qi} | extra)
    return pd.DataFrame(rows)


def _analyze(df: pd.DataFrame, out):
    return analyze_table(df, "energy_j", ["clap:max"], [], out, config_cols=["model", "steps"])


def _unboxed(text: str) -> str:
    """The printout with the banner's frame and line breaks taken out."""
    return " ".join(line.strip("! ") for line in text.splitlines())


def test_noisy_costlier_configurations_stand_beside_the_front_everywhere_never_on_it(tmp_path):
    a = _analyze(noisy_tango(), tmp_path / "r")
    (front,) = a.fronts
    by_steps = {(a.configs.loc[i, "model"], a.configs.loc[i, "steps"]): i for i in a.configs.index}
    assert front.members == (by_steps[("tango", 5)],)
    assert front.indistinguishable == (
        (by_steps[("tango", 10)], IN_QUALITY),
        (by_steps[("tango", 20)], IN_QUALITY),
    )
    # the printout: the front's table, then the band's, headed as such
    text = a.text()
    front_part, band_part = text.split("Beside the front, not on it")
    front_table = front_part.split("Front clap:max")[1]
    assert re.search(r"tango\s+5\s", front_table) and not re.search(r"tango\s+(10|20)\s", front_table)
    band_table = band_part.split("\n\n")[0]
    assert re.search(r"quality\s+tango\s+10\s", band_table) and re.search(
        r"quality\s+tango\s+20\s", band_table
    )
    # fronts.csv: the band's rows marked off the front, with what cannot be told apart
    csv = pd.read_csv(a.fronts_csv_path)
    on = csv[csv.on_front]
    assert (
        set(zip(on.model, on.steps, strict=True)) == {("tango", 5)} and on.indistinguishable_in.isna().all()
    )
    off = csv[~csv.on_front]
    assert set(zip(off.model, off.steps, strict=True)) == {("tango", 10), ("tango", 20)}
    assert (off.indistinguishable_in == IN_QUALITY).all() and len(off) == 6  # every repeat's row
    # the page: the band under the front, and the plot draws it in a style of its own, named as such
    page = a.report_path.read_text()
    assert page.index("Beside the front, not on it") > page.index("<h3>clap:max</h3>")
    fig = fronts_figure(a.configs, a.fronts, "energy_j", "energy_j_ci95", "clap_ci95", a.label_cols, "J")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert BAND_LABEL in legend and "on the front" in legend


@pytest.mark.parametrize("weights", ["tiny", "pretrained"])
def test_untrained_quality_carries_one_banner_everywhere_and_no_knee(tmp_path, weights):
    a = _analyze(noisy_tango(weights=weights, status="ok"), tmp_path / "r")
    page = a.report_path.read_text()
    text = _unboxed(a.text())
    plots = [Image.open(p) for p in a.plots]
    assert len(plots) >= 2  # energy vs steps, and the front
    if weights == "tiny":
        assert a.banner == UNTRAINED_BANNER
        assert text.count(UNTRAINED_BANNER) == 1 and page.count(html.escape(UNTRAINED_BANNER)) == 1
        assert all(p.info.get("Description") == UNTRAINED_BANNER for p in plots)
        # no knee recommended: none computed, no column, no star, no legend entry
        assert all(f.knee is None for f in a.fronts) and "knee" not in a.fronts_table.columns
        assert "knee" not in text.replace(UNTRAINED_BANNER, "").lower() and "star" not in page
        # the printout's order: the banner, the front, the failures
        assert text.index(UNTRAINED_BANNER) < text.index("Front clap:max") < text.index("Failures: none")
    else:
        assert a.banner == "" and "QUALITY MEANS NOTHING" not in text + page
        assert all("Description" not in p.info for p in plots)
        assert all(f.knee in f.members for f in a.fronts) and "* = knee" in text


def test_whether_quality_means_something_is_read_from_the_tables():
    rows = pd.DataFrame({"energy": [1.0, 2.0], "clap": [0.1, 0.2]})
    assert quality_is_trained(rows)  # an external table that says nothing: meaningful
    assert not quality_is_trained(rows.assign(weights=["tiny", "tiny"]))  # a run's results
    assert quality_is_trained(rows.assign(weights=["pretrained", "pretrained"]))
    assert quality_is_trained(rows.assign(weights=[0.5, 0.7]))  # another table's "weights": not ours
    assert not quality_is_trained(rows.assign(trained_weights=[True, False]))  # one untrained value
    quality = pd.DataFrame({"trial_id": ["a"], "trained_weights": pd.array([False], dtype="boolean")})
    assert not quality_is_trained(rows.assign(weights=["pretrained"] * 2), quality)  # the scores say so


def test_the_energy_column_says_whether_it_is_gross_or_net_of_idle():
    gpu = pd.DataFrame({"energy_method": ["gpu:nvml-counter-interp;cpu:rapl;dram:rapl;phases:gpu"]})
    cpu = pd.DataFrame({"energy_method": ["gpu:none;cpu:estimate:cpu-time;dram:none;phases:none"]})
    assert energy_basis(gpu, "energy_per_waveform_j") == GROSS == energy_basis(gpu, "gpu_energy_j")
    assert energy_basis(gpu, "gpu_energy_net_j") == NET
    assert energy_basis(cpu, "energy_per_waveform_j") == ""  # a CPU-time estimate is neither
    assert energy_basis(pd.DataFrame(), "energy_consumed") == ""  # another tool's column: not known


def test_the_page_scrolls_every_table_prints_missing_values_one_way_and_says_what_it_cut(tmp_path):
    long_prompt = "a dog barks " * 100_000  # 1.2 MB
    df = noisy_tango()
    df["prompt"] = np.where(df.model == "tango", long_prompt, "rain")
    df["scheduler"] = np.where(df.model == "tango", None, "ddim")  # an axis audioldm alone has
    df["text_encoder_energy_j"] = 0.1 * df.energy_j
    df["denoise_energy_j"] = 0.8 * df.energy_j
    df["decode_energy_j"] = 0.1 * df.energy_j
    df["vocoder_energy_j"] = np.where(df.model == "tango", np.nan, 0.05 * df.energy_j)  # no vocoder
    a = analyze_table(
        df, "energy_j", ["clap:max"], [], tmp_path / "r", config_cols=["model", "steps", "prompt"]
    )
    page = a.report_path.read_text()
    assert page.count("<table") == page.count("<div class='scroll'><table") > 3
    text = a.text()
    cells = re.findall(r"<td>(.*?)</td>", page)
    for missing in ("None", "nan", "NaN", "&lt;NA&gt;", "NA"):
        assert missing not in cells, missing
        assert not re.search(rf"(^|\s){re.escape(html.unescape(missing))}(\s|$)", text), missing
    assert "–" in cells  # the one notation
    shares = a.fits["phase_shares"].set_index("model")
    assert pd.isna(shares.loc["tango", "vocoder_share"]) and shares.loc["audioldm", "vocoder_share"] > 0
    assert re.search(r"tango(\s+\S+){4}\s+–", text.split("Phase shares")[1])  # tango's vocoder share
    # the long prompt: cut on the page and in the printout, with a note; whole in configs.csv
    assert long_prompt not in page and long_prompt not in text
    assert f"longer than {MAX_CELL_CHARS} characters are cut short" in page
    assert f"longer than {MAX_CELL_CHARS} characters are cut short" in text
    assert long_prompt in set(pd.read_csv(a.configs_csv_path)["prompt"])
    for term in ("Hypervolume", "hv_norm", "Knee", "Dominance", "Indistinguishable from the front"):
        assert any(k.startswith(term) for k in GLOSSARY) and f"<dt>{term}" in page


def test_legends_name_only_what_is_drawn_and_front_labels_never_overlap():
    # 40 configurations on one plain front, crowded: every point on it, none dominated, no knee asked for
    steps = np.arange(1, 41)
    configs = pd.DataFrame(
        {"model": "m", "steps": steps, "energy": steps * 0.1, "clap": np.log(steps) / 10},
        index=pd.RangeIndex(40),
    )
    fronts = compute_fronts(configs, "energy", [("clap", "max")], knee=False)
    assert len(fronts[0].members) == 40
    fig = fronts_figure(configs, fronts, "energy", None, None, ["model", "steps"], "J")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["m", "on the front", "Pareto front of the means"]
    (ax,) = fig.axes
    boxes = [t.get_window_extent() for t in ax.texts]
    assert 1 < len(boxes) < 40  # labelled where there is room, left out where there is not
    assert not any(b.overlaps(c) for i, b in enumerate(boxes) for c in boxes[i + 1 :])
    centres = ax.transData.transform(configs[["energy", "clap"]].to_numpy())
    assert not any(b.contains(x, y) for b in boxes for x, y in centres)  # nor on a marker
    assert any("left out where they would overlap" in t.get_text() for t in fig.texts)
    # phases: a phase no model has is no bar and no legend entry
    shares = pd.DataFrame(
        {"model": ["x", "y"], "text_encoder_share": [0.1, 0.2], "denoise_share": [0.8, 0.7]}
        | {"decode_share": [0.1, 0.1], "vocoder_share": [None, None]}
    )
    fig = phases_figure(shares, ["model"])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["text encoder", "denoise", "decode"]
