"""Security defaults: a local Ray listens on loopback only with no dashboard and keeps token auth on, the
result store never unpickles, and no code path turns on remote code or prefers pickled weights.

What a local Ray (2.60, `ray_session` without --address) opens, all found here on 127.0.0.1:
GCS server (gRPC, a random port), raylet node manager and object manager (gRPC), one gRPC server per
worker process and one for the driver, and the runtime-env agent (HTTP). No dashboard (8265), no
dashboard agent (52365), no metrics agent, no Ray Client server (10001): Ray runs its dashboard head
and agent in `--minimal` mode, which serve nothing. Ray's Unix sockets (raylet, object store) live in
its session folder under the temp folder. Left to itself, Ray 2.60 would resolve 127.0.0.1 to the
machine's routable address and listen on every interface (`::`); `ray_session` prevents that.
"""

from __future__ import annotations

import ast
import importlib.util
import ipaddress
import os
import pickle
import re
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import merge_results, read_shards, results_schema, rows_to_table, write_table

# --------------------------------------------------------------------------------------------------
# (a) a local Ray: loopback only, no dashboard


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (Ray's GCS, raylet and workers are started by the driver)."""
    kids, found, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += kids.get(p, [])
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def listening_sockets() -> dict[str, tuple[str, int]]:
    """inode → (address, port) of every listening TCP socket and unconnected UDP socket on the host."""
    found = {}
    for table, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != state:
                continue
            hex_ip, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_ip)
            raw = b"".join(
                raw[i : i + 4][::-1] for i in range(0, len(raw), 4)
            )  # /proc writes each 32-bit word in host order
            ip = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
            found[fields[9]] = (ip, int(hex_port, 16))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # the process has ended
        return ""


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1, an IPv4 socket seen through IPv6
    return (mapped or addr).is_loopback


def ray_listeners(besides: frozenset[int] = frozenset()) -> list[tuple[int, str, str, int]]:
    """(pid, process name, address, port) of every socket that this process and its children (but the
    processes `besides`) listen on."""
    listening = listening_sockets()
    out = []
    for pid in set(descendants(os.getpid())) - besides:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        out += [(pid, name, *listening[i]) for i in socket_inodes(pid) if i in listening]
    return out


@pytest.mark.slow
def test_a_local_ray_listens_on_loopback_only_and_has_no_dashboard(monkeypatch):
    import ray
    from ray._private import ray_constants

    from t2a_ray.orchestrator.runner import LaunchOptions, ray_session

    # as a user's shell has it (a test process that ran a Ray has Ray's own setting)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    before = frozenset(descendants(os.getpid()))  # not this launch's (the test process's shared Ray)
    with ray_session(LaunchOptions(gpus=0, progress=False)):
        node = ray._private.worker.global_worker.node
        assert node.node_ip_address == "127.0.0.1"
        assert node.gcs_address.startswith("127.0.0.1:")
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        ray.get(ray.remote(lambda: None).remote())  # a worker process is up too
        # token authentication stays on (only Ray's notice about turning it off is silenced)
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        token_auth = is_token_auth_enabled()
        listeners = ray_listeners(besides=before)
        names = {name for _, name, _, _ in listeners}
        commands = [command_line(pid) for pid in set(descendants(os.getpid())) - before]

    assert {"gcs_server", "raylet"} <= names, listeners
    exposed = [entry for entry in listeners if not is_loopback(entry[2])]
    assert exposed == [], f"listening beyond loopback: {exposed}"
    assert not [entry for entry in listeners if entry[3] in (8265, 52365, 10001)], listeners
    # Ray still runs its dashboard head and agent processes, but minimal: no HTTP server, no web UI
    dashboards = [c for c in commands if "dashboard/dashboard.py" in c or "dashboard/agent.py" in c]
    assert all("--minimal" in c for c in dashboards), dashboards
    assert ray_constants.ENABLE_RAY_CLUSTER  # the switch is back: joining a cluster still works
    assert token_auth


# --------------------------------------------------------------------------------------------------
# (b) the result store is Parquet and never unpickles


class _Boom:
    """Unpickling this runs code: it creates the file `path`."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _run_with_one_good_shard(tmp_path: Path) -> RunFolder:
    run = RunFolder(tmp_path / "run")
    run.create("name: r\n")
    table = rows_to_table(
        [{"run": "r", "trial_id": "good", "repeat": 0, "prompt_id": "p0", "model": "noop", "status": "ok"}],
        results_schema({"steps": int}),
    )
    write_table(table, run.shard("good"))
    return run


@pytest.mark.parametrize("disguise", ["plain", "parquet-magic", "protocol-0"])
def test_a_pickle_renamed_parquet_is_quarantined_and_never_unpickled(tmp_path, disguise):
    run = _run_with_one_good_shard(tmp_path)
    marker = tmp_path / "UNPICKLED"
    payload = pickle.dumps(_Boom(marker), protocol=0 if disguise == "protocol-0" else pickle.HIGHEST_PROTOCOL)
    if disguise == "parquet-magic":
        payload = b"PAR1" + payload + len(payload).to_bytes(4, "little") + b"PAR1"
    bad = run.shard("0123456789abcdef")
    bad.write_bytes(payload)

    table, moved = merge_results(run)

    assert not marker.exists(), "the store unpickled a shard"
    assert table is not None and table.column("trial_id").to_pylist() == ["good"]
    assert [p.parent for p in moved] == [run.corrupt_dir] and moved[0].read_bytes() == payload
    assert "0123456789abcdef" not in run.finished_trial_ids()  # its trial runs again
    assert pq.read_table(run.results).column("trial_id").to_pylist() == ["good"]


def test_a_parquet_shard_carrying_a_pickled_extension_type_is_read_without_unpickling(tmp_path):
    """Arrow's old `PyExtensionType` stored a pickle in field metadata and unpickled it on read
    (CVE-2023-47248, fixed in pyarrow 14.0.1): the type must come back as plain data."""
    run = _run_with_one_good_shard(tmp_path)
    marker = tmp_path / "UNPICKLED"
    field = pa.field(
        "trial_id",
        pa.string(),
        metadata={
            b"ARROW:extension:name": b"arrow.py_extension_type",
            b"ARROW:extension:metadata": pickle.dumps(_Boom(marker)),
        },
    )
    pq.write_table(
        pa.table({"trial_id": ["0123456789abcdef"]}, schema=pa.schema([field])), run.shard("0123456789abcdef")
    )

    table, _ = read_shards(run)

    assert not marker.exists()
    assert table is not None and pa.types.is_string(table.schema.field("trial_id").type)
    assert sorted(table.column("trial_id").to_pylist()) == ["0123456789abcdef", "good"]


# --------------------------------------------------------------------------------------------------
# (c) no remote code, weights without pickles: every source file of the installed package


def package_sources() -> list[Path]:
    files = []
    for name in (
        "t2a_ray",
        "t2a_ray.orchestrator",
        "t2a_ray.adapters",
        "t2a_ray.metering",
        "t2a_ray.analysis",
    ):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, name
        for folder in spec.submodule_search_locations:
            files += sorted(Path(folder).glob("*.py"))  # one level: subpackages are listed by name
    assert len(files) > 20
    return files


# Reviewed exceptions: (file name, why). Anything else that can unpickle fails the test below.
PICKLE_LOADS_REVIEWED = {
    "_maa.py": "Make-An-Audio (1 and 2) publish their weights only as Lightning checkpoints (pickles); they are read "
    "from a local checkout the user names in the sweep file, never downloaded by t2a-ray",
}
_PICKLE_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("dill", "load"),
    ("dill", "loads"),
    ("joblib", "load"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
}


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                found.append(f"{where}: trust_remote_code={ast.unparse(node.value)}")
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "trust_remote_code"
                    and not (isinstance(value, ast.Constant) and value.value is False)
                ):
                    found.append(f"{where}: 'trust_remote_code': {ast.unparse(value)}")
        if isinstance(node, ast.keyword) and node.arg == "use_safetensors":
            if isinstance(node.value, ast.Constant) and node.value.value is False:
                found.append(f"{where}: use_safetensors=False")
        if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                found.append(f"{where}: allow_pickle={ast.unparse(node.value)}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            call = (node.func.value.id, node.func.attr)
            if call in _PICKLE_CALLS:
                found.append(f"{where}: {ast.unparse(node.func)}(…)")
            if call == ("torch", "load"):
                weights_only = [k.value for k in node.keywords if k.arg == "weights_only"]
                if not (
                    weights_only
                    and isinstance(weights_only[0], ast.Constant)
                    and weights_only[0].value is True
                ):
                    if path.name not in PICKLE_LOADS_REVIEWED:
                        found.append(f"{where}: torch.load without weights_only=True")
    return found


def test_no_source_turns_on_remote_code_or_unpickles_weights():
    findings = [f for path in package_sources() for f in _findings(path)]
    assert findings == [], "\n".join(findings)


def test_the_checker_catches_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle, torch\n"
        "a = AutoModel.from_pretrained(r, trust_remote_code=True)\n"
        "b = Pipe.from_pretrained(r, **{'trust_remote_code': flag})\n"
        "c = Pipe.from_pretrained(r, use_safetensors=False)\n"
        "d = torch.load(p)\n"
        "e = pickle.loads(blob)\n"
        "f = np.load(p, allow_pickle=True)\n"
        "ok = AutoModel.from_pretrained(r, trust_remote_code=False, use_safetensors=True)\n"
        "ok2 = torch.load(p, weights_only=True)\n"
    )
    findings = _findings(bad)
    assert sorted(int(re.search(r":(\d+):", f).group(1)) for f in findings) == [2, 3, 4, 5, 6, 7], findings
