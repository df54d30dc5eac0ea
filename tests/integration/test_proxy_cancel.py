"""CancelRequest through the proxy: the client's key maps to the server's,
and only an exact match cancels anything."""

import threading
import time

import psycopg
import pytest

from pgwire import RawConn, cancel_request, parse_error, query, ssl_request, tls_context


@pytest.fixture(scope="module")
def gate(pg, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=pg.conninfo())


@pytest.fixture(scope="module")
def tls_gate(pg, certs, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=pg.conninfo(), settings={
        "client_tls_sslmode": "require",
        "client_tls_cert_file": certs["cert"],
        "client_tls_key_file": certs["key"],
    })


def cancel_soon(conn, delay=0.5):
    t = threading.Timer(delay, conn.cancel)
    t.start()
    return t


def active_query_of(pg, application_name):
    return pg.sql("select count(*) from pg_stat_activity where state = 'active' "
                  f"and application_name = '{application_name}'")


def wait_active(pg, application_name, timeout=10):
    deadline = time.monotonic() + timeout
    while active_query_of(pg, application_name) != "1":
        assert time.monotonic() < deadline, "query never became active"
        time.sleep(0.05)


def test_cancel_running_query(gate):
    with psycopg.connect(gate.conninfo(), autocommit=True) as conn:
        t = cancel_soon(conn)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(30)")
        t.join()
        assert conn.execute("select 'still usable'").fetchone() == ("still usable",)
    assert "cancel_forwarded" in gate.log()


def test_cancel_with_client_tls_required(tls_gate):
    with psycopg.connect(tls_gate.conninfo(sslmode="require"), autocommit=True) as conn:
        assert conn.pgconn.ssl_in_use
        t = cancel_soon(conn)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(30)")
        t.join()
        assert conn.execute("select 1").fetchone() == (1,)


def test_cancel_in_transaction_aborts_only_the_statement(gate):
    with psycopg.connect(gate.conninfo()) as conn:
        conn.execute("select 1")
        t = cancel_soon(conn)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(30)")
        t.join()
        conn.rollback()
        assert conn.execute("select 2").fetchone() == (2,)


def raw_session_running_sleep(gate, pg, application_name, seconds):
    c = RawConn(port=gate.port, timeout=seconds + 20)
    c.login(params={"application_name": application_name})
    c.send(query(f"select pg_sleep({seconds})"))
    wait_active(pg, application_name)
    return c


def send_cancel(gate, pid, secret):
    with RawConn(port=gate.port) as k:
        k.send(cancel_request(pid, secret))
        assert k.is_closed(timeout=5), "proxy kept a cancel connection open"


def errors_until_ready(c):
    """Reads the rest of a query's answer; returns its ErrorResponses."""
    errors = []
    while True:
        mtype, payload = c.read_message()
        if mtype == "E":
            errors.append(parse_error(payload))
        if mtype == "Z":
            return errors


def test_wrong_key_cancels_nothing(gate, pg):
    with raw_session_running_sleep(gate, pg, "cancel-wrong-key", 2) as c:
        pid, secret = c.backend_key
        send_cancel(gate, pid, (secret + 1) & 0xFFFFFFFF)
        send_cancel(gate, (pid + 1) & 0x7FFFFFFF, secret)
        assert errors_until_ready(c) == [], "the pg_sleep was cancelled"
    assert "cancel_ignored" in gate.log()


def test_server_pid_as_key_cancels_nothing(gate, pg):
    """The server's own pid is not a key the proxy accepts."""
    with raw_session_running_sleep(gate, pg, "cancel-server-pid", 2) as c:
        _, secret = c.backend_key
        server_pid = int(pg.sql("select pid from pg_stat_activity "
                                "where application_name = 'cancel-server-pid'"))
        send_cancel(gate, server_pid, secret)
        assert errors_until_ready(c) == []


def test_raw_cancel_with_right_key(gate, pg):
    with raw_session_running_sleep(gate, pg, "cancel-right-key", 30) as c:
        pid, secret = c.backend_key
        send_cancel(gate, pid, secret)
        fields = c.read_error()
        assert fields["C"] == "57014"
        assert c.read_message()[0] == "Z"


def test_cancel_after_session_ended_is_ignored(gate):
    c = RawConn(port=gate.port)
    c.login()
    pid, secret = c.backend_key
    c.close()
    time.sleep(0.2)
    send_cancel(gate, pid, secret)
    with psycopg.connect(gate.conninfo()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_cancel_sent_over_tls(tls_gate, pg):
    """libpq 17 sends its CancelRequest inside TLS when the session used TLS."""
    with RawConn(port=tls_gate.port, timeout=40) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"S"
        c.wrap_tls(tls_context(verify=False, alpn=None))
        c.login(params={"application_name": "cancel-over-tls"})
        c.send(query("select pg_sleep(30)"))
        wait_active(pg, "cancel-over-tls")
        pid, secret = c.backend_key
        with RawConn(port=tls_gate.port) as k:
            k.send(ssl_request())
            assert k.read_bytes(1) == b"S"
            k.wrap_tls(tls_context(verify=False, alpn=None))
            k.send(cancel_request(pid, secret))
            assert k.is_closed(timeout=5)
        assert [e["C"] for e in errors_until_ready(c)] == ["57014"]


def test_cancel_through_unix_socket(pg, uuidgate_factory, tmp_path):
    gate = uuidgate_factory({"unix_socket_dir": str(tmp_path)})
    path = str(tmp_path / f".s.PGSQL.{gate.port}")
    with RawConn(unix_path=path, timeout=40) as c:
        c.login(params={"application_name": "cancel-unix"})
        c.send(query("select pg_sleep(30)"))
        wait_active(pg, "cancel-unix")
        pid, secret = c.backend_key
        with RawConn(unix_path=path) as k:
            k.send(cancel_request(pid, secret))
            assert k.is_closed(timeout=5)
        assert [e["C"] for e in errors_until_ready(c)] == ["57014"]
