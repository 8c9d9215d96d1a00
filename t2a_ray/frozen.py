"""What a launch freezes in the run folder, and how every later process reads it back.

At launch, under the driver lock (`RunFolder.create`), three files are written once:

    sweep.yaml    the resolved sweep (prompts inlined); never rewritten
    trials.jsonl  its trials, expanded once: one JSON object a line (trial_id, model, weights, dtype,
                  params as resolved, seed) — the ids every process passes and finds trials by
    run.json      the run's id, and digests of the two files above (and of each key of sweep.yaml)

Every process — the driver, each worker (a trial is sent to it by id), resume, status, the report —
reads the trials from `trials.jsonl` (`load_run_sweep`); none expands the grid or hashes an id again.
So a resume after a model card's default changed finishes the same trials, under the same ids.

A resume (`open_run`) first checks that the two files are what was launched. A file changed since
says which keys, and stops (`SweepChanged`, exit 2) unless the user accepts the change
(`accept_changed=True`, the CLI's `--accept-changed-sweep`): then the trials are expanded again from the
sweep.yaml as it is now (with today's cards), run.json records the change, and shards of trials no
longer in the sweep are moved aside rather than merged.

A folder written before these files existed (no `trials.jsonl`) still resumes: its first resume
expands the frozen sweep.yaml once, with the cards of today, and writes both files.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from t2a_ray.config import Sweep, Trial, load_sweep
from t2a_ray.errors import ConfigError
from t2a_ray.runfolder import RunFolder, atomic_write_text, host_name, trial_done, unit_id
from t2a_ray.schema import ShardOwner

FORMAT = 1  # of run.json and trials.jsonl


class SweepChanged(ConfigError):
    """sweep.yaml or trials.jsonl differ from what was launched (exit 2)."""


def trial_list_text(trials: tuple[Trial, ...] | list[Trial]) -> str:
    """`trials.jsonl`: one trial a line, keys sorted (the same trials give the same bytes)."""
    return "".join(json.dumps(t.to_record(), sort_keys=True, ensure_ascii=True) + "\n" for t in trials)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_digests(sweep_yaml_text: str) -> dict[str, str]:
    """A digest per key path of a sweep file (`metering.min_window_s`, `grid.steps`, `prompts.items`):
    mappings are walked, anything else (a list, a value) is one leaf. What lets a resume say which
    keys of sweep.yaml changed without keeping a copy of it."""
    out: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping) and node:
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        else:
            out[path or "(file)"] = digest(json.dumps(node, sort_keys=True, default=str).encode())

    try:
        walk(yaml.safe_load(sweep_yaml_text), "")
    except yaml.YAMLError:
        out = {"(file)": digest(sweep_yaml_text.encode())}
    return out


@dataclass(frozen=True)
class RunRecord:
    """run.json: who launched the run and what it was, as digests."""

    run_id: str
    sweep_sha256: str
    trials_sha256: str
    n_trials: int
    sweep_keys: Mapping[str, str]
    created_unix_s: float
    host: str
    accepted_changes: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> str:
        doc = {"format": FORMAT, **self.__dict__, "accepted_changes": list(self.accepted_changes)}
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def read(cls, run: RunFolder) -> RunRecord | None:
        try:
            doc = json.loads(run.run_json.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ConfigError("run.json", str(run.run_json), f"cannot be read ({e})") from None
        return cls(
            run_id=doc["run_id"],
            sweep_sha256=doc["sweep_sha256"],
            trials_sha256=doc["trials_sha256"],
            n_trials=doc["n_trials"],
            sweep_keys=doc.get("sweep_keys", {}),
            created_unix_s=doc["created_unix_s"],
            host=doc["host"],
            accepted_changes=tuple(doc.get("accepted_changes", ())),
        )


def _record(sweep_text: str, trials_text: str, n_trials: int, **kw: Any) -> RunRecord:
    return RunRecord(
        sweep_sha256=digest(sweep_text.encode()),
        trials_sha256=digest(trials_text.encode()),
        n_trials=n_trials,
        sweep_keys=key_digests(sweep_text),
        **kw,
    )


def create_run(run: RunFolder, sweep: Sweep) -> RunRecord:
    """Freeze a launch: sweep.yaml, trials.jsonl, run.json (last: a folder without it was not
    launched whole), all under the driver lock the caller holds or that this takes."""
    sweep_text, trials_text = sweep.to_yaml(), trial_list_text(sweep.trials())
    record = _record(
        sweep_text,
        trials_text,
        len(sweep.trials()),
        run_id=uuid.uuid4().hex,
        created_unix_s=round(time.time(), 3),
        host=host_name(),
    )
    run.create(sweep_text, {run.trial_list: trials_text, run.run_json: record.to_json()})
    return record


def load_run_sweep(run: RunFolder) -> Sweep:
    """The run's sweep with its frozen trials: what every process of a run reads. A folder without
    `trials.jsonl` (older t2a-ray, until its first resume writes it) is expanded from its sweep.yaml."""
    sweep = load_sweep(run.sweep_yaml, expand=False)
    try:
        text = run.trial_list.read_text(encoding="utf-8")
    except FileNotFoundError:
        return load_sweep(run.sweep_yaml)
    return sweep.with_trials(_parse_trials(text, sweep, run.trial_list))


def _parse_trials(text: str, sweep: Sweep, path: Path) -> tuple[Trial, ...]:
    models = {m.key: m for m in sweep.models}
    trials = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            trials.append(Trial.from_record(json.loads(line), models))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path.name} line {n}", line[:80], f"is not a trial record ({e})") from None
    if not trials:
        raise ConfigError(path.name, str(path), "holds no trials")
    return tuple(trials)


def open_run(run: RunFolder, accept_changed: bool = False, say=print) -> Sweep:
    """For the driver of a resume, under its lock: check that sweep.yaml and trials.jsonl are what was
    launched, bring an older folder up to date, and return the run's sweep with its frozen trials.

    Raises `SweepChanged` (naming the changed keys) where either file changed since the launch,
    unless `accept_changed`. `say` gets a line for each thing done to the folder."""
    record = RunRecord.read(run)
    sweep_text = run.sweep_yaml.read_text(encoding="utf-8")
    if record is None:
        return _adopt(run, sweep_text, say)
    try:
        trials_text: str | None = run.trial_list.read_text(encoding="utf-8")
    except FileNotFoundError:
        trials_text = None
    changed = changed_keys(record, sweep_text, trials_text)
    if not changed:
        return load_run_sweep(run)
    if not accept_changed:
        raise SweepChanged(
            "RUN_DIR",
            str(run.root),
            f"changed since the launch: {', '.join(changed)}; restore the file(s), or resume with "
            "--accept-changed-sweep to continue under sweep.yaml as it is now (its trials expanded again)",
        )
    sweep = load_sweep(run.sweep_yaml)
    trials_text = trial_list_text(sweep.trials())
    atomic_write_text(run.trial_list, trials_text)
    accepted = {"unix_s": round(time.time(), 3), "host": host_name(), "pid": os.getpid(), "changed": changed}
    record = _record(
        sweep_text,
        trials_text,
        len(sweep.trials()),
        run_id=record.run_id,
        created_unix_s=record.created_unix_s,
        host=record.host,
        accepted_changes=(*record.accepted_changes, accepted),
    )
    atomic_write_text(run.run_json, record.to_json())
    say(f"{run.root.name}: continuing under the changed sweep ({', '.join(changed)}); recorded in run.json")
    return sweep


def _adopt(run: RunFolder, sweep_text: str, say) -> Sweep:
    """A folder without run.json: of an older t2a-ray (its sweep expanded once now, with today's cards,
    into trials.jsonl), or of a launch killed after its trial list (kept). run.json is written."""
    if run.trial_list.is_file():
        sweep = load_run_sweep(run)
    else:
        sweep = load_sweep(run.sweep_yaml)
        atomic_write_text(run.trial_list, trial_list_text(sweep.trials()))
        say(
            f"{run.root.name}: no trials.jsonl (a run folder of an older t2a-ray): its "
            f"{len(sweep.trials())} trials expanded once from sweep.yaml and written to trials.jsonl"
        )
    record = _record(
        sweep_text,
        run.trial_list.read_text(encoding="utf-8"),
        len(sweep.trials()),
        run_id=uuid.uuid4().hex,
        created_unix_s=round(time.time(), 3),
        host=host_name(),
    )
    atomic_write_text(run.run_json, record.to_json())
    return sweep


def changed_keys(record: RunRecord, sweep_text: str, trials_text: str | None) -> list[str]:
    """What differs from the launch: sweep.yaml's changed key paths, and trials.jsonl if it changed."""
    changed = []
    if digest(sweep_text.encode()) != record.sweep_sha256:
        now = key_digests(sweep_text)
        keys = sorted(
            k for k in now.keys() | record.sweep_keys.keys() if now.get(k) != record.sweep_keys.get(k)
        )
        changed += [f"sweep.yaml {k}" for k in keys] or ["sweep.yaml (formatting only)"]
    if trials_text is None:
        changed.append("trials.jsonl (missing)")
    elif digest(trials_text.encode()) != record.trials_sha256:
        changed.append("trials.jsonl")
    return changed


def shard_owner(run: RunFolder, sweep: Sweep) -> ShardOwner:
    """What a shard must be to be merged into this run: named for a unit of its trials, written by
    this run (its footer's run id; a shard without one, written before run ids existed, is accepted
    on its name alone)."""
    names = set()
    for t in sweep.trials():
        names.add(unit_id(t.trial_id, None))
        names.update(unit_id(t.trial_id, r) for r in range(sweep.repeats))
    return ShardOwner(run.run_id, frozenset(names))


def pending_trials(run: RunFolder, sweep: Sweep) -> list[Trial]:
    """The trials whose finished shards do not yet cover every repeat."""
    done = run.finished_trial_ids()
    return [t for t in sweep.trials() if not trial_done(t.trial_id, done, sweep.repeats)]
