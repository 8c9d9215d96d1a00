"""What a launch freezes (trials.jsonl, run.json) and what a run folder trusts: no Ray here — shards are
written by the real trial code (noop adapter, the CPU meter), merged by the real merge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from t2a_ray.adapters import adapter_class
from t2a_ray.adapters.cards import CARDS
from t2a_ray.cli import main
from t2a_ray.config import load_sweep, parse_sweep
from t2a_ray.frozen import (
    RunRecord,
    SweepChanged,
    create_run,
    load_run_sweep,
    open_run,
    pending_trials,
    shard_owner,
)
from t2a_ray.metering import open_meter
from t2a_ray.orchestrator.device import TorchDevice
from t2a_ray.orchestrator.trial import TrialEnv, run_trial
from t2a_ray.runfolder import NOTES_FILE, RunFolder, host_name
from t2a_ray.schema import merge_results

DOC = {
    "name": "r",
    "models": ["noop"],
    "weights": "tiny",
    "grid": {"steps": [1, 2, 3], "step_time_s": 0.0},
    "prompts": {"text": ["a"]},
    "repeats": 2,
    "warmup": 0,
    "metering": {"idle_baseline_s": 0},
}


def launched(tmp_path, name="r", doc=DOC):
    sweep = parse_sweep({**doc, "name": name}, base_dir=tmp_path)
    run = RunFolder(tmp_path / "runs" / name)
    create_run(run, sweep)
    return run, sweep


def run_units(run, units=None):
    """Write the shards of `units` (unit ids; default: every repeat of every trial) with the real trial
    code, as a worker does."""
    sweep = load_run_sweep(run)
    adapter = adapter_class("noop").load(device="cpu", dtype="float32", weights="tiny")
    with open_meter(None) as meter:
        env = TrialEnv(run, sweep, lambda t: adapter, meter, TorchDevice("cpu"), {"node": "here"})
        for t in sweep.trials():
            for r in range(sweep.repeats):
                uid = f"{t.trial_id}.r{r}"
                if units is None or uid in units:
                    assert run_trial(t, env, (r,), uid).status == "ok"


def noop_with_duration_default(seconds: float):
    card = CARDS["noop"]
    params = tuple(replace(p, default=seconds) if p.name == "duration_s" else p for p in card.params)
    return replace(card, params=params)


def test_a_launch_freezes_the_trials_once_and_every_reader_gets_them_by_id(tmp_path):
    run, sweep = launched(tmp_path)
    lines = [json.loads(line) for line in run.trial_list.read_text().splitlines()]
    assert [d["trial_id"] for d in lines] == [t.trial_id for t in sweep.trials()]
    assert {"trial_id", "model", "weights", "dtype", "params", "seed"} <= set(lines[0])
    assert lines[0]["params"]["duration_s"] == 1.0  # the card's default, resolved at launch
    frozen = load_run_sweep(run)
    assert frozen.trials() == sweep.trials()
    assert frozen.trial(sweep.trials()[1].trial_id).params == sweep.trials()[1].params
    record = RunRecord.read(run)
    assert record.run_id == run.run_id and record.n_trials == 3
    assert record.host == host_name()


def test_a_card_default_changed_after_launch_keeps_the_launched_trials(tmp_path, monkeypatch):
    run, sweep = launched(tmp_path)
    run_units(run, {f"{sweep.trials()[0].trial_id}.r0"})
    monkeypatch.setitem(CARDS, "noop", noop_with_duration_default(2.5))
    assert {t.trial_id for t in load_sweep(run.sweep_yaml).trials()}.isdisjoint(
        t.trial_id for t in sweep.trials()
    )  # expanding again with today's card would rename every trial
    resumed = open_run(run, say=lambda m: None)
    assert resumed.trials() == sweep.trials()  # the same ids and params as launched
    assert all(t.params["duration_s"] == 1.0 for t in resumed.trials())
    assert [t.trial_id for t in pending_trials(run, resumed)] == [t.trial_id for t in sweep.trials()]
    run_units(run)  # finish it (the first unit again, into the same shard)
    table, _ = merge_results(run, owner=shard_owner(run, resumed))
    assert set(table.column("trial_id").to_pylist()) == {t.trial_id for t in sweep.trials()}
    assert set(table.column("duration_s").to_pylist()) == {1.0}


def test_an_older_folder_without_a_trial_list_resumes_and_gets_one(tmp_path):
    sweep = parse_sweep(DOC, base_dir=tmp_path)
    run = RunFolder(tmp_path / "old")
    run.create(sweep.to_yaml())  # as t2a-ray wrote run folders before trials.jsonl
    said = []
    resumed = open_run(run, say=said.append)
    assert resumed.trials() == sweep.trials()
    assert "no trials.jsonl" in said[0] and run.trial_list.is_file() and run.run_json.is_file()
    assert open_run(run, say=said.append).trials() == sweep.trials() and len(said) == 1


def test_a_sweep_edited_after_launch_stops_the_resume_naming_the_changed_keys(tmp_path):
    run, sweep = launched(tmp_path)
    text = run.sweep_yaml.read_text()
    run.sweep_yaml.write_text(text.replace("min_window_s: 0.0", "min_window_s: 3.0"))
    with pytest.raises(SweepChanged, match=r"sweep.yaml metering.min_window_s.*--accept-changed-sweep"):
        open_run(run)
    result = CliRunner().invoke(main, ["resume", str(run.root), "--gpus", "0"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "metering.min_window_s" in lines[0]
    run.sweep_yaml.write_text(text)
    run.trial_list.write_text(run.trial_list.read_text().replace('"steps": 2', '"steps": 9'))
    with pytest.raises(SweepChanged, match="trials.jsonl"):
        open_run(run)


def test_an_accepted_change_expands_again_and_trials_no_longer_in_the_sweep_are_not_merged(tmp_path):
    run, sweep = launched(tmp_path)
    run_units(run)
    gone = sweep.trials()[2]  # steps 3
    run.sweep_yaml.write_text(run.sweep_yaml.read_text().replace("  - 3\n", ""))
    resumed = open_run(run, accept_changed=True, say=lambda m: None)
    assert [t.trial_id for t in resumed.trials()] == [t.trial_id for t in sweep.trials()[:2]]
    record = RunRecord.read(run)
    assert record.accepted_changes[0]["changed"] == ["sweep.yaml grid.steps"]
    assert open_run(run).trials() == resumed.trials()  # the accepted file is the frozen one now
    table, aside = merge_results(run, owner=shard_owner(run, resumed))
    assert gone.trial_id not in set(table.column("trial_id").to_pylist()) and table.num_rows == 4
    assert sorted(p.name for p in aside) == [f"{gone.trial_id}.r0.parquet", f"{gone.trial_id}.r1.parquet"]
    assert all(p.parent == run.foreign_dir for p in aside)


def test_only_the_runs_own_shards_are_merged_and_the_rest_is_moved_aside_with_a_note(tmp_path):
    run, sweep = launched(tmp_path, "mine")
    other, _ = launched(tmp_path, "other")  # the same sweep: the same unit names, another run id
    run_units(run)
    run_units(other)
    units = [f"{t.trial_id}.r{r}" for t in sweep.trials() for r in range(2)]
    # a symlink to another run's shard, another run's shard copied in, a stray Parquet file
    run.shard(units[0]).unlink()
    run.shard(units[0]).symlink_to(other.shard(units[0]))
    run.shard(units[1]).write_bytes(other.shard(units[1]).read_bytes())
    (run.trials_dir / "stray.parquet").write_bytes(other.shard(units[2]).read_bytes())
    # a shard written before shards carried a run id: taken on its name alone
    legacy = pq.read_table(run.shard(units[2]))
    meta = json.loads(legacy.schema.metadata[b"t2a_ray"])
    del meta["run_id"]
    pq.write_table(
        legacy.replace_schema_metadata({**legacy.schema.metadata, b"t2a_ray": json.dumps(meta)}),
        run.shard(units[2]),
    )
    table, aside = merge_results(run, owner=shard_owner(run, load_run_sweep(run)))
    assert table.num_rows == 4  # units 2-5 (unit 2 the legacy shard), none of the other run's
    assert {p.name for p in aside} == {f"{units[0]}.parquet", f"{units[1]}.parquet", "stray.parquet"}
    notes = [json.loads(line) for line in (run.foreign_dir / NOTES_FILE).read_text().splitlines()]
    why = {n["file"]: n["why"] for n in notes}
    assert "symbolic link" in why[f"{units[0]}.parquet"]
    assert f"written by run {other.run_id}" in why[f"{units[1]}.parquet"]
    assert "not named for a unit" in why["stray.parquet"]
    assert other.shard(units[0]).is_file()  # the link moved, never what it pointed to
    assert {u for u in units[:2]}.isdisjoint(run.finished_trial_ids())  # they run again


def test_temp_files_of_a_killed_writer_go_at_the_next_open_and_a_live_ones_stay(tmp_path):
    run, _ = launched(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    host = host_name()
    killed = run.root / f".results.parquet.{dead_pid}@{host}.tmp"  # a merge killed mid-write
    report = run.report_dir / f".index.html.{dead_pid}@{host}.tmp"
    live = run.root / f".results.parquet.{os.getpid()}@{host}.tmp"
    elsewhere = run.trials_dir / f".x.parquet.{dead_pid}@another-host.tmp"
    run.report_dir.mkdir()
    for p in (killed, report, live, elsewhere):
        p.write_bytes(b"half")
    assert set(run.remove_stale_temp_files()) == {killed, report}
    assert live.exists() and elsewhere.exists()  # a live writer, or one this host cannot see
    assert set(run.remove_stale_temp_files(everyone_gone=True)) == {live, elsewhere}


def test_analyze_says_how_many_trials_are_pending_in_an_unfinished_run(tmp_path):
    run, sweep = launched(tmp_path)
    run_units(run, {f"{t.trial_id}.r{r}" for t in sweep.trials()[:2] for r in range(2)})
    result = CliRunner().invoke(main, ["analyze", str(run.root)])
    assert result.exit_code == 0, result.output
    assert "1 of 3 trials pending" in result.output
