"""Relaying after login: bulk data both ways, huge values, pipelining,
notifications, errors mid-stream, and either side going away."""

import hashlib
import os
import socket
import threading
import time

import psycopg
import pytest

from harness import free_port
from pgwire import RawConn, query, startup_packet


@pytest.fixture(scope="module")
def gate(pg, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=pg.conninfo())


@pytest.fixture
def conn(gate):
    with psycopg.connect(gate.conninfo(), autocommit=True) as c:
        yield c


def wait_until(predicate, timeout=10.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def backends_named(pg, application_name):
    return int(pg.sql("select count(*) from pg_stat_activity "
                      f"where application_name = '{application_name}'"))


def test_backend_pid_seen_by_client_is_not_the_servers(conn):
    server_pid = conn.execute("select pg_backend_pid()").fetchone()[0]
    assert conn.info.backend_pid != server_pid


def test_copy_in_100k_rows(conn):
    conn.execute("drop table if exists relay_copy_in")
    conn.execute("create table relay_copy_in (id int, payload text)")
    digest = hashlib.md5()
    with conn.cursor() as cur:
        with cur.copy("copy relay_copy_in (id, payload) from stdin") as copy:
            for i in range(100_000):
                payload = f"row-{i}-{'x' * (i % 50)}"
                digest.update(payload.encode())
                copy.write_row((i, payload))
    count, server_md5 = conn.execute(
        "select count(*), md5(string_agg(payload, '' order by id)) from relay_copy_in").fetchone()
    assert count == 100_000
    assert server_md5 == digest.hexdigest()


def test_copy_out_100k_rows(conn):
    expected = hashlib.md5()
    for i in range(1, 100_001):
        expected.update(f"{i}\tvalue {i}\n".encode())
    got = hashlib.md5()
    rows = 0
    with conn.cursor() as cur:
        with cur.copy("copy (select g, 'value ' || g from generate_series(1, 100000) g) to stdout") as copy:
            for block in copy:
                got.update(block)
                rows += bytes(block).count(b"\n")
    assert rows == 100_000
    assert got.hexdigest() == expected.hexdigest()


def test_copy_in_error_keeps_session(conn):
    conn.execute("drop table if exists relay_copy_bad")
    conn.execute("create table relay_copy_bad (id int)")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        with conn.cursor() as cur:
            with cur.copy("copy relay_copy_bad from stdin") as copy:
                copy.write(b"1\n2\nnot a number\n")
    assert conn.execute("select count(*) from relay_copy_bad").fetchone() == (0,)


def test_100mb_value_round_trip(conn):
    value = os.urandom(100 * 1024 * 1024)
    want = hashlib.md5(value).hexdigest()
    conn.execute("drop table if exists relay_big")
    conn.execute("create table relay_big (v bytea)")
    with conn.cursor(binary=True) as cur:
        cur.execute("insert into relay_big values (%b)", (value,))
        assert conn.execute("select md5(v) from relay_big").fetchone()[0] == want
        cur.execute("select v from relay_big")
        back = cur.fetchone()[0]
    assert len(back) == len(value)
    assert hashlib.md5(back).hexdigest() == want
    conn.execute("drop table relay_big")


def test_100mb_text_round_trip(conn):
    value = "0123456789abcdef" * (100 * 1024 * 1024 // 16)
    back = conn.execute("select %s::text", (value,)).fetchone()[0]
    assert hashlib.md5(back.encode()).hexdigest() == hashlib.md5(value.encode()).hexdigest()


def test_pipeline_mode(conn):
    conn.execute("drop table if exists relay_pipe")
    conn.execute("create table relay_pipe (n int)")
    with conn.pipeline():
        with conn.cursor() as cur:
            for i in range(2000):
                cur.execute("insert into relay_pipe values (%s)", (i,))
        results = [conn.execute("select %s::int * 2", (i,)) for i in range(500)]
    assert [r.fetchone()[0] for r in results] == [i * 2 for i in range(500)]
    assert conn.execute("select count(*), sum(n) from relay_pipe").fetchone() == (2000, sum(range(2000)))


def test_pipeline_error_recovers(conn):
    with pytest.raises(psycopg.errors.DivisionByZero):
        with conn.pipeline():
            conn.execute("select 1")
            conn.execute("select 1 / 0")
            conn.execute("select 2")
    assert conn.execute("select 'after'").fetchone() == ("after",)


def test_listen_notify(gate):
    with psycopg.connect(gate.conninfo(), autocommit=True) as listener, \
         psycopg.connect(gate.conninfo(), autocommit=True) as sender:
        got = []
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload, n.pid)))
        listener.execute("listen relay_channel")
        sender.execute("select pg_notify('relay_channel', 'hello ' || g) from generate_series(1, 3) g")
        # Notifications are read along with the results of the next query.
        assert wait_until(lambda: listener.execute("select 1") and len(got) >= 3)
        assert [(c, p) for c, p, _ in got] == [("relay_channel", f"hello {i}") for i in (1, 2, 3)]
        assert all(pid == got[0][2] for _, _, pid in got)


def test_error_mid_multi_statement_query(gate):
    with RawConn(port=gate.port) as c:
        c.login()
        rows, errors = c.simple_query("select 1; select 1/0; select 2")
        assert rows == [["1"]]
        assert len(errors) == 1 and errors[0]["C"] == "22012"
        rows, errors = c.simple_query("select 'usable'")
        assert rows == [["usable"]] and not errors


def test_error_in_transaction_then_rollback(conn):
    conn.autocommit = False
    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("select 1 / 0")
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        conn.execute("select 1")
    conn.rollback()
    assert conn.execute("select 3").fetchone() == (3,)
    conn.rollback()


def test_notices_relayed(conn):
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    conn.execute("do $$ begin raise notice 'from the server %', 42; end $$")
    assert notices == ["from the server 42"]


def test_server_killed_mid_session(pg, gate):
    victim = psycopg.connect(gate.conninfo(application_name="relay-victim"), autocommit=True)
    other = psycopg.connect(gate.conninfo(), autocommit=True)
    try:
        server_pid = victim.execute("select pg_backend_pid()").fetchone()[0]
        assert pg.sql(f"select pg_terminate_backend({server_pid})") == "t"
        with pytest.raises(psycopg.OperationalError):
            victim.execute("select 1")
        assert other.execute("select 'others live on'").fetchone() == ("others live on",)
        with psycopg.connect(gate.conninfo()) as fresh:
            assert fresh.execute("select 1").fetchone() == (1,)
    finally:
        victim.close()
        other.close()


def test_server_killed_during_query(pg, gate):
    victim = psycopg.connect(gate.conninfo(application_name="relay-victim2"), autocommit=True)
    try:
        server_pid = victim.execute("select pg_backend_pid()").fetchone()[0]
        killer = threading.Timer(0.5, pg.sql, (f"select pg_terminate_backend({server_pid})",))
        killer.start()
        with pytest.raises(psycopg.OperationalError):
            victim.execute("select pg_sleep(30)")
        killer.join()
    finally:
        victim.close()


def test_client_vanishing_when_idle_ends_backend(pg, gate):
    c = RawConn(port=gate.port)
    c.login(params={"application_name": "relay-idle-vanish"})
    assert backends_named(pg, "relay-idle-vanish") == 1
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    c.close()
    assert wait_until(lambda: backends_named(pg, "relay-idle-vanish") == 0)


def test_client_vanishing_mid_query_ends_backend(pg, gate):
    c = RawConn(port=gate.port)
    c.login(params={"application_name": "relay-vanish"})
    c.send(query("select pg_sleep(30)"))
    try:
        assert wait_until(lambda: pg.sql("select count(*) from pg_stat_activity where "
                                         "application_name = 'relay-vanish' and state = 'active'") == "1")
        c.close()
        assert wait_until(lambda: backends_named(pg, "relay-vanish") == 0, timeout=5), \
            "server backend still running the query of a client that left"
    finally:
        pg.sql("select pg_terminate_backend(pid) from pg_stat_activity "
               "where application_name = 'relay-vanish'")


def test_many_sessions_in_parallel(gate):
    errors = []

    def worker(n):
        try:
            with psycopg.connect(gate.conninfo(), autocommit=True) as c:
                for i in range(50):
                    got = c.execute("select %s::int + %s::int", (n, i)).fetchone()[0]
                    if got != n + i:
                        errors.append((n, i, got))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_reader_does_not_grow_the_proxy(gate):
    """Backpressure: a client that stops reading a 200 MB result must stall
    the server, not make the proxy buffer the result."""
    before = rss_kb(gate.proc.pid)
    with RawConn(port=gate.port, timeout=60) as c:
        c.login()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(query("select repeat('x', 1000000) from generate_series(1, 200)"))
        time.sleep(2)
        grown = rss_kb(gate.proc.pid) - before
        rows, total = 0, 0
        while True:
            mtype, payload = c.read_message()
            if mtype == "D":
                rows += 1
                total += len(payload)
            if mtype == "Z":
                break
        assert rows == 200 and total > 200_000_000
    assert grown < 32 * 1024, f"proxy grew by {grown} kB while the client did not read"


def test_unreachable_server(uuidgate_factory):
    port = free_port()
    gate = uuidgate_factory(upstream=f"host=127.0.0.1 port={port} dbname=postgres")
    with RawConn(port=gate.port) as c:
        c.send(startup_packet({"user": "postgres", "database": "postgres"}))
        fields = c.read_error()
        assert (fields["S"], fields["C"]) == ("FATAL", "08001"), fields
        assert c.is_closed(timeout=5)


def test_server_that_never_answers_times_out(uuidgate_factory):
    """A server that accepts TCP but never answers the SSLRequest: the login
    fails after server_connect_timeout instead of hanging."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        gate = uuidgate_factory({"server_connect_timeout": "1s", "client_login_timeout": "30s"},
                                upstream=f"host=127.0.0.1 port={port} dbname=postgres sslmode=prefer")
        with RawConn(port=gate.port, timeout=15) as c:
            c.send(startup_packet({"user": "postgres", "database": "postgres"}))
            fields = c.read_error()
            assert fields["S"] == "FATAL" and fields["C"].startswith("08"), fields
