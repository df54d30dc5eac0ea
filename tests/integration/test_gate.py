"""The gate with a real migration: clients held until it is done, refused in
refuse mode or after gate_timeout, let through with gate_mode = off, other
databases never held; databases already at 40 and databases V40 does not
apply to.

A session holding a lock on one table keeps the migration retrying its
ADD COLUMN for as long as a test needs, so no test depends on how fast the
migration runs."""

import re

import psycopg
import pytest

from gate_helpers import (BackgroundClient, TableLock, admin_pairs, empty_db, gate_settings,
                          http_get, raw_login_error, status, v39_copy, v40_copy, wait_held,
                          wait_lock_wait, wait_open, wait_status)
from harness import make_tmpdir
from migrate_helpers import assert_end_state, version_marker

PROGRESS = re.compile(r"phoenix_kit V40 migration in progress: \d+/\d+ tables, \d+% of rows, ETA \S+")


def test_held_client_runs_its_query_when_the_gate_opens(pg, uuidgate_factory):
    db = v39_copy(pg, "gate_hold")
    lock = TableLock(db)
    try:
        gate = uuidgate_factory(gate_settings(unix_socket_dir=make_tmpdir("uuidgate-sock-")), upstream=db)
        wait_lock_wait(gate)
        client = BackgroundClient(gate.conninfo(dbname="gate_hold"),
                                  "SELECT * FROM public.phoenix_kit_users ORDER BY id LIMIT 5")
        st = wait_held(gate)
        assert st["gate"]["state"] == "migrating" and not st["gate"]["open"]
        assert client.is_alive() and client.rows is None

        # Other databases and the admin console pass while the gate is closed.
        with psycopg.connect(gate.conninfo(dbname="postgres"), connect_timeout=10) as other:
            assert other.execute("SELECT current_database()").fetchone() == ("postgres",)
        console = admin_pairs(gate, "SHOW GATE")
        assert console["state"] == "migrating" and console["open"] == "no"
        assert console["clients_held"] == "1"
        assert PROGRESS.match(console["description"]), console
        assert client.is_alive()
    finally:
        lock.release()

    client.result(timeout=60)
    assert client.error is None, client.error
    assert "uuid" in client.columns
    assert len(client.rows) == 5
    uuids = [row[client.columns.index("uuid")] for row in client.rows]
    assert all(u is not None and u.version == 7 for u in uuids), uuids
    st = status(gate)
    assert st["gate"]["state"] == "ready" and st["gate"]["open"]
    assert st["clients"]["held"] == 0
    assert_end_state(db)


def test_several_held_clients_all_proceed(pg, uuidgate_factory):
    db = v39_copy(pg, "gate_hold_many")
    with TableLock(db):
        gate = uuidgate_factory(gate_settings(), upstream=db)
        wait_lock_wait(gate)
        clients = [BackgroundClient(gate.conninfo(dbname="gate_hold_many"),
                                    "SELECT count(uuid) FROM public.phoenix_kit_settings")
                   for _ in range(5)]
        wait_held(gate, 5)
    for c in clients:
        c.result(timeout=60)
        assert c.error is None, c.error
        assert c.rows[0][0] > 0


def test_refuse_mode_answers_57p03_with_progress(pg, uuidgate_factory):
    db = v39_copy(pg, "gate_refuse")
    with TableLock(db):
        gate = uuidgate_factory(gate_settings(gate_mode="refuse"), upstream=db)
        wait_lock_wait(gate)
        err = raw_login_error(gate, "gate_refuse")
        assert err["C"] == "57P03", err
        assert err["S"] == "FATAL"
        assert PROGRESS.match(err["M"]), err
        assert status(gate)["clients"]["held"] == 0
        # A real driver shows the same text.
        with pytest.raises(psycopg.OperationalError, match="V40 migration in progress"):
            psycopg.connect(gate.conninfo(dbname="gate_refuse"), connect_timeout=10)
    wait_open(gate)
    with psycopg.connect(gate.conninfo(dbname="gate_refuse"), connect_timeout=10) as conn:
        assert conn.execute("SELECT count(*) FROM public.phoenix_kit_users WHERE uuid IS NULL").fetchone() == (0,)


def test_gate_timeout_refuses_a_held_client_with_57p03(pg, uuidgate_factory):
    db = v39_copy(pg, "gate_timeout")
    with TableLock(db):
        gate = uuidgate_factory(gate_settings(gate_timeout="1s"), upstream=db)
        wait_lock_wait(gate)
        err = raw_login_error(gate, "gate_timeout", timeout=30)
        assert err["C"] == "57P03", err
        assert PROGRESS.match(err["M"]), err
        assert "retry" in err.get("H", ""), err
        assert not status(gate)["gate"]["open"]
    wait_open(gate)


def test_gate_mode_off_lets_clients_through_during_the_migration(pg, uuidgate_factory):
    db = v39_copy(pg, "gate_off")
    with TableLock(db):
        gate = uuidgate_factory(gate_settings(gate_mode="off"), upstream=db)
        wait_lock_wait(gate)
        with psycopg.connect(gate.conninfo(dbname="gate_off"), connect_timeout=10) as conn:
            assert conn.execute("SELECT count(*) FROM public.phoenix_kit_users").fetchone()[0] > 0
        st = status(gate)
        assert st["gate"]["state"] == "migrating" and not st["gate"]["open"]
    wait_open(gate)
    assert_end_state(db)


def test_database_already_at_40_opens_after_a_catalog_check(pg, uuidgate_factory):
    db = v40_copy(pg, "gate_at40")
    gate = uuidgate_factory(gate_settings(), upstream=db)
    st = wait_open(gate, timeout=20)
    assert st["gate"]["state"] == "ready"
    assert st["migration"]["version_before"] == 40
    assert "verified complete" in st["migration"]["message"], st
    with psycopg.connect(gate.conninfo(dbname="gate_at40"), connect_timeout=10) as conn:
        assert conn.execute("SELECT count(*) FROM public.phoenix_kit_users").fetchone()[0] > 0
    assert "holding the migration lock" not in gate.log()
    assert version_marker(db) == "40"


@pytest.mark.parametrize("kind", ["fresh", "v38"])
def test_not_applicable_opens_with_a_warning(pg, uuidgate_factory, kind):
    name = f"gate_na_{kind}"
    if kind == "fresh":
        db = empty_db(pg, name)
    else:
        db = v39_copy(pg, name)
        pg.sql("COMMENT ON TABLE public.phoenix_kit IS '38'", dbname=name)
    gate = uuidgate_factory(gate_settings(), upstream=db)
    st = wait_open(gate, timeout=20)
    assert st["gate"]["state"] == "not_applicable"
    code, _, body = http_get(gate, "/readyz")
    assert code == 200, body
    log = gate.wait_for_log("migration_not_applicable")
    assert "level=warning event=migration_not_applicable" in log
    with psycopg.connect(gate.conninfo(dbname=name), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    if kind == "v38":
        assert version_marker(db) == "38"
        assert pg.sql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'uuid'"
                      " AND table_name = 'phoenix_kit_users'", dbname=name) == "0"


def test_not_applicable_with_refuse_answers_57p03(pg, uuidgate_factory):
    db = empty_db(pg, "gate_na_refuse")
    gate = uuidgate_factory(gate_settings(on_not_applicable="refuse"), upstream=db)
    wait_status(gate, lambda s: s["gate"]["state"] == "not_applicable", 20, "not_applicable")
    err = raw_login_error(gate, "gate_na_refuse")
    assert err["C"] == "57P03", err
    assert "does not apply" in err["M"], err
    code, _, body = http_get(gate, "/readyz")
    assert code == 503 and "does not apply" in body, body
    assert not status(gate)["gate"]["open"]
    # Other databases still pass.
    with psycopg.connect(gate.conninfo(dbname="postgres"), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_held_client_that_gives_up_is_forgotten(pg, uuidgate_factory):
    """A driver's own connect timeout closes the socket while held: uuidgate
    must notice and never log it in to the server."""
    import pgwire
    db = v39_copy(pg, "gate_gives_up")
    with TableLock(db):
        gate = uuidgate_factory(gate_settings(), upstream=db)
        wait_lock_wait(gate)
        conn = pgwire.RawConn(port=gate.port)
        conn.send(pgwire.startup_packet({"user": "postgres", "database": "gate_gives_up"}))
        wait_held(gate)
        conn.close()
        wait_status(gate, lambda s: s["clients"]["held"] == 0 and s["clients"]["total"] == 0, 10,
                    "the held client forgotten")
    wait_open(gate)
    assert status(gate)["clients"]["servers"] == 0
