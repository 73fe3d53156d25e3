"""Databases for the service's tests: a SQLite file per test, and one real PostgreSQL server per
session (a fresh database per test that asks for it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from lrfer.infer.recognizer import Recognizer

from ._postgres import PostgresServer, pg_bin


@pytest.fixture(scope="session")
def postgres():
    if pg_bin() is None:
        pytest.skip("PostgreSQL binaries not found (CI installs them: apt-get install postgresql)")
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="lrfer-pg-")))
    yield server
    server.close()


@pytest.fixture
def pg_url(postgres):
    """A URL to an empty database of its own on the session's PostgreSQL server."""
    with postgres.database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'lrfer.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test that takes it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lrfer.sqlite3'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def recognizer():
    """One Recognizer (the shipped model, YuNet, CPU) for the camera tests: loading it takes seconds."""
    return Recognizer(device="cpu")
