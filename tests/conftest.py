"""Fixtures shared by several test modules: a real PostgreSQL for the store contract (issue 7)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pgserver import PostgresServer, PostgresUnavailable, start

# The database the contract tests share, each test in a schema of its own.
CONTRACT_DATABASE = "contract"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server per test process (each xdist worker has its own), or a skip."""
    try:
        import psycopg  # noqa: F401 (only: is the driver installed?)
    except ImportError:
        pytest.skip("PostgreSQL not available: psycopg is not installed (pip install -e '.[test]')")
    try:
        server = start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        server.create_database(CONTRACT_DATABASE)
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty schema of its own (its ``search_path``), dropped after the test.

    The store sees an empty database: it creates and finds its tables in the
    first schema of the path, whatever other schemas hold.
    """
    schema = f"test_{uuid.uuid4().hex[:16]}"
    postgres_server.execute(f'CREATE SCHEMA "{schema}"', CONTRACT_DATABASE)
    try:
        yield postgres_server.url(CONTRACT_DATABASE, schema=schema)
    finally:
        postgres_server.execute(f'DROP SCHEMA "{schema}" CASCADE', CONTRACT_DATABASE)
