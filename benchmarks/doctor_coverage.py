"""Judge the coverage check (check 2) of a recorded `t2a-ray doctor` run again, with today's statistic.

A doctor record keeps each GPU's square-wave figures (busy energy per period, per offset and repeat),
so a change to the statistic can be tried on what a card measured without the card. Prints, per GPU,
the verdict, its figure and each offset's coverage with its CI.

    python benchmarks/doctor_coverage.py                       # results/doctor_h200.json; no GPU, ~1 s
    python benchmarks/doctor_coverage.py OUT/full/doctor.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from t2a_ray.metering import doctor

RECORD = Path(__file__).parent / "results" / "doctor_h200.json"


def rejudged(record: dict) -> dict[str, doctor.Check]:
    """Each GPU's check 2, judged again from its recorded data (GPUs without one are left out)."""
    found = {}
    for place in record["places"]:
        check = next((c for c in place["checks"] if c["number"] == 2), None)
        if check is not None and "busy_j_per_period" in check["data"]:
            found[place["label"]] = doctor.judge_coverage(check["data"])
    return found


def main(path: Path) -> None:
    for label, check in rejudged(json.loads(path.read_text())).items():
        print(f"{label}: {check.status.upper()} — {check.figure}")
        if check.fix:
            print(f"  what to do: {check.fix}")
        if "coverage" in check.data:
            print(f"  by offset k, {doctor.coverage_by_offset(check.data)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else RECORD)
