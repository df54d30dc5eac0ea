import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import PgServer, Uuidgate, sanitizer_reports  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long migration, fault or load tests (left out of the sanitizer pass: -m 'not slow')")


@pytest.fixture(scope="session")
def pg():
    """One PostgreSQL cluster for the whole run (tests that need a special
    server start their own PgServer)."""
    server = PgServer().init().start()
    yield server
    server.destroy()


def gate_maker(started, default_upstream):
    """make(settings=None, upstream=None, start=True, **kw) -> Uuidgate, started
    unless start=False, remembered in `started` for teardown."""
    def make(settings=None, upstream=None, start=True, **kw):
        gate = Uuidgate(upstream or default_upstream, settings=settings, **kw)
        started.append(gate)
        if start:
            gate.start()
        return gate

    return make


@pytest.fixture
def uuidgate_factory(pg):
    started = []
    yield gate_maker(started, pg.conninfo())
    stop_all(started)


def stop_all(gates):
    """Stops the proxies (no_sanitizer_reports then reads their logs)."""
    for gate in gates:
        gate.stop()


@pytest.fixture
def proxy(uuidgate_factory):
    return uuidgate_factory()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A CA and a server certificate for localhost and 127.0.0.1."""
    from harness import make_certs
    return make_certs(str(tmp_path_factory.mktemp("certs")))


AUTH_ROLES = {
    # role: (pg_hba method, password)
    "u_trust": ("trust", None),
    "u_password": ("password", "pw-cleartext"),
    "u_md5": ("md5", "pw-md5"),
    "u_scram": ("scram-sha-256", "pw-scram"),
}


def auth_hba_lines(host_kind="host"):
    lines = ["local all all trust", f"{host_kind} all postgres 127.0.0.1/32 trust"]
    lines += [f"{host_kind} all {role} 127.0.0.1/32 {method}" for role, (method, _) in AUTH_ROLES.items()]
    return lines


def create_auth_roles(server):
    """One role per authentication method; u_md5's password is stored as md5
    so that the server really runs the md5 exchange."""
    for role, (method, password) in AUTH_ROLES.items():
        enc = "md5" if method == "md5" else "scram-sha-256"
        pw = f"PASSWORD '{password}'" if password else ""
        server.sql(f"SET password_encryption = '{enc}'; CREATE ROLE {role} LOGIN {pw}")


@pytest.fixture(scope="session")
def pg_auth():
    """A cluster whose pg_hba.conf picks the authentication method by role:
    trust, password (cleartext), md5 and scram-sha-256."""
    server = PgServer(hba=auth_hba_lines()).init().start()
    create_auth_roles(server)
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def module_uuidgate_factory(pg):
    """Like uuidgate_factory, but the proxies live for the whole module, for
    tests that can share one."""
    started = []
    yield gate_maker(started, pg.conninfo())
    stop_all(started)


def _new_sanitizer_reports():
    """Sanitizer lines logged by any uuidgate since the last check (a process
    still running is checked again later, so reports at exit are seen too)."""
    found = []
    for gate in Uuidgate.instances:
        text = gate.log()
        if len(text) > gate.sanitizer_checked:
            found += [f"{gate.logfile}: {line}" for line in sanitizer_reports(text[gate.sanitizer_checked:])]
            gate.sanitizer_checked = len(text)
    return found


@pytest.fixture(autouse=True)
def no_sanitizer_reports():
    """Fails the test when a uuidgate it ran (or one that exited since the last
    test) logged an AddressSanitizer, UBSan or LeakSanitizer report. Set up
    before the test's own fixtures, so it checks after they stopped their
    proxies."""
    yield
    found = _new_sanitizer_reports()
    if found:
        pytest.fail("sanitizer report in uuidgate's log:\n" + "\n".join(found[:20]), pytrace=False)


@pytest.fixture(autouse=True, scope="module")
def no_sanitizer_reports_in_module():
    """The same after the module's shared proxies have stopped."""
    yield
    found = _new_sanitizer_reports()
    if found:
        pytest.fail("sanitizer report in uuidgate's log:\n" + "\n".join(found[:20]), pytrace=False)
