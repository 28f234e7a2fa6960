"""A throwaway PostgreSQL server for the test session (issue 7): real binaries, a temporary cluster.

:func:`start` finds Debian's binaries (``initdb``, ``pg_ctl``) on ``PATH`` or
under ``/usr/lib/postgresql/*/bin``, runs ``initdb`` into a new temporary
directory and starts the server listening on 127.0.0.1 only, on a free port,
with its unix socket in that same directory. PostgreSQL refuses to run as
root, so when the tests run as root both commands run as the unprivileged
``nobody`` (through ``runuser``, else ``setpriv``), owning the directory.
Connections over TCP need the superuser's password, so the tests go through
the same authentication a deployment does.

Durability is switched off (``fsync``, ``synchronous_commit``,
``full_page_writes``): the cluster is deleted at the end and speed matters
more. Each pytest-xdist worker starts its own server; each test gets a schema
of its own in one database (``conftest.py``): creating a database takes a
quarter of a second, a schema a few milliseconds.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "monitor"
UNPRIVILEGED = "nobody"  # who runs the server when the tests run as root
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
PORT_ATTEMPTS = 5  # another process may take the free port before the server binds it


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be run here; the message says why (for ``pytest.skip``)."""


@dataclass
class PostgresServer:
    """A running server; :meth:`stop` ends it and deletes its files."""

    base: Path  # the temporary directory: data/, the socket, the log
    bindir: Path
    port: int
    password: str
    runas: tuple[str, ...]  # the command prefix that drops root, or ()

    def url(self, database: str, *, password: str | None = None, schema: str | None = None) -> str:
        """A ``postgresql://`` URL for ``database`` over TCP, with the superuser's password.

        With ``schema``, the connection's ``search_path`` is that schema alone.
        """
        secret = self.password if password is None else password
        url = f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"
        return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"

    def execute(self, statement: str, database: str = "postgres") -> None:
        """Run one statement outside any transaction in ``database``."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement.encode())

    def create_database(self, name: str) -> None:
        """A new empty database ``name`` (a plain identifier), sorting text as en-US does.

        Deployments mostly run a language's collation rather than "C", so the
        tests do too (with ICU, when the server has it): an ``ORDER BY`` that
        forgets the store's byte order then fails here rather than in production.
        """
        import psycopg

        try:
            self.execute(
                f'CREATE DATABASE "{name}" TEMPLATE template0'
                " LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
            )
        except psycopg.Error:  # built without ICU: the cluster's collation, then
            self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending any connection a test left open."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and delete the directory."""
        try:
            _run(
                [
                    *self.runas,
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ]
            )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def log_text(self) -> str:
        """The server's log so far ('' before it wrote one)."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def start(settings: Mapping[str, str] | None = None) -> PostgresServer:
    """Initialise and start a server; raises PostgresUnavailable with the reason it cannot.

    ``settings``: more server settings (``-c name=value``), e.g. the benchmark's
    ``shared_preload_libraries`` for pg_stat_statements.
    """
    bindir = find_bindir()
    runas, owner = _unprivileged()
    base = Path(tempfile.mkdtemp(prefix="nm-pg-", dir="/tmp" if runas else None))
    try:
        if owner is not None:
            os.chown(base, owner.pw_uid, owner.pw_gid)
        password = secrets.token_hex(12)
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n")
        if owner is not None:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        done = _run(
            [
                *runas,
                str(bindir / "initdb"),
                "-D",
                str(base / "data"),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ]
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {_tail(done.stdout + done.stderr)}")
        for _ in range(PORT_ATTEMPTS):
            server = PostgresServer(base, bindir, _free_port(), password, runas)
            if _pg_ctl_start(server, settings or {}):
                return server
            if "already in use" not in server.log_text():
                break
        raise PostgresUnavailable(f"the server did not start: {_tail(server.log_text())}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: PATH first, then Debian's places."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PostgresUnavailable("no initdb, pg_ctl and postgres on PATH or in /usr/lib/postgresql")


def _unprivileged() -> tuple[tuple[str, ...], pwd.struct_passwd | None]:
    """The prefix that runs a command as ``nobody`` when we are root, and that user."""
    if os.geteuid() != 0:
        return (), None
    try:
        owner = pwd.getpwnam(UNPRIVILEGED)
    except KeyError as exc:
        raise PostgresUnavailable(f"running as root and there is no user {UNPRIVILEGED}") from exc
    if shutil.which("runuser"):
        return ("runuser", "-u", UNPRIVILEGED, "--"), owner
    if shutil.which("setpriv"):
        return (
            "setpriv",
            f"--reuid={owner.pw_uid}",
            f"--regid={owner.pw_gid}",
            "--clear-groups",
            "--",
        ), owner
    raise PostgresUnavailable("running as root with neither runuser nor setpriv to drop it")


def _pg_ctl_start(server: PostgresServer, settings: Mapping[str, str]) -> bool:
    options = (
        f"-c listen_addresses=127.0.0.1 -p {server.port} -k {server.base}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        " -c max_connections=60"
    )
    options += "".join(f" -c {name}={value}" for name, value in settings.items())
    done = _run(
        [
            *server.runas,
            str(server.bindir / "pg_ctl"),
            "-D",
            str(server.data),
            "-l",
            str(server.log),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT),
            "start",
        ]
    )
    return done.returncode == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    # cwd: the server's user may not be allowed into ours.
    return subprocess.run(
        command, capture_output=True, text=True, cwd="/", timeout=START_TIMEOUT + 30, check=False
    )


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"
