"""Fixtures shared by every test module."""
import pytest


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for this pytest process (one per xdist worker), stopped at the end;
    tests call ``postgres.create_database()`` for a database of their own."""
    from tests.postgres_server import PostgresServer
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
