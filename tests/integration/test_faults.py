"""Faults around the proxy: the server's backend terminated or SIGKILLed
mid-query, mid-COPY and mid-transaction; the server restarted under idle
clients; the network to the server stalled or cut (a forwarder of the test
suite's own sits between uuidgate and PostgreSQL); uuidgate SIGKILLed at
random points of a migration, then one clean run that must reach V40's exact
end state.

After each fault the affected client gets an error (never a hang or a wrong
answer) and new clients are served."""

import os
import random
import signal
import subprocess
import threading
import time

import psycopg
import pytest

import pgwire

from gate_helpers import gate_settings, http_get, status, wait_open
from harness import ROOT, PgServer, pg_bindir
from migrate_helpers import assert_end_state, assert_no_runner_left, data_digest, fresh_db, scalar
from robust_helpers import FaultyLink, assert_serving, wait_until


@pytest.fixture(scope="module")
def fault_pg():
    """A cluster of this module's own: a SIGKILLed backend makes PostgreSQL
    restart every backend, which other tests must not see."""
    server = PgServer().init().start()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def gate(fault_pg, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=fault_pg.conninfo())


def faults_table(server):
    """The table the tests write to. Made (and checkpointed) on use: the
    cluster runs with synchronous_commit off, so a crash restart may lose
    what was committed just before."""
    server.sql("CREATE TABLE IF NOT EXISTS public.faults (id bigserial PRIMARY KEY, v text); CHECKPOINT")


def backend_pid(conn):
    return conn.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()[0]


def run_in_thread(fn):
    """Runs fn in a thread; returns a function that joins it and returns
    ('ok', value) or ('error', exception)."""
    box = {}

    def body():
        try:
            box["r"] = ("ok", fn())
        except Exception as e:  # noqa: BLE001 - the test inspects it
            box["r"] = ("error", e)

    t = threading.Thread(target=body, daemon=True)
    t.start()

    def join(timeout=30):
        t.join(timeout)
        assert not t.is_alive(), "the client hung"
        return box["r"]
    return join


def wait_for_query(server, needle, timeout=10):
    return wait_until(lambda: server.sql(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE "
        f"'%{needle}%' AND pid <> pg_backend_pid()"), timeout=timeout, what=f"query {needle!r} running")


# ---- the server's backend dies ------------------------------------------------------


@pytest.mark.parametrize("how", ["terminate", "sigkill"])
def test_backend_killed_mid_query(fault_pg, gate, how):
    conn = psycopg.connect(gate.conninfo(), autocommit=True)
    pid = backend_pid(conn)
    join = run_in_thread(lambda: conn.execute("SELECT pg_catalog.pg_sleep(30) /* victim */").fetchall())
    wait_for_query(fault_pg, "victim")
    if how == "terminate":
        fault_pg.sql(f"SELECT pg_terminate_backend({pid})")
    else:
        os.kill(pid, signal.SIGKILL)
    kind, result = join()
    assert kind == "error" and isinstance(result, psycopg.OperationalError), result
    conn.close()
    # After a SIGKILL the postmaster restarts every backend; wait until it
    # accepts connections again.
    wait_until(lambda: _can_connect(fault_pg), timeout=30, what="server back")
    assert_serving(gate)


def _can_connect(server):
    try:
        server.sql("SELECT 1")
        return True
    except subprocess.CalledProcessError:
        return False


def test_backend_terminated_mid_copy(fault_pg, gate):
    faults_table(fault_pg)
    conn = psycopg.connect(gate.conninfo())
    pid = backend_pid(conn)
    conn.commit()
    before = int(fault_pg.sql("SELECT count(*) FROM public.faults"))
    with pytest.raises(psycopg.OperationalError):
        with conn.cursor().copy("COPY public.faults (v) FROM STDIN") as cp:
            for i in range(200000):
                cp.write_row((f"row {i}",))
                if i == 1000:
                    fault_pg.sql(f"SELECT pg_terminate_backend({pid})")
                    time.sleep(0.2)
        conn.commit()
    conn.close()
    assert int(fault_pg.sql("SELECT count(*) FROM public.faults")) == before, "a partial COPY was committed"
    assert_serving(gate)


def test_backend_terminated_mid_transaction(fault_pg, gate):
    faults_table(fault_pg)
    conn = psycopg.connect(gate.conninfo())
    pid = backend_pid(conn)
    conn.execute("INSERT INTO public.faults (v) VALUES ('uncommitted')")
    fault_pg.sql(f"SELECT pg_terminate_backend({pid})")
    with pytest.raises(psycopg.OperationalError):
        conn.execute("INSERT INTO public.faults (v) VALUES ('after')")
        conn.commit()
    conn.close()
    assert fault_pg.sql("SELECT count(*) FROM public.faults WHERE v IN ('uncommitted', 'after')") == "0"
    assert_serving(gate)


def test_server_restarted_under_idle_clients(fault_pg, gate):
    idle = [psycopg.connect(gate.conninfo(), autocommit=True) for _ in range(5)]
    for c in idle:
        c.execute("SELECT 1")
    fault_pg.pg_ctl("restart", "-m", "fast")
    for c in idle:
        with pytest.raises(psycopg.OperationalError):
            c.execute("SELECT 1")
        c.close()
    assert_serving(gate)
    # The proxy's own bookkeeping let go of the dead sessions.
    wait_until(lambda: gate.log().count("event=server_closed") >= 5, timeout=5,
               what="the dead server sessions noticed")


# ---- the network to the server ----------------------------------------------------


@pytest.fixture
def linked(fault_pg, uuidgate_factory):
    link = FaultyLink(fault_pg.port)
    gate = uuidgate_factory(upstream=link.conninfo(),
                            settings={"server_connect_timeout": "3s",
                                      "http_listen": gate_settings()["http_listen"]})
    yield link, gate
    link.close()


def test_network_stall_mid_query_loses_nothing(linked):
    link, gate = linked
    with psycopg.connect(gate.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT 1")
        link.pause()
        join = run_in_thread(lambda: conn.execute(
            "SELECT count(*), sum(g) FROM generate_series(1, 100000) g").fetchone())
        time.sleep(3)
        # The proxy itself stays responsive while its server leg is stalled.
        code, _, _ = http_get(gate, "/livez")
        assert code == 200
        assert status(gate)
        link.resume()
        kind, row = join()
        assert kind == "ok", row
        assert row == (100000, 5000050000)


def test_network_stall_during_login_times_out_then_recovers(linked):
    link, gate = linked
    link.pause()
    start = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(gate.conninfo(connect_timeout=20)).close()
    elapsed = time.monotonic() - start
    assert elapsed < 15, f"login took {elapsed:.1f}s to fail with server_connect_timeout = 3s"
    link.resume()
    link.cut()
    assert_serving(gate)


def test_network_cut_mid_query(linked):
    link, gate = linked
    conn = psycopg.connect(gate.conninfo(), autocommit=True)
    join = run_in_thread(lambda: conn.execute("SELECT pg_catalog.pg_sleep(20)").fetchall())
    time.sleep(0.5)
    link.cut()
    kind, result = join(timeout=15)
    assert kind == "error" and isinstance(result, psycopg.OperationalError), result
    conn.close()
    assert_serving(gate)


# ---- uuidgate SIGKILLed during its migration ---------------------------------------

KILLS = 20
SEED = 40


def load_v39(conninfo, scale=1):
    """The V39 fixture, loaded by tests/fixtures/load_v39.sh (psql from the
    server's own bin directory)."""
    env = dict(os.environ, PATH=f"{pg_bindir()}:{os.environ.get('PATH', '')}")
    subprocess.run(["sh", os.path.join(ROOT, "tests", "fixtures", "load_v39.sh"), conninfo, str(scale)],
                   check=True, capture_output=True, env=env)


def progress(conninfo):
    """How far the migration got: tables with a uuid column, with it NOT NULL,
    and valid uuid indexes."""
    return tuple(scalar(conninfo, sql) for sql in (
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attname = 'uuid' "
        "AND NOT a.attisdropped",
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attname = 'uuid' "
        "AND a.attnotnull",
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname LIKE '%\\_uuid\\_idx' AND i.indisvalid"))


@pytest.mark.slow
def test_sigkill_at_random_points_of_the_migration(pg, uuidgate_factory, record_property):
    conninfo = fresh_db(pg, "faults_kill9")
    load_v39(conninfo)
    before = data_digest(conninfo)
    rnd = random.Random(SEED)
    settings = gate_settings(migrate_batch_time="5ms", migrate_batch_pause="150ms",
                             migrate_lock_timeout="200ms")
    seen = []
    for i in range(KILLS):
        gate = uuidgate_factory(upstream=conninfo, settings=dict(settings), start=False)
        gate.start(wait=False)
        time.sleep(rnd.uniform(0.05, 1.2))
        if gate.proc.poll() is None:
            gate.proc.kill()
        gate.proc.wait()
        seen.append(progress(conninfo))
    print(f"progress after each of {KILLS} kills (uuid columns, NOT NULL, valid indexes): {seen}")
    record_property("figure", f"{KILLS} kills (seed {SEED}); tables with uuid / NOT NULL / valid index after"
                              f" each: {' '.join('%d/%d/%d' % p for p in seen)}")
    assert len(set(seen)) > 1, "every kill landed at the same point; the test proves little"
    gate = uuidgate_factory(upstream=conninfo, settings=dict(settings))
    wait_open(gate, timeout=180)
    assert status(gate)["gate"]["open"]
    assert_end_state(conninfo)
    after = data_digest(conninfo)
    assert after == before, "rows or columns other than uuid changed"
    # Every row has a distinct non-null uuid, the default and a unique index
    # (assert_end_state), and the marker says 40.
    assert scalar(conninfo, "SELECT obj_description('public.phoenix_kit'::regclass, 'pg_class')") == "40"
    assert_serving(gate, dbname="faults_kill9")
    gate.stop()
    assert_no_runner_left(conninfo)


def test_cancel_in_flight_when_the_proxy_stops(fault_pg, uuidgate_factory):
    """A cancel request still on its way to a stalled server when uuidgate
    exits: everything it holds is freed (the ASan pass checks for leaks; a
    leak also makes the exit status non-zero)."""
    link = FaultyLink(fault_pg.port)
    try:
        gate = uuidgate_factory(upstream=link.conninfo())
        victim = pgwire.RawConn(port=gate.port)
        victim.login()
        pid, secret = victim.backend_key
        link.pause()
        with pgwire.RawConn(port=gate.port) as c:
            c.send(pgwire.cancel_request(pid, secret))
            assert c.is_closed(timeout=5)
        gate.wait_for_log("event=cancel_forwarded")
        time.sleep(0.3)
        victim.close()
        assert gate.stop() == 0, gate.log()[-3000:]
    finally:
        link.close()
