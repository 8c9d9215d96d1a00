"""A local Ray's token: made once per machine, atomically, owner-only — on a fresh machine too, where
Rays started at the same moment (array tasks of one node, a test suite's processes) must share one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from t2a_ray.orchestrator.ray_token import ensure_local_token

ENSURE = "from t2a_ray.orchestrator.ray_token import ensure_local_token as e; e()"


def _env(home, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return {**env, "HOME": str(home), **extra}


def test_processes_started_at_once_on_a_fresh_machine_make_one_owner_only_token(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", ENSURE], env=_env(tmp_path)) for _ in range(8)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    folder = tmp_path / ".ray"
    assert [p.name for p in folder.iterdir()] == ["auth_token"]  # no temporary file left behind
    token = (folder / "auth_token").read_text()
    assert len(token) == 64 and int(token, 16) >= 0
    assert stat.S_IMODE((folder / "auth_token").stat().st_mode) == 0o600


def test_an_existing_token_is_kept_and_made_owner_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    (tmp_path / ".ray").mkdir()
    token = tmp_path / ".ray" / "auth_token"
    token.write_text("a" * 64)
    token.chmod(0o644)
    ensure_local_token()
    assert token.read_text() == "a" * 64 and stat.S_IMODE(token.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "env",
    [{"RAY_AUTH_MODE": "disabled"}, {"RAY_AUTH_TOKEN_PATH": "/elsewhere"}, {"RAY_AUTH_TOKEN": "x" * 64}],
)
def test_no_default_token_where_ray_reads_none_or_another(tmp_path, monkeypatch, env):
    monkeypatch.setenv("HOME", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ensure_local_token()
    assert not (tmp_path / ".ray").exists()


def test_a_cluster_of_the_test_utilities_starts_on_a_fresh_machine(tmp_path):
    """`ray.cluster_utils` starts its GCS without `ray.init`, which is where Ray makes a token: with
    token authentication on and no token, the GCS never starts (the suite's shared Ray on a fresh GPU
    host). The token made first is what lets it."""
    code = f"""{ENSURE}
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1}})
print("up", cluster.address)
cluster.shutdown()"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(tmp_path, RAY_AUTH_MODE="token"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "up " in done.stdout, done.stderr[-2000:]
