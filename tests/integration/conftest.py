import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import PgServer, Uuidgate  # noqa: E402


@pytest.fixture(scope="session")
def pg():
    """One PostgreSQL cluster for the whole run (tests that need a special
    server start their own PgServer)."""
    server = PgServer().init().start()
    yield server
    server.destroy()


@pytest.fixture
def uuidgate_factory(pg):
    started = []

    def make(settings=None, upstream=None, start=True, **kw):
        gate = Uuidgate(upstream or pg.conninfo(), settings=settings, **kw)
        started.append(gate)
        if start:
            gate.start()
        return gate

    yield make
    for gate in started:
        gate.stop()


@pytest.fixture
def proxy(uuidgate_factory):
    return uuidgate_factory()
