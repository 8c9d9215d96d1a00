"""`t2a-ray resume RUN --retry-failed`: the shards of failed units are set aside, so their units run again.

A failed unit has a shard like any finished one (its `failed` rows, with the error), so a plain resume
counts it as done. Setting its shard aside in `trials/retried/` (kept as evidence, never merged) makes
it pending: the resume runs it again and its new shard takes its place, once. Infeasible and ok units
are left as they are. Whether a shard failed is read from its footer, not its rows.
"""

from __future__ import annotations

import pyarrow as pa

from t2a_ray.runfolder import SHARD_SUFFIX, RunFolder
from t2a_ray.schema import read_metadata


def set_aside_failed(run: RunFolder) -> list[str]:
    """Move the shard of every failed unit (and its quality shard) to `run.retried_dir`; their unit ids."""
    moved = []
    for path in run.shard_paths():
        try:
            status = read_metadata(path).get("status")
        except (OSError, ValueError, pa.ArrowException):
            continue  # a shard that cannot be read is the resume's shard check's to move aside
        if status != "failed":
            continue
        unit_id = path.name[: -len(SHARD_SUFFIX)]
        if run.quality_shard(unit_id).exists():  # a unit of a whole trial: its quality goes with it
            run.quarantine(run.quality_shard(unit_id), aside=run.retried_dir)
        run.quarantine(path, aside=run.retried_dir)
        moved.append(unit_id)
    return moved
