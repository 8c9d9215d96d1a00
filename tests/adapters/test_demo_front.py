"""The built-in demo (`t2a-ray launch` without --config) must show a trade-off, not a front of everything.

Its tiny models once made silence: every configuration got the same CLAP score and all were on the
front. This runs the demo as a user does (`launch` without --config, through the CLI, in this process)
and reads what it prints and the report it writes. It joins the test process's Ray (`--address`): what
a launch's own local Ray does is tested elsewhere, and is no part of what the demo shows.
"""

from __future__ import annotations

import csv

import pytest

from t2a_ray.analysis.meaning import UNTRAINED_BANNER

pytestmark = pytest.mark.slow


def test_the_demo_scores_configurations_differently_and_its_front_leaves_some_out(tmp_path, shared_ray, cli):
    result = cli("launch", "--out", tmp_path, "--name", "demo", "--address", shared_ray)
    assert result.exit_code == 0, result.output[-4000:]
    report = tmp_path / "demo" / "report"
    with open(report / "configs.csv", newline="") as f:
        configs = list(csv.DictReader(f))
    with open(report / "fronts.csv", newline="") as f:
        on_front = {row["trial_id"] for row in csv.DictReader(f) if row["on_front"] == "True"}
    assert len({row["clap_mean"] for row in configs}) == len(configs) > 1
    assert 0 < len(on_front) < len(configs)
    # `make demo` prints, in order: the banner (tiny weights: the quality is noise), the front, no failures
    printed = " ".join(line.strip("! ") for line in result.stdout.splitlines())
    banner, front, failures = (
        printed.index(UNTRAINED_BANNER),
        printed.index("Front clap_mean:max"),
        printed.index("Failures: none"),
    )
    assert (
        banner < front < failures and "* = knee" not in printed[front:failures]
    )  # no knee on the quality front
