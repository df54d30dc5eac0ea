"""The admin console (database `uuidgate` on the proxy's port), through psql
as an operator would use it: who may log in, every SHOW, PAUSE and RESUME,
KILL_CLIENT, RELOAD and SHUTDOWN."""

import os
import subprocess

import psycopg
import pytest

import pgwire
from gate_helpers import (PSQL, BackgroundClient, TableLock, admin_pairs, admin_rows, empty_db,
                          gate_settings, md5_secret, psql, scram_login, scram_secret, status,
                          v39_copy, wait_held, wait_lock_wait, write_auth_file)
from harness import free_port, make_tmpdir

ADMIN = "ops"
ADMIN_PASSWORD = "s3cret-ops"
APP = "app"
APP_PASSWORD = "app-pw"


def console(uuidgate_factory, upstream, auth_type=None, secrets=None, **settings):
    """A uuidgate with a Unix socket, an admin user and an ordinary user in
    auth_file (secrets: 'scram', 'md5' or 'plain')."""
    base = make_tmpdir("uuidgate-admin-")
    kind = secrets or "scram"
    make = {"scram": lambda u, p: scram_secret(p), "md5": md5_secret, "plain": lambda u, p: p}[kind]
    auth_file = write_auth_file(os.path.join(base, "userlist.txt"),
                                {ADMIN: make(ADMIN, ADMIN_PASSWORD), APP: make(APP, APP_PASSWORD)})
    s = {"unix_socket_dir": base, "admin_users": f"{ADMIN}, someone_else", "auth_file": auth_file,
         "http_listen": f"127.0.0.1:{free_port()}"}
    if auth_type:
        s["auth_type"] = auth_type
    s.update(settings)
    return uuidgate_factory(s, upstream=upstream, base=base)


@pytest.fixture
def gate(pg, uuidgate_factory):
    empty_db(pg, "admin_app")
    return console(uuidgate_factory, pg.conninfo(dbname="admin_app"))


# ---- who may log in ---------------------------------------------------------

def test_unix_peer_of_the_same_user_needs_no_password(gate):
    r = psql(gate, "SHOW VERSION", user="anybody", unix=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("uuidgate ")
    assert "event=admin_login" in gate.log()


def test_unix_peer_of_another_user_is_refused(gate):
    os.chmod(gate.base, 0o755)
    r = subprocess.run(["runuser", "-u", "postgres", "--", PSQL, "-X", "-At", "-w", "-h", gate.base,
                        "-p", str(gate.port), "-U", "postgres", "-d", "uuidgate", "-c", "SHOW VERSION"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "not allowed to connect to the uuidgate admin console" in r.stderr, r.stderr


def test_admin_user_with_a_scram_secret(gate):
    r = psql(gate, "SHOW VERSION", user=ADMIN, password=ADMIN_PASSWORD)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("uuidgate ")
    with pgwire.RawConn(port=gate.port) as c:
        scram_login(c, ADMIN, "uuidgate", ADMIN_PASSWORD)
        rows, errors = c.simple_query("SHOW VERSION")
        assert not errors and rows[0][0].startswith("uuidgate ")


def test_admin_user_with_an_md5_secret(pg, uuidgate_factory):
    empty_db(pg, "admin_md5")
    gate = console(uuidgate_factory, pg.conninfo(dbname="admin_md5"), auth_type="md5", secrets="md5")
    r = psql(gate, "SHOW VERSION", user=ADMIN, password=ADMIN_PASSWORD)
    assert r.returncode == 0, r.stderr
    with pgwire.RawConn(port=gate.port) as c:
        c.login(user=ADMIN, database="uuidgate", password=ADMIN_PASSWORD)
        rows, errors = c.simple_query("SHOW GATE")
        assert not errors and rows
    with pgwire.RawConn(port=gate.port) as c:
        with pytest.raises(pgwire.PgError) as e:
            c.login(user=ADMIN, database="uuidgate", password="wrong")
        assert e.value.sqlstate == "28P01"


def test_admin_user_with_a_plain_secret_over_scram(pg, uuidgate_factory):
    empty_db(pg, "admin_plain")
    gate = console(uuidgate_factory, pg.conninfo(dbname="admin_plain"), secrets="plain")
    r = psql(gate, "SHOW VERSION", user=ADMIN, password=ADMIN_PASSWORD)
    assert r.returncode == 0, r.stderr


def test_wrong_password_is_28p01(gate):
    r = psql(gate, "SHOW VERSION", user=ADMIN, password="not-it")
    assert r.returncode != 0
    assert "password authentication failed" in r.stderr, r.stderr
    with pgwire.RawConn(port=gate.port) as c:
        with pytest.raises(pgwire.PgError) as e:
            scram_login(c, ADMIN, "uuidgate", "not-it")
        assert e.value.sqlstate == "28P01"
    assert status_login_failures(gate) >= 2


def status_login_failures(gate):
    rows = admin_pairs(gate, "SHOW STATS")
    return int(rows["login_failures"])


@pytest.mark.parametrize("user,password", [(APP, APP_PASSWORD), ("postgres", None), ("nobody", "x")])
def test_users_not_in_admin_users_are_refused_with_28000(gate, user, password):
    with pgwire.RawConn(port=gate.port) as c:
        with pytest.raises(pgwire.PgError) as e:
            c.login(user=user, database="uuidgate", password=password)
        assert e.value.sqlstate == "28000", e.value.fields
        assert e.value.fields["S"] == "FATAL"
    r = psql(gate, "SHOW VERSION", user=user, password=password)
    assert r.returncode != 0
    assert "not allowed to connect to the uuidgate admin console" in r.stderr, r.stderr


# ---- commands -----------------------------------------------------------------

SHOWS = ("HELP", "GATE", "MIGRATION", "CLIENTS", "SERVERS", "STATS", "CONFIG", "VERSION")


def test_every_show_command_returns_rows(gate):
    with psycopg.connect(gate.conninfo(dbname="admin_app"), connect_timeout=10) as app:
        app.execute("SELECT 1")
        for what in SHOWS:
            rows = admin_rows(gate, f"SHOW {what}")
            assert rows, what
        gate_rows = admin_pairs(gate, "show gate;")
        assert gate_rows["state"] == "ready" and gate_rows["open"] == "yes"
        assert gate_rows["gate_mode"] == "hold" and gate_rows["paused"] == "no"
        clients = admin_rows(gate, "SHOW CLIENTS")
        assert any(r[3] == "admin_app" and r[4] == "active" for r in clients), clients
        assert any(r[3] == "uuidgate" and r[4] == "admin" for r in clients), clients
        servers = admin_rows(gate, "SHOW SERVERS")
        assert len(servers) == 1 and servers[0][3] == "admin_app" and int(servers[0][10]) > 0
        config = {r[0]: r for r in admin_rows(gate, "SHOW CONFIG")}
        assert config["gate_mode"][1] == "hold"
        assert config["admin_users"][1] == f"{ADMIN}, someone_else"
        help_rows = admin_pairs(gate, "SHOW HELP")
        assert "KILL_CLIENT id" in help_rows
        stats = admin_pairs(gate, "SHOW STATS")
        assert int(stats["clients_now"]) >= 2
        migration = admin_pairs(gate, "SHOW MIGRATION")
        assert "phase" in migration and "eta_seconds" in migration


def test_show_config_hides_the_upstream_password(pg, uuidgate_factory):
    empty_db(pg, "admin_secret")
    gate = console(uuidgate_factory, pg.conninfo(dbname="admin_secret", password="hunter2"))
    config = {r[0]: r[1] for r in admin_rows(gate, "SHOW CONFIG")}
    assert "hunter2" not in config["upstream"]


def test_unknown_command_and_extended_protocol_are_errors(gate):
    r = psql(gate, "SHOW NONSENSE", unix=True)
    assert r.returncode != 0 and "unknown admin command" in r.stderr
    conninfo = f"host={gate.base} port={gate.port} dbname=uuidgate user=x"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("SHOW VERSION", prepare=True)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cur = psycopg.ClientCursor(conn)
        cur.execute("SHOW VERSION")
        assert cur.fetchone()[0].startswith("uuidgate ")
        assert conn.execute("SHOW VERSION", prepare=False).fetchone()[0].startswith("uuidgate ")


def test_extended_protocol_error_leaves_the_session_in_sync(gate):
    with pgwire.RawConn(unix_path=os.path.join(gate.base, f".s.PGSQL.{gate.port}")) as c:
        c.login(user="x", database="uuidgate")
        parse = pgwire.message("P", b"\0SHOW VERSION\0\0\0")
        bind = pgwire.message("B", b"\0\0\0\0\0\0\0\0")
        describe = pgwire.message("D", b"P\0")
        execute = pgwire.message("E", b"\0\0\0\0\0")
        c.send(parse + bind + describe + execute + pgwire.message("S"))
        seen = []
        while True:
            mtype, payload = c.read_message()
            seen.append(mtype)
            if mtype == "Z":
                break
        assert seen == ["E", "Z"], seen
        rows, errors = c.simple_query("SHOW VERSION")
        assert not errors, errors
        assert rows and rows[0][0].startswith("uuidgate ")


def test_pause_holds_new_sessions_and_resume_releases_them(gate):
    r = psql(gate, "PAUSE", unix=True)
    assert r.returncode == 0, r.stderr
    assert admin_pairs(gate, "SHOW GATE")["paused"] == "yes"
    client = BackgroundClient(gate.conninfo(dbname="admin_app"), "SELECT current_database()")
    st = wait_held(gate)
    assert st["clients"]["held"] == 1
    assert client.is_alive()
    assert admin_pairs(gate, "SHOW GATE")["clients_held"] == "1"

    r = psql(gate, "RESUME", unix=True)
    assert r.returncode == 0, r.stderr
    client.result(timeout=30)
    assert client.error is None, client.error
    assert client.rows == [("admin_app",)]
    assert admin_pairs(gate, "SHOW GATE")["paused"] == "no"


def test_pause_does_not_hold_other_databases(gate):
    assert psql(gate, "PAUSE", unix=True).returncode == 0
    try:
        with psycopg.connect(gate.conninfo(dbname="postgres"), connect_timeout=3) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        psql(gate, "RESUME", unix=True)


def test_paused_client_times_out_with_57p03(gate):
    gate.reload(gate_timeout="1s")
    gate.wait_for_log("event=reloaded")
    assert psql(gate, "PAUSE", unix=True).returncode == 0
    with pgwire.RawConn(port=gate.port, timeout=30) as c:
        with pytest.raises(pgwire.PgError) as e:
            c.login(user="postgres", database="admin_app")
    assert e.value.sqlstate == "57P03"
    assert "paused" in e.value.fields["M"]


def test_kill_client_closes_that_client_only(gate):
    with psycopg.connect(gate.conninfo(dbname="admin_app"), connect_timeout=10, autocommit=True) as victim, \
         psycopg.connect(gate.conninfo(dbname="postgres"), connect_timeout=10, autocommit=True) as other:
        victim.execute("SET application_name = 'victim'")
        other.execute("SELECT 1")
        rows = admin_rows(gate, "SHOW CLIENTS")
        target = [r for r in rows if r[3] == "admin_app" and r[4] == "active"]
        assert len(target) == 1, rows
        r = psql(gate, f"KILL_CLIENT {target[0][0]}", unix=True)
        assert r.returncode == 0, r.stderr
        with pytest.raises(psycopg.OperationalError) as e:
            victim.execute("SELECT 1")
        assert "KILL_CLIENT" in str(e.value) or "terminat" in str(e.value) or victim.closed
        assert other.execute("SELECT 2").fetchone() == (2,)
        remaining = admin_rows(gate, "SHOW CLIENTS")
        assert not any(r[0] == target[0][0] for r in remaining), remaining
    r = psql(gate, "KILL_CLIENT 999999", unix=True)
    assert r.returncode != 0 and "no such client" in r.stderr


def test_reload_reads_the_file_again(gate):
    assert admin_pairs(gate, "SHOW GATE")["gate_mode"] == "hold"
    gate.settings["gate_mode"] = "refuse"
    gate.settings["gate_timeout"] = "7s"
    gate.write_config()
    r = psql(gate, "RELOAD", unix=True)
    assert r.returncode == 0, r.stderr
    config = {row[0]: row[1] for row in admin_rows(gate, "SHOW CONFIG")}
    assert config["gate_mode"] == "refuse"
    assert config["gate_timeout"] == "7000ms"
    assert "event=reloaded" in gate.log()


def test_reload_retries_a_failed_migration_at_once(pg, uuidgate_factory):
    db = v39_copy(pg, "admin_reload_fail")
    pg.sql("ALTER TABLE public.phoenix_kit_settings ADD COLUMN uuid text", dbname="admin_reload_fail")
    gate = console(uuidgate_factory, db, **gate_settings())
    gate.wait_for_log("event=migration_retry")
    assert admin_pairs(gate, "SHOW GATE")["state"] == "failed"
    assert "phoenix_kit_settings" in admin_pairs(gate, "SHOW MIGRATION")["error"]
    pg.sql("ALTER TABLE public.phoenix_kit_settings DROP COLUMN uuid", dbname="admin_reload_fail")
    assert psql(gate, "RELOAD", unix=True).returncode == 0
    gate.wait_for_log("event=gate_open", timeout=60)
    assert admin_pairs(gate, "SHOW GATE")["state"] == "ready"


def test_admin_console_works_while_the_gate_is_closed(pg, uuidgate_factory):
    db = v39_copy(pg, "admin_closed")
    with TableLock(db):
        gate = console(uuidgate_factory, db, **gate_settings())
        wait_lock_wait(gate)
        g = admin_pairs(gate, "SHOW GATE")
        assert g["state"] == "migrating" and g["open"] == "no"
        m = admin_pairs(gate, "SHOW MIGRATION")
        assert m["phase"] == "migrating" and m["current_table"] == "phoenix_kit_entities"
        assert int(m["lock_retries"]) > 0
        r = psql(gate, "SHOW VERSION", user=ADMIN, password=ADMIN_PASSWORD)
        assert r.returncode == 0, r.stderr


def test_shutdown_waits_for_clients_then_exits(gate):
    app = psycopg.connect(gate.conninfo(dbname="admin_app"), connect_timeout=10, autocommit=True)
    try:
        r = psql(gate, "SHUTDOWN", unix=True)
        assert r.returncode == 0, r.stderr
        assert status(gate)["shutting_down"] is True
        with pgwire.RawConn(port=gate.port) as c:
            with pytest.raises((pgwire.PgError, pgwire.ConnectionClosed)):
                c.login(user="postgres", database="admin_app")
        assert app.execute("SELECT 1").fetchone() == (1,)
        assert gate.running()
    finally:
        app.close()
    assert gate.wait(timeout=15) == 0
    assert "event=shutdown" in gate.log()
