"""Signals, as pgbouncer reads them: SIGTERM waits for clients to leave,
SIGINT closes idle sessions at once and busy ones when their transaction
ends, SIGHUP reloads the configuration, SIGQUIT stops at once."""

import signal
import time

import psycopg
import pytest

from pgwire import ConnectionClosed, PgError, RawConn, query, terminate


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def login(gate, **params):
    c = RawConn(port=gate.port, timeout=20)
    c.login(params=params)
    return c


def refused_with(gate):
    """Tries to log in; returns the SQLSTATE of the refusal, or None when
    nothing listens any more."""
    try:
        with RawConn(port=gate.port) as c:
            c.login()
    except PgError as e:
        return e.sqlstate
    except (ConnectionRefusedError, ConnectionClosed):
        return None
    return "admitted"


# ---- SIGTERM ----------------------------------------------------------------


def test_sigterm_lets_running_query_finish(pg, uuidgate_factory):
    gate = uuidgate_factory()
    c = login(gate)
    try:
        c.send(query("select pg_sleep(1.5), 'finished'"))
        time.sleep(0.3)
        gate.signal(signal.SIGTERM)
        gate.wait_for_log("event=shutdown")
        assert refused_with(gate) == "57P03"
        types, rows = [], []
        while True:
            mtype, payload = c.read_message()
            types.append(mtype)
            if mtype == "D":
                rows.append(payload)
            if mtype == "Z":
                break
        assert "E" not in types and len(rows) == 1 and b"finished" in rows[0]
        # Smart shutdown: the session stays usable until the client leaves.
        more, errors = c.simple_query("select 'still served'")
        assert more == [["still served"]] and not errors
        assert gate.running()
        c.send(terminate())
    finally:
        c.close()
    assert gate.wait(10) == 0, gate.log()[-2000:]


def test_sigterm_without_clients_exits(pg, uuidgate_factory, tmp_path):
    pidfile = tmp_path / "uuidgate.pid"
    gate = uuidgate_factory({"pidfile": str(pidfile)})
    assert wait_for(pidfile.exists)
    assert int(pidfile.read_text()) == gate.proc.pid
    gate.signal(signal.SIGTERM)
    assert gate.wait(10) == 0
    assert not pidfile.exists(), "pidfile left behind"


def test_sigterm_shutdown_timeout_closes_stragglers(pg, uuidgate_factory):
    gate = uuidgate_factory({"shutdown_timeout": "1s"})
    c = login(gate)
    try:
        gate.signal(signal.SIGTERM)
        fields = c.read_error()
        assert (fields["S"], fields["C"]) == ("FATAL", "57P01")
        assert c.is_closed(timeout=5)
    finally:
        c.close()
    assert gate.wait(10) == 0


def test_second_sigterm_stops_at_once(pg, uuidgate_factory):
    gate = uuidgate_factory({"shutdown_timeout": "60s"})
    c = login(gate)
    try:
        gate.signal(signal.SIGTERM)
        gate.wait_for_log("event=shutdown")
        gate.signal(signal.SIGTERM)
        assert gate.wait(10) is not None
        assert c.is_closed(timeout=5)
    finally:
        c.close()


# ---- SIGINT ----------------------------------------------------------------------


def test_sigint_closes_idle_clients_at_once(pg, uuidgate_factory):
    gate = uuidgate_factory({"shutdown_timeout": "60s"})
    idle = [psycopg.connect(gate.conninfo(), autocommit=True) for _ in range(3)]
    raw = login(gate)
    try:
        gate.signal(signal.SIGINT)
        fields = raw.read_error()
        assert (fields["S"], fields["C"]) == ("FATAL", "57P01")
        assert raw.is_closed(timeout=5)
        assert gate.wait(10) == 0, "proxy did not exit after closing its idle clients"
        for conn in idle:
            with pytest.raises(psycopg.OperationalError):
                conn.execute("select 1")
    finally:
        raw.close()
        for conn in idle:
            conn.close()


def test_sigint_lets_busy_session_finish_its_transaction(pg, uuidgate_factory):
    gate = uuidgate_factory({"shutdown_timeout": "60s"})
    c = login(gate)
    try:
        c.send(query("begin; select pg_sleep(1)"))
        time.sleep(0.3)
        gate.signal(signal.SIGINT)
        gate.wait_for_log("event=shutdown")
        rows, errors = [], []
        while True:
            mtype, payload = c.read_message()
            if mtype == "E":
                errors.append(payload)
            if mtype == "Z":
                assert payload == b"T"
                break
        assert not errors
        # Still in a transaction: it may finish it.
        rows, errors = c.simple_query("select 'in tx'; commit")
        assert rows == [["in tx"]] and not errors
        fields = c.read_error()
        assert fields["C"] == "57P01"
        assert c.is_closed(timeout=5)
    finally:
        c.close()
    assert gate.wait(10) == 0


def test_sigquit_stops_immediately(pg, uuidgate_factory):
    gate = uuidgate_factory({"shutdown_timeout": "60s"})
    c = login(gate)
    try:
        c.send(query("select pg_sleep(30)"))
        time.sleep(0.2)
        gate.signal(signal.SIGQUIT)
        assert gate.wait(10) is not None
        assert c.is_closed(timeout=5)
    finally:
        c.close()


# ---- SIGHUP -------------------------------------------------------------------------


def test_sighup_applies_log_level(pg, uuidgate_factory):
    gate = uuidgate_factory({"log_level": "info"})
    login(gate).close()
    gate.wait_for_log("event=login")
    assert "level=debug" not in gate.log()
    mark = len(gate.log())
    gate.reload(log_level="debug")
    gate.wait_for_log("event=reloaded", since=mark)
    login(gate).close()
    gate.wait_for_log("level=debug", since=mark)


def test_sighup_applies_max_client_conn(pg, uuidgate_factory):
    gate = uuidgate_factory({"max_client_conn": "10"})
    first = login(gate)
    try:
        mark = len(gate.log())
        gate.reload(max_client_conn="1")
        gate.wait_for_log("event=reloaded", since=mark)
        assert refused_with(gate) == "53300"
        rows, _ = first.simple_query("select 'kept'")
        assert rows == [["kept"]], "existing session must survive a lower limit"
    finally:
        first.close()
    assert wait_for(lambda: refused_with(gate) == "admitted")


def test_sighup_reports_keys_that_need_restart(pg, uuidgate_factory):
    gate = uuidgate_factory()
    mark = len(gate.log())
    old_port = gate.port
    gate.reload(listen_port=str(old_port + 1), log_level="info")
    log = gate.wait_for_log("event=reloaded", since=mark)
    line = [ln for ln in log[mark:].splitlines() if "event=reloaded" in ln][0]
    assert "listen_port" in line, line
    assert "log_level" not in line.split("needs_restart=")[-1], line
    with psycopg.connect(f"host=127.0.0.1 port={old_port} user=postgres dbname=postgres") as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_sighup_with_broken_config_keeps_running(pg, uuidgate_factory):
    gate = uuidgate_factory({"max_client_conn": "10"})
    mark = len(gate.log())
    with open(gate.config_path, "a") as f:
        f.write("max_client_conn = lots\n")
    gate.signal(signal.SIGHUP)
    log = gate.wait_for_log("event=reload_failed", since=mark)
    assert "max_client_conn" in log[mark:]
    assert gate.running()
    with psycopg.connect(gate.conninfo()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_sighup_changes_upstream_for_new_logins(pg, uuidgate_factory):
    pg.sql("drop database if exists proxy_signals_other")
    pg.sql("create database proxy_signals_other")
    gate = uuidgate_factory()
    with RawConn(port=gate.port) as before:
        before.login(database="")
        mark = len(gate.log())
        gate.reload(upstream=pg.conninfo(dbname="proxy_signals_other"))
        gate.wait_for_log("event=reloaded", since=mark)
        with RawConn(port=gate.port) as after:
            after.login(database="")
            rows, _ = after.simple_query("select current_database()")
            assert rows == [["proxy_signals_other"]]
        rows, _ = before.simple_query("select current_database()")
        assert rows == [["postgres"]]
