"""The run folder: absolute paths, atomic writes, safe names, the frozen sweep."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from t2a_ray.errors import ConfigError
from t2a_ray.runfolder import RunFolder, atomic_write, safe_name


def test_paths_are_absolute_even_from_a_relative_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = RunFolder("runs/x")
    assert run.root.is_absolute() and run.shard("abc").is_absolute()
    assert run.shard("abc").parent == run.trials_dir


def test_create_freezes_the_sweep_and_refuses_to_overwrite(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.create("name: r\n")
    assert run.sweep_yaml.read_text() == "name: r\n"
    with pytest.raises(ConfigError, match="already exists"):
        run.create("name: other\n")
    assert run.sweep_yaml.read_text() == "name: r\n"


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def explode(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, explode)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temp file left behind


@pytest.mark.parametrize(
    "hostile", ["../../etc/passwd", "a/b\\c", "..", "", "x" * 500, "rm -rf *; echo $HOME", "🎵 music"]
)
def test_safe_name_never_escapes_the_folder(tmp_path, hostile):
    name = safe_name(hostile)
    assert name and "/" not in name and "\\" not in name and name not in (".", "..") and len(name) <= 120
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_finished_ids_ignore_quality_and_temp_files(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.trials_dir.mkdir(parents=True)
    for name in ("a.parquet", "a.quality.parquet", ".b.parquet.123.tmp", ".c.parquet"):
        (run.trials_dir / name).write_bytes(b"")
    assert run.finished_trial_ids() == {"a"}


def test_quarantine_moves_aside_without_overwriting(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.trials_dir.mkdir(parents=True)
    for _ in range(2):
        (run.trials_dir / "a.parquet").write_bytes(b"junk")
        run.quarantine(run.trials_dir / "a.parquet")
    assert sorted(p.name for p in run.corrupt_dir.iterdir()) == ["a.parquet", "a.parquet.1"]
    assert run.finished_trial_ids() == set()


def test_config_errors_survive_pickling_across_processes():
    import pickle

    from t2a_ray.errors import ParameterError

    error = pickle.loads(pickle.dumps(ParameterError("grid.steps", 0, "must be ≥ 1", "s.yaml")))
    assert isinstance(error, ParameterError) and str(error) == "s.yaml: grid.steps = 0: must be ≥ 1"


def test_the_driver_lock_says_whether_a_driver_runs_the_sweep_now(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.root.mkdir()
    assert run.running_driver() is None  # never launched: no lock file, and none is made
    assert not (run.root / ".driver.lock").exists()
    run.create("name: r\n")
    assert run.running_driver() is None  # created under the lock, released since
    code = f"from t2a_ray.runfolder import RunFolder\nwith RunFolder({str(run.root)!r}).driver_lock():\n"
    code += "    print('locked', flush=True)\n    import time; time.sleep(60)\n"
    driver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout.readline().strip() == "locked"
        assert run.running_driver() == f"{driver.pid} {os.uname().nodename}"
        with pytest.raises(
            ConfigError, match=f"another t2a-ray driver .*pid {driver.pid} on {os.uname().nodename}"
        ):
            with run.driver_lock():
                pass
    finally:
        driver.kill()  # kill -9: the lock goes with the process
        driver.wait()
    assert run.running_driver() is None
    with run.driver_lock():
        assert run.running_driver() == f"{os.getpid()} {os.uname().nodename}"
    assert run.running_driver() is None


def test_a_refused_driver_names_a_holder_that_had_not_yet_written_its_name(tmp_path):
    """The lock file is created empty and the winner writes "PID HOST" just after taking it: the
    loser, refused in between, waits for the name rather than saying it is unknown."""
    import threading

    from t2a_ray.runfolder import _await_holder

    path = tmp_path / ".driver.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        writer = threading.Timer(0.2, lambda: path.write_text("4242 elsewhere"))
        writer.start()
        assert _await_holder(fd, patience_s=60) == "4242 elsewhere"
        writer.join()
    finally:
        os.close(fd)
