"""Passthrough authentication: the server authenticates every client
through the proxy, whatever its method (trust, password, md5, SCRAM)."""

import os
import subprocess

import psycopg
import pytest

from conftest import AUTH_ROLES, auth_hba_lines
from pgwire import PgError, RawConn


@pytest.fixture(scope="module")
def gate(pg_auth, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=pg_auth.conninfo())


ROLES = sorted(AUTH_ROLES)
PASSWORD_ROLES = [r for r in ROLES if AUTH_ROLES[r][1]]


@pytest.mark.parametrize("role", ROLES)
def test_login_with_right_password(gate, role):
    password = AUTH_ROLES[role][1]
    extra = {"password": password} if password else {}
    with psycopg.connect(gate.conninfo(user=role, **extra)) as conn:
        assert conn.execute("select current_user").fetchone() == (role,)


@pytest.mark.parametrize("role", PASSWORD_ROLES)
def test_wrong_password_refused(gate, role):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(gate.conninfo(user=role, password="not-the-password"))


@pytest.mark.parametrize("role", ["u_password", "u_md5"])
def test_wrong_password_sqlstate(gate, role):
    with RawConn(port=gate.port) as c:
        with pytest.raises(PgError) as e:
            c.login(user=role, password="not-the-password")
        assert e.value.sqlstate == "28P01"
        assert e.value.fields["S"] == "FATAL"
        assert c.is_closed(timeout=5)


@pytest.mark.parametrize("role", ["u_password", "u_md5"])
def test_right_password_raw(gate, role):
    with RawConn(port=gate.port) as c:
        c.login(user=role, password=AUTH_ROLES[role][1])
        rows, _ = c.simple_query("select session_user")
        assert rows == [[role]]


def test_missing_password_refused(gate):
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(gate.conninfo(user="u_scram"))


def test_login_failure_logged(gate):
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(gate.conninfo(user="u_md5", password="nope"))
    log = gate.wait_for_log("sqlstate=28P01")
    failures = [line for line in log.splitlines() if "event=login_failed" in line and "user=u_md5" in line]
    assert failures, log[-2000:]


def test_unknown_role_refused(gate):
    with RawConn(port=gate.port) as c:
        with pytest.raises(PgError) as e:
            c.login(user="no_such_role")
        assert e.value.sqlstate in ("28000", "28P01")


def test_unknown_database_refused(gate):
    with RawConn(port=gate.port) as c:
        with pytest.raises(PgError) as e:
            c.login(database="no_such_database")
        assert e.value.sqlstate == "3D000"
    with psycopg.connect(gate.conninfo()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_database_defaults_to_upstreams(gate):
    """Without a database in the StartupMessage, the upstream's dbname is used."""
    with RawConn(port=gate.port) as c:
        c.login(user="u_trust", database="")
        rows, _ = c.simple_query("select current_database()")
        assert rows == [["postgres"]]


def test_psql_and_pgbench_with_scram_password(gate, tmp_path):
    env = dict(os.environ, PGPASSWORD=AUTH_ROLES["u_scram"][1])
    out = subprocess.run(["psql", "-X", "-A", "-t", "-d", gate.conninfo(user="u_scram"), "-c",
                          "select current_user"], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "u_scram"
    script = tmp_path / "one.sql"
    script.write_text("select 1;\n")
    # -C: a new connection, hence a new SCRAM exchange, for every transaction.
    out = subprocess.run(["pgbench", "-n", "-c", "2", "-t", "20", "-C", "-f", str(script),
                          gate.conninfo(user="u_scram")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "number of transactions actually processed: 40/40" in out.stdout


def test_hba_change_applies_to_new_logins(gate, pg_auth):
    """The proxy holds no authentication state: the server's current rules
    decide every login."""
    lines = auth_hba_lines()
    try:
        pg_auth.write_hba([line.replace("u_trust 127.0.0.1/32 trust", "u_trust 127.0.0.1/32 reject")
                           for line in lines])
        pg_auth.reload()
        with RawConn(port=gate.port) as c:
            with pytest.raises(PgError) as e:
                c.login(user="u_trust")
            assert e.value.sqlstate == "28000"
    finally:
        pg_auth.write_hba(lines)
        pg_auth.reload()
    with psycopg.connect(gate.conninfo(user="u_trust")) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
