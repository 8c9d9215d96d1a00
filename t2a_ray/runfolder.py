"""The run folder: one object owns every path of its layout (the README's "The run folder"), all absolute.

    OUT/NAME/
      sweep.yaml        the resolved sweep, frozen at launch (never rewritten); resume reads only this folder
      trials.jsonl      the trials, expanded once at launch: what every process runs and reads by id
      run.json          the run's id and the digests of sweep.yaml and trials.jsonl, written at launch
      .driver.lock      held by the one driver of the run (launch or resume)
      trials/           one Parquet shard per finished unit (<unit_id>.parquet), written atomically
      trials/corrupt/   shards that failed to read, moved aside (their units run again)
      trials/foreign/   files that are not this run's shards (a link, another run's shard), moved aside
      results.parquet   all shards merged
      quality.parquet   per-configuration quality
      report/           index.html, PNG plots, fronts.csv
      tune/             Ray Tune's experiment folders
      audio/            generated audio, when `save_audio` is on
      logs/             the driver's log and summary
      logs/setup/       per trial of a runtime other than eager: its compile/capture cost (setup table)
      slurm/            `t2a-ray slurm`: the batch script, the jobs submitted, their output

Paths are absolute because Ray Tune may change a trial's working directory. Every file is written
atomically: a temp file in the same folder, fsync, rename — a reader sees the old file or the new one,
never half of one, whatever kills the writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from t2a_ray.errors import ConfigError

SHARD_SUFFIX = ".parquet"
QUALITY_SUFFIX = ".quality.parquet"
_SAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")
# The temp file of `atomic_write`: `.<name>.<pid>@<host>.tmp` (older versions: `.<name>.<pid>.tmp`).
_TEMP_RE = re.compile(r"^\..+\.(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9._-]+))?\.tmp$")
NOTES_FILE = "notes.jsonl"  # beside what was moved aside: one line per file, with why


def unit_id(trial_id: str, repeat: int | None) -> str:
    """A unit's id, which is also its shard's name: the trial id (every repeat), or one repeat of it."""
    return trial_id if repeat is None else f"{trial_id}.r{repeat}"


def parse_unit_id(uid: str, repeats: int) -> tuple[str, tuple[int, ...]]:
    """(trial id, its repeats) of a unit id: `<trial_id>` is every repeat, `<trial_id>.r<k>` repeat k."""
    trial, sep, k = uid.rpartition(".r")
    if sep and k.isdigit():
        return trial, (int(k),)
    return uid, tuple(range(repeats))


def trial_done(trial_id: str, done_units: set[str], repeats: int) -> bool:
    """Whether the finished units `done_units` cover every repeat of the trial."""
    return trial_id in done_units or all(unit_id(trial_id, r) in done_units for r in range(repeats))


def host_name() -> str:
    return safe_name(socket.gethostname())


class RunFolder:
    def __init__(self, root: str | Path):
        self.root = Path(root).absolute()
        self._run_id: str | None = None

    # ---- the layout
    @property
    def sweep_yaml(self) -> Path:
        return self.root / "sweep.yaml"

    @property
    def trial_list(self) -> Path:
        return self.root / "trials.jsonl"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    @property
    def corrupt_dir(self) -> Path:
        return self.trials_dir / "corrupt"

    @property
    def retried_dir(self) -> Path:
        """Shards of failed units set aside by `resume --retry-failed` (kept as evidence, never merged)."""
        return self.trials_dir / "retried"

    def started_marker(self, worker_index: int) -> Path:
        """The unit worker `worker_index` began last (`orchestrator/crashes.py`)."""
        return self.root / ".started" / f"worker-{worker_index}"

    @property
    def foreign_dir(self) -> Path:
        return self.trials_dir / "foreign"

    @property
    def run_id(self) -> str | None:
        """The run's id (run.json, written at launch), None for a folder without one (older t2a-ray).
        Read once per RunFolder: it never changes."""
        if self._run_id is None and self.run_json.is_file():
            try:
                self._run_id = json.loads(self.run_json.read_text()).get("run_id")
            except (OSError, ValueError):
                return None
        return self._run_id

    @property
    def results(self) -> Path:
        return self.root / "results.parquet"

    @property
    def quality(self) -> Path:
        return self.root / "quality.parquet"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def tune_dir(self) -> Path:
        return self.root / "tune"

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def slurm_dir(self) -> Path:
        """The batch script `t2a-ray slurm` wrote, its jobs and their output."""
        return self.root / "slurm"

    @property
    def setup_dir(self) -> Path:
        return self.logs_dir / "setup"

    def setup_shard(self, unit_id: str) -> Path:
        """The setup table's rows of one unit of a trial (compile and capture of a runtime, outside
        windows): under `spread` each repeat is a unit, and each keeps its own rows."""
        return self.setup_dir / f"{safe_name(unit_id)}.parquet"

    def shard(self, trial_id: str) -> Path:
        return self.trials_dir / f"{safe_name(trial_id)}{SHARD_SUFFIX}"

    def quality_shard(self, trial_id: str) -> Path:
        return self.trials_dir / f"{safe_name(trial_id)}{QUALITY_SUFFIX}"

    def attempt_log(self, kind: str, attempt: int) -> Path:
        """`logs/<kind>-attempt-N.json`: what attempt N of a launch or resume recorded of `kind` (gpus,
        workers, plan, timeline)."""
        return self.logs_dir / f"{kind}-attempt-{attempt}.json"

    def attempt_logs(self, kind: str = "*") -> list[tuple[int, Path]]:
        """(attempt, path) of every `attempt_log` of `kind` (`*`: any), in attempt order (numeric: 10
        after 9)."""
        found = []
        for p in self.logs_dir.glob(f"{kind}-attempt-*.json"):
            n = p.name.removesuffix(".json").rpartition("-attempt-")[2]
            if n.isdigit():
                found.append((int(n), p))
        return sorted(found)

    def latest_log(self, kind: str) -> Any:
        """The newest attempt's `attempt_log` of `kind`, parsed; None where there is none or it cannot be
        read."""
        attempts = self.attempt_logs(kind)
        if not attempts:
            return None
        try:
            return json.loads(attempts[-1][1].read_text())
        except (OSError, ValueError):
            return None

    def audio_file(self, trial_id: str, repeat: int, prompt_id: str, index: int) -> Path:
        name = f"{safe_name(trial_id)}_r{repeat}_{safe_name(prompt_id)}_{index}.wav"
        return self.audio_dir / safe_name(trial_id) / name

    # ---- state
    def exists(self) -> bool:
        return self.sweep_yaml.is_file()

    def create(self, sweep_yaml_text: str, frozen: Mapping[Path, str] | None = None) -> None:
        """Make the folder and freeze the sweep (and `frozen`: more files, path → text, written in
        order after it). Refuses a folder that already holds a run: checked and written under the
        driver lock, so of two launches of one name exactly one creates the run (the other is refused)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self.driver_lock():
            if self.exists():
                raise ConfigError(
                    "--name",
                    self.root.name,
                    f"a run already exists at {self.root}; resume it with `t2a-ray resume {self.root}` or choose another --name",
                )
            for d in (self.trials_dir, self.logs_dir):
                d.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.sweep_yaml, sweep_yaml_text)
            for path, text in (frozen or {}).items():
                atomic_write_text(path, text)

    def finished_trial_ids(self) -> set[str]:
        """Trials whose shard exists: the truth about what is done (Tune's own state may lag)."""
        if not self.trials_dir.is_dir():
            return set()
        return {
            p.name[: -len(SHARD_SUFFIX)]
            for p in self.trials_dir.iterdir()
            if p.name.endswith(SHARD_SUFFIX)
            and not p.name.endswith(QUALITY_SUFFIX)
            and not p.name.startswith(".")
        }

    def shard_paths(self) -> list[Path]:
        return sorted(self.trials_dir / f"{tid}{SHARD_SUFFIX}" for tid in self.finished_trial_ids())

    def quarantine(self, path: Path, why: str | None = None, aside: Path | None = None) -> Path:
        """Move a bad shard aside (never delete evidence) into `aside` (default: `corrupt_dir`), with a
        line saying `why` in that folder's notes; its unit then counts as not finished."""
        aside = aside or self.corrupt_dir
        aside.mkdir(parents=True, exist_ok=True)
        target = aside / path.name
        n = 1
        while target.exists() or target.is_symlink():
            target = aside / f"{path.name}.{n}"
            n += 1
        os.replace(path, target)  # a symlink moves as the link, never what it points to
        if why:
            note = {"file": path.name, "moved_to": target.name, "why": why, "unix_s": round(time.time(), 3)}
            with open(aside / NOTES_FILE, "a", encoding="utf-8") as f:  # one short line: appended whole
                f.write(json.dumps(note) + "\n")
        return target

    def remove_stale_temp_files(self, everyone_gone: bool = False) -> list[Path]:
        """Remove the temp files of writers killed mid-write (`atomic_write`'s `.NAME.PID@HOST.tmp`):
        those of this host whose process is gone, and, where `everyone_gone` (the driver holds the run
        and no worker of an earlier one is left), every one. A temp file is never a result: the file it
        was to become is whole or absent. Returns what was removed."""
        removed = []
        here = host_name()
        for folder in (self.root, self.trials_dir, self.logs_dir, self.setup_dir, self.report_dir):
            try:
                names = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
            except OSError:
                continue
            for path in names:
                m = _TEMP_RE.match(path.name)
                if m is None:
                    continue
                mine = m["host"] == here if m["host"] else None  # an older name says no host
                if everyone_gone or (mine and not _alive(int(m["pid"]))):
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed.append(path)
        return removed

    # ---- who is working on this run
    # Two advisory locks (flock): the driver holds `.driver.lock` exclusively, so two drivers never run
    # one sweep; each worker holds `.workers.lock` shared for its lifetime, so a resume can wait until
    # the workers of a killed driver are gone — otherwise one of them could still finish a trial that
    # the resume has already started again.
    # The driver writes "PID HOST" into its lock file, so that `status` and a refused driver can say
    # who holds it. The lock is the kernel's: it goes with the process that holds it, however that
    # process ends (kill -9 included), so a killed driver's lock file is simply taken over — what it
    # still says is only a name. The lock is taken before the folder holds a run (`create`), so of two
    # launches of one name exactly one runs.
    # Drivers that split one sweep's units (the tasks of a job array, each running its own share) hold
    # `.driver.lock` shared, and their `scope`'s pair (`.driver.share-0-of-2.lock`) as a driver holds the
    # plain pair: they never wait for each other, and a plain resume never runs beside them.
    def lock_file(self, kind: str, scope: str = "") -> Path:
        """`.driver.lock` or `.workers.lock` (`kind`), or its `scope`'s own."""
        return self.root / (f".{kind}.{scope}.lock" if scope else f".{kind}.lock")

    @contextlib.contextmanager
    def driver_lock(self, scope: str = "") -> Iterator[None]:
        """Held for a launch or resume; the same process may enter it again (a launch creates the
        folder, then runs the sweep, under one lock). Another process: ConfigError naming the holder."""
        key = (str(self.root), scope)
        if key in _HELD_DRIVER_LOCKS:
            yield
            return
        scopes = list(dict.fromkeys(["", scope]))  # the plain lock first, then the scope's
        fds = [os.open(self.lock_file("driver", s), os.O_RDWR | os.O_CREAT, 0o644) for s in scopes]
        try:
            for fd, s in zip(fds, scopes, strict=True):
                shared = s != scope  # the plain lock, held by a scoped driver
                try:
                    fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ConfigError(
                        "RUN_DIR",
                        str(self.root),
                        "another t2a-ray driver is running this sweep"
                        + (f" or its share {scope}" if scope else "")
                        + f" ({_describe_holder(_await_holder(fd))}); wait for it or stop it first",
                    ) from None
            # one fixed-width write, never a truncation first: a reader never finds the file emptied
            os.pwrite(fds[-1], f"{os.getpid()} {os.uname().nodename}".ljust(_HOLDER_BYTES).encode(), 0)
            _HELD_DRIVER_LOCKS.add(key)
            try:
                yield
            finally:
                _HELD_DRIVER_LOCKS.discard(key)
        finally:
            for fd in fds:
                os.close(fd)  # closing releases the lock

    def running_driver(self, scope: str = "") -> str | None:
        """Who runs this sweep now: the driver's "PID HOST" ("" if it did not say), or None when no
        driver does (its lock is free: a killed driver holds nothing). Writes nothing."""
        try:
            fd = os.open(self.lock_file("driver", scope), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None
            except BlockingIOError:
                return _read_holder(fd)
        finally:
            os.close(fd)

    def running_scoped_drivers(self) -> dict[str, str]:
        """scope → "PID HOST" of every scoped driver running now (the tasks of a job array)."""
        running = {}
        for path in sorted(self.root.glob(".driver.*.lock")):
            scope = path.name[len(".driver.") : -len(".lock")]
            holder = self.running_driver(scope)
            if holder is not None:
                running[scope] = holder
        return running

    def hold_worker_lock(self, scope: str = "") -> list[int]:
        """Taken by a worker for its lifetime (released when its process ends): the plain lock, and its
        driver's scope's. Returns the fds."""
        fds = []
        for s in dict.fromkeys(["", scope]):
            fds.append(os.open(self.lock_file("workers", s), os.O_RDWR | os.O_CREAT, 0o644))
            fcntl.flock(fds[-1], fcntl.LOCK_SH)
        return fds

    def wait_for_old_workers(self, timeout_s: float, scope: str = "") -> bool:
        """Wait until no worker of an earlier driver holds the run; False if some still do."""
        fd = os.open(self.lock_file("workers", scope), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.1)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def merge_lock(self) -> Iterator[None]:
        """Held while the shards are merged: merges by drivers that share the folder run one after
        the other, so the last one holds every shard (each wrote its shards before merging)."""
        fd = os.open(self.lock_file("merge"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def write_problem(self, probe_bytes: int = 64 * 1024) -> str | None:
        """Why a shard cannot be written here now (disk full, read-only, not shared), or None."""
        probe = self.trials_dir / f".probe-{os.uname().nodename}-{os.getpid()}"
        try:
            self.trials_dir.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as f:
                f.write(b"\0" * probe_bytes)
                f.flush()
                os.fsync(f.fileno())
            return None
        except OSError as e:
            return e.strerror or str(e)
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()

    def check_writable(self) -> None:
        """Fail fast, with the fix, when this process cannot write the run folder."""
        problem = self.write_problem(
            probe_bytes=1
        )  # can this node write here at all (space is judged per shard)
        if problem is not None:
            raise ConfigError(
                "--out",
                str(self.root),
                f"cannot be written from {os.uname().nodename} ({problem}); on a cluster, --out must be a folder every node shares and can write",
            )


_HELD_DRIVER_LOCKS: set[tuple[str, str]] = set()  # (run folder, scope): the driver locks this process holds


_HOLDER_BYTES = 200  # "PID HOST", space-padded: a host name has at most 64 characters


def _read_holder(fd: int) -> str:
    return os.pread(fd, _HOLDER_BYTES, 0).decode(errors="replace").strip()


def _await_holder(fd: int, patience_s: float = 2.0) -> str:
    """The holder's "PID HOST", waiting for it to write them: a lock file is created empty, and the
    driver that took the lock writes its name just after, so a launch refused in between would find
    nothing to name."""
    deadline = time.monotonic() + patience_s
    while not (holder := _read_holder(fd)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return holder


def _describe_holder(holder: str) -> str:
    """ "pid 123 on node1" from a lock file's "PID HOST"; says so where that process is gone from this
    host (a child that inherited the lock may still hold it)."""
    pid, _, host = holder.partition(" ")
    if not pid.isdigit():
        return "its pid unknown"
    gone = host == os.uname().nodename and not _alive(int(pid))
    return f"pid {pid} on {host or 'an unknown host'}" + (
        ", no longer running: a process it started still holds the lock" if gone else ""
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def safe_name(text: str) -> str:
    """A string made safe as one path component: never a separator, never '..', never empty."""
    cleaned = _SAFE_RE.sub("_", text).strip(".") or "_"
    return cleaned[:120]


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` through a temp file in the same folder: fsync, rename, fsync the folder.

    The folder is created if missing. On any error the temp file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # named for its writer, so that the temp file of a killed one is recognised (`remove_stale_temp_files`)
    tmp = path.with_name(f".{path.name}.{os.getpid()}@{host_name()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
