"""The runtime table's change in energy, gross and net of idle, of the committed H200 runtime sweeps.

Run from the repository root: `python benchmarks/runtime_gross_net.py`; the result is
`benchmarks/results/runtime_gross_net_h200.md`.
"""

import pandas as pd

from t2a_ray.analysis.runtime_tables import read_setup, runtime_tables

RUNS = ["docs/results/h200/runtime/runtime-audioldm-h200", "docs/results/h200/runtime/runtime-h200"]

for run in RUNS:
    r = pd.read_parquet(run + "/results.parquet")
    t = runtime_tables(r, read_setup(run))["runtime"]
    cols = [
        "model",
        "batch_size",
        "steps",
        "compile",
        "gross_change_pct",
        "gross_change_pct_ci95",
        "net_change_pct",
        "net_change_pct_ci95",
    ]
    t = t[cols]
    print(f"`{run}`\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for _, row in t.iterrows():
        print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row) + " |")
    print()
