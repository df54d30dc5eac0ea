"""The gate when things go wrong: a migration that fails for good
(on_migration_failure = retry, exit, open), a database that is down when
uuidgate starts, and SIGTERM in the middle of the migration."""

import signal

import psycopg
import pytest

from gate_helpers import (BackgroundClient, TableLock, gate_settings, http_get, raw_login_error,
                          status, v39_copy, wait_held, wait_lock_wait, wait_open, wait_status)
from harness import PgServer
from migrate_helpers import assert_end_state, assert_no_runner_left, v39, version_marker

# No phoenix_kit_settings.uuid yet in V39: a text one cannot be completed.
WRONG_TYPE_TABLE = "phoenix_kit_settings"


def wrong_type_db(pg, name):
    db = v39_copy(pg, name)
    pg.sql(f"ALTER TABLE public.{WRONG_TYPE_TABLE} ADD COLUMN uuid text", dbname=name)
    return db


def wait_failed(gate, timeout=30):
    return wait_status(gate, lambda s: s["gate"]["state"] == "failed", timeout, "failed state")


def test_permanent_failure_keeps_the_gate_closed_and_reload_retries(pg, uuidgate_factory):
    db = wrong_type_db(pg, "fail_retry")
    gate = uuidgate_factory(gate_settings(gate_timeout="1s"), upstream=db)
    st = wait_failed(gate)
    assert not st["gate"]["open"]
    assert WRONG_TYPE_TABLE in st["migration"]["error"], st
    assert "failed" in st["gate"]["description"], st

    log = gate.wait_for_log("event=migration_retry")
    assert "kind=permanent" in log
    assert "level=error event=migration_failed" in log
    code, _, body = http_get(gate, "/readyz")
    assert code == 503 and WRONG_TYPE_TABLE in body, body

    # The reason reaches clients refused at the end of gate_timeout.
    err = raw_login_error(gate, "fail_retry")
    assert err["C"] == "57P03", err
    assert "migration failed" in err["M"] and WRONG_TYPE_TABLE in err["M"], err

    # Fixed by hand; RELOAD retries at once instead of in five minutes.
    pg.sql(f"ALTER TABLE public.{WRONG_TYPE_TABLE} DROP COLUMN uuid", dbname="fail_retry")
    gate.signal(signal.SIGHUP)
    st = wait_open(gate, timeout=60)
    assert st["gate"]["state"] == "ready"
    assert_end_state(db)


def test_failure_exit_ends_the_process_non_zero(pg, uuidgate_factory):
    db = wrong_type_db(pg, "fail_exit")
    gate = uuidgate_factory(gate_settings(on_migration_failure="exit"), upstream=db)
    rc = gate.wait(timeout=30)
    assert rc is not None, "uuidgate still running after the migration failed"
    assert rc != 0
    assert "event=migration_failed" in gate.log()
    assert version_marker(db) == "39"


def test_failure_open_lets_clients_in_anyway(pg, uuidgate_factory):
    db = wrong_type_db(pg, "fail_open")
    gate = uuidgate_factory(gate_settings(on_migration_failure="open"), upstream=db)
    st = wait_open(gate, timeout=30)
    assert st["gate"]["state"] == "failed"
    assert "event=gate_forced_open" in gate.log()
    code, _, _ = http_get(gate, "/readyz")
    assert code == 200
    with psycopg.connect(gate.conninfo(dbname="fail_open"), connect_timeout=10) as conn:
        assert conn.execute("SELECT count(*) FROM public.phoenix_kit_users").fetchone()[0] > 0
    assert version_marker(db) == "39"


def test_database_down_at_start_opens_once_reachable(uuidgate_factory):
    server = PgServer().init().start()
    try:
        v39.load(server.conninfo(), scale=1)
        server.stop()
        gate = uuidgate_factory(gate_settings(), upstream=server.conninfo())
        log = gate.wait_for_log("event=migration_retry", timeout=30)
        assert "kind=transient" in log
        st = status(gate)
        assert not st["gate"]["open"]
        code, _, body = http_get(gate, "/readyz")
        assert code == 503, body
        client = BackgroundClient(gate.conninfo())
        wait_held(gate)
        server.start()
        wait_open(gate, timeout=90)
        assert client.result().error is None, client.error
        assert_end_state(server.conninfo())
    finally:
        server.destroy()


def test_sigterm_mid_migration_exits_and_the_next_start_resumes(pg, uuidgate_factory):
    db = v39_copy(pg, "gate_sigterm")
    slow = gate_settings(migrate_batch_pause="100ms", migrate_batch_time="5ms")
    gate = uuidgate_factory(slow, upstream=db)
    wait_status(gate, lambda s: s["migration"]["rows_done"] > 0 and s["migration"]["phase"] == "migrating",
                30, "backfill under way")
    gate.signal(signal.SIGTERM)
    rc = gate.wait(timeout=15)
    assert rc is not None, "uuidgate did not exit after SIGTERM"
    assert rc == 0
    assert "event=migration_stopped" in gate.log() or "stopped" in gate.log()
    assert version_marker(db) == "39"
    assert_no_runner_left(db)

    again = uuidgate_factory(gate_settings(), upstream=db)
    st = wait_open(again, timeout=60)
    assert st["gate"]["state"] == "ready"
    assert st["migration"]["version_before"] == 39
    assert_end_state(db)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_refuses_held_clients_and_exits(pg, uuidgate_factory, sig):
    """A held client has no transaction to finish: shutdown must not wait
    gate_timeout or shutdown_timeout for it."""
    name = f"gate_shutdown_{sig.name.lower()}"
    db = v39_copy(pg, name)
    with TableLock(db):
        gate = uuidgate_factory(gate_settings(gate_timeout="120s", shutdown_timeout="120s"), upstream=db)
        wait_lock_wait(gate)
        client = BackgroundClient(gate.conninfo(dbname=name))
        wait_held(gate)
        gate.signal(sig)
        rc = gate.wait(timeout=5)
    assert rc is not None, "uuidgate still waits for its held client"
    client.result(timeout=5)
    assert client.error is not None
