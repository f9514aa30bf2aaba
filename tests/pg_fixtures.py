"""A throwaway PostgreSQL server for the job-queue tests (Debian's postgresql package).

`postgres_server` runs initdb and pg_ctl from /usr/lib/postgresql/*/bin in a temporary
folder, on a free port, with the socket in that folder, and stops it at the end. As root
(CI) the server runs as the ``postgres`` user, which initdb requires. Without PostgreSQL
installed the tests that use it fail with the command that installs it: they never skip.
`postgres_url` gives each test a fresh, empty database on that server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_HINT = (
    "PostgreSQL is not installed: run `apt-get install -y postgresql` "
    "(or `make test`, whose bootstrap installs it) to run the job-queue tests."
)


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    """initdb refuses root: as root, run as ``postgres`` (setpriv needs no PAM session)."""
    if os.geteuid() != 0:
        return command
    user = pwd.getpwnam("postgres")
    return [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        *command,
    ]


def _run(command: list[str], log: Path) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL (database ``postgres``) of a private server, started once per session."""
    binaries = _bin_dir()
    if binaries is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("Running as root needs the `postgres` user: " + INSTALL_HINT, pytrace=False)
    folder = Path(tempfile.mkdtemp(prefix="jobs-pg-"))
    data, port = folder / "data", _free_port()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    os.chmod(folder, 0o700)
    initdb = [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    _run(_as_server_user([*initdb, "-E", "UTF8", "--no-sync"]), folder / "initdb.log")
    settings = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    )
    pg_ctl = str(binaries / "pg_ctl")
    log = folder / "server.log"
    start = [pg_ctl, "-D", str(data), "-l", str(log), "-o", settings, "-w", "-t", "60", "start"]
    _run(_as_server_user(start), folder / "start.log")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_server_user(stop), capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new empty database on ``server`` (its URL), dropped afterwards."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture()
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh empty database on the session's server, dropped after the test."""
    with fresh_database(postgres_server) as url:
        yield url


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh job database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    return request.getfixturevalue("postgres_url")
