"""Keep a benchmark's run folders beside its result, so that its figures can be recomputed from rows.

What is kept of a run folder: `sweep.yaml`, `trials/`, `results.parquet`, `quality.parquet` and `logs/`
— everything `t2a-ray analyze` and `benchmarks/recompute.py` read. Not kept: `tune/` (Ray Tune's own
experiment state, large and of no use once the run is merged), `audio/` and `report/` (rebuilt by
`t2a-ray analyze`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from t2a_ray.runfolder import RunFolder

KEPT = ("sweep.yaml", "trials", "results.parquet", "quality.parquet", "logs")


def runs_dir(results_dir: Path, name: str) -> Path:
    """Where the run folders of the benchmark result `name` are kept: `<results_dir>/runs/<name>/`."""
    return results_dir / "runs" / name


def keep_run(run: RunFolder, dest: Path) -> Path:
    """Copy what is kept of `run` to `dest/<run folder name>/`, replacing an earlier copy; returns it."""
    out = dest / run.root.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in KEPT:
        src = run.root / name
        if src.is_dir():
            shutil.copytree(src, out / name)
        elif src.is_file():
            shutil.copy2(src, out / name)
    return out
