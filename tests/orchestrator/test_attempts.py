"""A launch or resume numbers its attempt after every earlier one the run folder records."""

from __future__ import annotations

from t2a_ray.orchestrator.runner import _next_attempt
from t2a_ray.runfolder import RunFolder


def test_an_attempt_follows_those_in_tunes_folders_and_in_the_logs(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.create("name: x\n")
    assert _next_attempt(run) == 1
    (run.tune_dir / "attempt-1").mkdir(parents=True)
    assert _next_attempt(run) == 2
    # a folder published without Tune's state keeps its logs: a resume must not overwrite them
    run.logs_dir.mkdir(parents=True, exist_ok=True)
    (run.logs_dir / "plan-attempt-3.json").write_text("{}")
    assert _next_attempt(run) == 4
    for d in run.tune_dir.iterdir():
        d.rmdir()
    assert _next_attempt(run) == 4


def test_attempt_logs_are_in_numeric_order_and_the_latest_is_the_highest(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.create("name: x\n")
    run.logs_dir.mkdir(parents=True, exist_ok=True)
    for n in (2, 10, 9):
        run.attempt_log("plan", n).write_text(f'{{"attempt": {n}}}')
    run.attempt_log("gpus", 11).write_text("[]")
    (run.logs_dir / "plan-attempt-x.json").write_text("{}")  # not an attempt's: ignored
    assert [n for n, _ in run.attempt_logs("plan")] == [2, 9, 10]  # a string sort would put 10 before 9
    assert run.latest_log("plan") == {"attempt": 10}
    assert _next_attempt(run) == 12
