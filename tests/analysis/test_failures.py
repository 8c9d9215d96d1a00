"""The failures listing: every failed and infeasible configuration with its one-line error, grouped
where configurations of one model share one; after the fronts in the printout, a section of the page."""

from __future__ import annotations

import pandas as pd

from t2a_ray.analysis import analyze_table
from t2a_ray.analysis.failures import ERROR_CHARS, find_failures


def windows(model: str, steps: list[int], status: str = "ok", error: str | None = None, repeats: int = 2):
    """Rows of a results table: one per (configuration, repeat), energy and CLAP where ok."""
    return [
        {
            "trial_id": f"{model}-{s}",
            "model": model,
            "model_revision": "tiny" if status == "ok" else None,
            "steps": s,
            "repeat": r,
            "status": status,
            "error": error,
            "energy_per_waveform_j": float(s) + 0.1 * r if status == "ok" else None,
            "clap": 0.1 * s + 0.01 * r if status == "ok" else None,
        }
        for s in steps
        for r in range(repeats)
    ]


SAO = "ValueError: tiny stable-audio-open generates windows of 2.97 s at most"


def test_configurations_of_one_model_that_share_an_error_are_one_line_with_their_count():
    rows = pd.DataFrame(
        windows("audioldm", [5, 10])
        + windows(
            "stable-audio-open",
            [5, 10, 20, 40, 80, 160],
            "failed",
            SAO + "\nTraceback (most recent call last):",
        )
    )
    failures = find_failures(rows)
    assert failures.text().splitlines() == [
        "Failures: 6 of 8 configurations (6 failed, 0 infeasible)",
        f"  failed      6 trials of stable-audio-open: {SAO}",
    ]


def test_a_lone_failure_names_its_settings_and_infeasible_ones_follow_the_failed():
    rows = pd.DataFrame(
        windows("noop", [1, 3])
        + windows("noop", [2], "infeasible", "InfeasibleError: out of memory")
        + windows("noop", [10, 20], "failed", "InjectedFault: boom")
    )
    lines = find_failures(rows).text().splitlines()
    assert lines == [
        "Failures: 3 of 5 configurations (2 failed, 1 infeasible)",
        "  failed      2 trials of noop (steps=10; steps=20): InjectedFault: boom",
        "  infeasible  noop (steps=2): InfeasibleError: out of memory",
    ]


def test_a_trial_with_an_infeasible_window_is_infeasible_and_a_missing_error_is_said():
    mixed = windows("noop", [4]) + windows("noop", [4], "infeasible", "InfeasibleError: oom", repeats=1)
    mixed[-1]["repeat"] = 2
    rows = pd.DataFrame(windows("noop", [1]) + mixed + windows("noop", [5], "failed", None))
    failures = find_failures(rows)
    assert (failures.count("failed"), failures.count("infeasible")) == (1, 1)
    assert "noop (steps=5): (no error recorded)" in failures.text()


def test_a_long_error_is_cut_to_one_line():
    rows = pd.DataFrame(windows("noop", [1, 2]) + windows("noop", [3], "failed", "E: " + "x" * 1000))
    line = find_failures(rows).text().splitlines()[1]
    assert line.endswith("…") and len(line) < ERROR_CHARS + 40


def test_no_failures_say_none_and_a_table_without_outcomes_says_nothing():
    assert find_failures(pd.DataFrame(windows("noop", [1, 2]))).text() == "Failures: none"
    assert find_failures(pd.DataFrame({"model": ["a"], "energy_j": [1.0]})) is None


def test_the_printout_lists_the_failures_after_the_fronts_and_the_page_has_a_failures_section(tmp_path):
    rows = pd.DataFrame(
        windows("audioldm", [5, 10, 20])
        + windows("tango", [5, 10], "failed", "RuntimeError: <b>bad</b> kernel")
    )
    analysis = analyze_table(rows, "energy_per_waveform_j", ["clap:max"], out_dir=tmp_path / "report")
    text = analysis.text()
    assert text.index("Pareto fronts") < text.index("Failures: 2 of 5 configurations") < text.index("Report:")
    assert "2 trials of tango (steps=5; steps=10): RuntimeError: <b>bad</b> kernel" in text
    page = analysis.report_path.read_text()
    assert page.index("Pareto fronts") < page.index("<h2>Failures</h2>")
    assert "RuntimeError: &lt;b&gt;bad&lt;/b&gt; kernel" in page and "<b>bad</b>" not in page


def test_a_run_without_failures_prints_failures_none(tmp_path):
    analysis = analyze_table(
        pd.DataFrame(windows("audioldm", [5, 10])),
        "energy_per_waveform_j",
        ["clap:max"],
        out_dir=tmp_path / "r",
    )
    assert "\nFailures: none\n" in analysis.text()
    assert "Failures: none." in analysis.report_path.read_text()
