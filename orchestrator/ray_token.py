"""The token of a local Ray's authentication: one per machine and user, made once, owner-only.

Ray turns token authentication on for a local Ray and makes the token at `ray.init` where none exists,
by truncating and writing `~/.ray/auth_token` in place: two Rays started at the same moment on a fresh
machine (array tasks of one node, a test suite's processes) can each read the other's half-written or
replaced token. A Ray started without `ray.init` (`ray.cluster_utils`) makes none at all, and its GCS
then never starts. Making the file here first, in one atomic step, gives every such Ray the same token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path


def default_token_file() -> Path:
    """Where Ray reads a local Ray's token unless RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH says otherwise."""
    return Path.home() / ".ray" / "auth_token"


def ensure_local_token() -> None:
    """Make Ray's default token file where Ray would use it and it is missing; leave it owner-only."""
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return  # authentication off: Ray reads no token
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return  # the caller's token, not the default file
    path = default_token_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth_token.")  # 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))  # as Ray makes its own: 256 random bits in hex
            with contextlib.suppress(FileExistsError):  # another process made it first: theirs stands
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    _owner_only(path)


def _owner_only(path: Path) -> None:
    """A secret file readable by its owner only (0600), where this process owns it (Ray writes its own
    with the umask's mode)."""
    with contextlib.suppress(OSError):
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
