"""A real PostgreSQL server for the tests: Debian's PostgreSQL 15 binaries, a throwaway cluster in
a temporary folder, on a free loopback port, trust authentication (loopback only).

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user and its
commands run through ``runuser``. ``stop()`` and ``start()`` let a test take the server away and
bring it back (the fault tests)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import sqlalchemy as sa

from ._util import free_port


def pg_bin() -> Optional[Path]:
    """The server's own binaries (Debian keeps them off PATH: /usr/bin holds pg_wrapper's shims)."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None




class PostgresServer:
    def __init__(self, root: Path):
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.root = Path(root)
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "lrfer_test")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/lrfer_test"

    @contextmanager
    def database(self) -> Iterator[str]:
        """The URL of a fresh database of its own, dropped afterwards."""
        name = "t_" + uuid.uuid4().hex[:12]
        self._admin(f'CREATE DATABASE "{name}"')
        try:
            yield self.url.rsplit("/", 1)[0] + "/" + name
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        # A new engine each time: a test may have restarted the server since the last statement.
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(sql))
        finally:
            admin.dispose()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=self.root)
        if done.returncode:
            raise subprocess.CalledProcessError(done.returncode, cmd, stderr=done.stderr)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log.txt"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
