"""Hostile and mistaken inputs through the real CLI: what each one gives (exit code, the line printed,
what was written). Validation only (nothing loads), so it runs in seconds on any machine.

    python benchmarks/hostile_inputs.py [--out benchmarks/results/hostile_inputs.md]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import platform
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from t2a_ray.cli import main
from t2a_ray.config import MAX_PROMPT_FILE_BYTES

SWEEP = "name: h\nmodels: [noop]\nweights: tiny\ngrid:\n  steps: [2, 3]\nprompts: {text: [a dog barks]}\n"
FORMULAS = ["=cmd|' /C calc'!A0", "+x", "-x", "@x", '=HYPERLINK("http://evil.example","x")']


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def launch_cases(tmp: Path) -> list[tuple[str, int, str, str]]:
    def sweep(text: str, *extra) -> tuple[int, str, str]:
        path = tmp / "s.yaml"
        path.write_text(text)
        out = tmp / "runs"
        code, line = cli("launch", "--config", path, "--gpus", "0", "--out", out, *extra)
        written = "nothing" if not (out / "h").exists() else "a run folder"
        return code, line, written

    big = tmp / "big.csv"
    with open(big, "wb") as f:
        f.write(b"id,caption\n")
        f.truncate(MAX_PROMPT_FILE_BYTES + 2**20)
    cases = {
        "tiny stable-audio-open, duration_s: 5": sweep(
            SWEEP.replace("noop", "stable-audio-open").replace("prompts:", "  duration_s: 5\nprompts:")
        ),
        "compile: reduce-overhead with --gpus 0": sweep(
            SWEEP.replace("noop", "audioldm").replace("steps: [2, 3]", "steps: 2\n  compile: reduce-overhead")
        ),
        "a duplicated key (grid.steps twice)": sweep(SWEEP.replace("prompts:", "  steps: 4\nprompts:")),
        "steps: [2, 2]": sweep(SWEEP.replace("[2, 3]", "[2, 2]")),
        "model id AudioLDM": sweep(SWEEP.replace("noop", "AudioLDM")),
        "repo ../../etc": sweep(SWEEP.replace("[noop]", "[{id: audioldm, repo: ../../etc}]")),
        "repo https://example.org/m": sweep(
            SWEEP.replace("[noop]", "[{id: audioldm, repo: 'https://example.org/m'}]")
        ),
        "repo /etc": sweep(SWEEP.replace("[noop]", "[{id: audioldm, repo: /etc}]")),
        "a 9 MiB prompts file": sweep(SWEEP.replace("{text: [a dog barks]}", f"{{file: {big}}}")),
    }
    (tmp / "s.yaml").write_text(SWEEP)
    code, line = cli("launch", "--config", tmp / "s.yaml", "--gpus", "0", "--out", "/")
    rows = [(name, c, line_, written) for name, (c, line_, written) in cases.items()]
    rows.append(("--out /", code, line, "nothing"))
    return rows


def analyze_cases(tmp: Path) -> list[tuple[str, int, str, str]]:
    rng = np.random.default_rng(0)
    models = [f"m{i}" for i in range(7)]
    results = pd.DataFrame(
        [
            dict(model=m, steps=s, prompt=FORMULAS[i % 5], energy_j=(i + 1) * s * (1 + 0.01 * rng.random()))
            for i, m in enumerate(models)
            for s in (10, 20)
            for _ in range(3)
        ]
    )
    results.to_csv(tmp / "results.csv", index=False)
    (tmp / "scores").mkdir()
    for i, m in enumerate(models):
        pd.DataFrame([dict(model=m, steps=s, clap=0.1 * i + s / 1000) for s in (10, 20)]).to_csv(
            tmp / "scores" / f"{m}.csv", index=False
        )
    base = ["analyze", "--results", tmp / "results.csv", "--energy", "energy_j", "--quality", "clap:max"]
    out = []
    code, _ = cli(*base, "--join", tmp / "scores" / "*.csv", "--on", "model,steps", "--out", tmp / "r1")
    configs = pd.read_csv(tmp / "r1" / "configs.csv")
    renamed = [c for c in configs.columns if c.startswith("clap_") and c != "clap_ci95"]
    out.append(
        (
            "--join 'scores/*.csv' (7 files, one schema)",
            code,
            f"{len(configs)} configurations, {len(set(configs['model']))} models; renamed columns: {renamed or 'none'}",
            "report",
        )
    )
    clash = tmp / "clash.csv"
    pd.DataFrame([dict(model=m, steps=s, energy_j=1.0) for m in models for s in (10, 20)]).to_csv(
        clash, index=False
    )
    code, line = cli(*base, "--join", clash, "--on", "model,steps", "--out", tmp / "r2")
    out.append(
        (
            "--join a table whose energy_j differs",
            code,
            line,
            "nothing" if not (tmp / "r2").exists() else "report",
        )
    )
    cells = [c for p in (tmp / "r1").glob("*.csv") for row in csv.reader(open(p)) for c in row]
    live = [
        c
        for c in cells
        if c.startswith(("=", "+", "@", "\t", "\r")) or (c.startswith("-") and not _number(c))
    ]
    out.append(
        (
            "formula cells from a text column, every report CSV",
            0,
            f"{sum(c.startswith(chr(39)) for c in cells)} cells written as text ('…); cells a spreadsheet would run: {len(live)}",
            "report",
        )
    )
    inf = results.copy()
    inf.loc[0, "energy_j"] = np.inf
    inf.to_csv(tmp / "inf.csv", index=False)
    code, line = cli("analyze", "--results", tmp / "inf.csv", "--energy", "energy_j", "--out", tmp / "r3")
    note = "note: " + ("1 row(s) with an infinite energy_j" in line and "named" or "none")
    used = (tmp / "r3" / "index.html").read_text().split("Rows: ")[1].split(" used")[0]
    out.append(("an energy of inf in one of 42 rows", code, f"{note}; rows used: {used}", "report"))
    return out


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def main_(out: Path) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        rows = [
            (name, code, line.replace(d, "TMP"), written)
            for name, code, line, written in launch_cases(tmp / "a") + analyze_cases(tmp / "b")
        ]
    lines = [
        "# Hostile and mistaken inputs",
        "",
        f"- machine: {platform.node()} ({platform.machine()}), CPU only; validation only, nothing loads",
        f"- date: {datetime.date.today()}",
        "- command: `python benchmarks/hostile_inputs.py`",
        "",
        "| input | exit | printed (one line) or found | written |",
        "| --- | --- | --- | --- |",
    ]
    for name, code, line, written in rows:
        lines.append(f"| {name} | {code} | {line.replace('|', '∣')} | {written} |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hostile_inputs.md")
    main_(parser.parse_args().out)
