"""Helpers for the migration's integration tests: the CLI, fresh databases
with the V39 fixture, and end-state checks read from the catalog."""

import os
import subprocess
import sys
import time

import psycopg

from harness import BUILD_DIR, ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import v39  # noqa: E402

TABLES = v39.TABLES
MIGRATE_TOOL = os.path.join(BUILD_DIR, "migrate", "uuidgate-migrate")
UUIDGATE = os.path.join(BUILD_DIR, "uuidgate")

_cmd = None


def migrate_cmd():
    """`uuidgate migrate` when the proxy binary has it, else the engine's own
    CLI; UUIDGATE_MIGRATE_CMD overrides (space-separated)."""
    global _cmd
    if _cmd is None:
        if os.environ.get("UUIDGATE_MIGRATE_CMD"):
            _cmd = os.environ["UUIDGATE_MIGRATE_CMD"].split()
        else:
            _cmd = [MIGRATE_TOOL]
            # The proxy binary only when it holds the engine as last built.
            lib = os.path.join(BUILD_DIR, "migrate", "libmigrate.a")
            fresh = os.path.exists(UUIDGATE) and (
                not os.path.exists(lib) or os.path.getmtime(UUIDGATE) >= os.path.getmtime(lib))
            if fresh:
                r = subprocess.run([UUIDGATE, "migrate", "--help"], capture_output=True, text=True)
                if r.returncode == 0 and "uuidgate migrate" in r.stdout:
                    _cmd = [UUIDGATE, "migrate"]
    return list(_cmd)


def run_migrate(conninfo, *args, timeout=120):
    return subprocess.run(migrate_cmd() + list(args) + ["--upstream", conninfo],
                          capture_output=True, text=True, timeout=timeout)


def start_migrate(conninfo, *args, logfile=None):
    """A running migration whose stderr goes to logfile (read with read_log)."""
    out = open(logfile, "w") if logfile else subprocess.DEVNULL
    proc = subprocess.Popen(migrate_cmd() + list(args) + ["--upstream", conninfo],
                            stdout=subprocess.DEVNULL, stderr=out)
    proc.logfile = logfile
    return proc


def read_log(proc):
    with open(proc.logfile, errors="replace") as f:
        return f.read()


def wait_for_log(proc, needle, timeout=60, may_finish=False):
    """The log once it holds needle; None if may_finish and the run ended
    without it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = read_log(proc)
        if needle in text:
            return text
        if proc.poll() is not None:
            if may_finish and proc.returncode in (0, 3):
                return None
            raise AssertionError(f"exited {proc.returncode} before logging {needle!r}:\n{text}")
        time.sleep(0.02)
    raise AssertionError(f"no {needle!r} after {timeout}s:\n{read_log(proc)}")


def fresh_db(pg, name):
    """An empty database named name; returns its conninfo."""
    pg.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg.sql(f"CREATE DATABASE {name}")
    return pg.conninfo(dbname=name)


def v39_db(pg, name, scale=1, missing=v39.DEFAULT_MISSING):
    conninfo = fresh_db(pg, name)
    v39.load(conninfo, scale=scale, missing=missing)
    return conninfo


def query(conninfo, sql, params=None):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def scalar(conninfo, sql, params=None):
    return query(conninfo, sql, params)[0][0]


def version_marker(conninfo, schema="public"):
    return scalar(conninfo, f"SELECT obj_description('{schema}.phoenix_kit'::regclass, 'pg_class')")


def existing_tables(conninfo, schema="public"):
    rows = query(conninfo, f"SELECT relname FROM pg_class WHERE relnamespace = '{schema}'::regnamespace"
                           " AND relkind = 'r' AND relname = ANY(%s)", [TABLES])
    return [t for t in TABLES if t in {r[0] for r in rows}]


def data_digest(conninfo, tables=None):
    """Per table, a digest of every row without its uuid: what must not change."""
    out = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for t in tables or existing_tables(conninfo):
            out[t] = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg((to_jsonb(x) - 'uuid')::text, '|'"
                f" ORDER BY id), '')) FROM public.{t} x").fetchone()
    return out


def column_state(conninfo, table, schema="public"):
    rows = query(conninfo, """
        SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum)
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s::regclass AND a.attname = 'uuid' AND NOT a.attisdropped""",
                 [f"{schema}.{table}"])
    return rows[0] if rows else None


def uuid_indexes(conninfo, table, schema="public"):
    return query(conninfo, """
        SELECT c.relname, i.indisvalid, i.indisunique, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = %s::regclass AND a.attname = 'uuid'""", [f"{schema}.{table}"])


def assert_end_state(conninfo, v7_tables=None, schema="public"):
    """V40's end state, checked from the catalog, for every existing table;
    values of tables in v7_tables (default all but email_templates) are v7."""
    tables = existing_tables(conninfo, schema)
    assert tables
    if v7_tables is None:
        v7_tables = [t for t in tables if t != "phoenix_kit_email_templates"]
    for t in tables:
        typ, notnull, default, _ = column_state(conninfo, t, schema)
        assert typ == "uuid" and notnull, (t, typ, notnull)
        assert default in ("uuid_generate_v7()", f"{schema}.uuid_generate_v7()"), (t, default)
        idx = uuid_indexes(conninfo, t, schema)
        assert all(valid for _, valid, _, _ in idx), (t, idx)
        assert any(unique and valid and "(uuid)" in d for _, valid, unique, d in idx), (t, idx)
        n, distinct, nulls = query(conninfo, f"SELECT count(*), count(DISTINCT uuid),"
                                             f" count(*) - count(uuid) FROM {schema}.{t}")[0]
        assert nulls == 0 and n == distinct, (t, n, distinct, nulls)
        if t in v7_tables:
            bad = scalar(conninfo, f"SELECT count(*) FROM {schema}.{t} WHERE substr(uuid::text, 15, 1) <> '7'"
                                   f" OR substr(uuid::text, 20, 1) NOT IN ('8', '9', 'a', 'b')")
            assert bad == 0, (t, bad)
    leftovers = query(conninfo, "SELECT conname FROM pg_constraint WHERE conname LIKE '%uuidgate%'")
    assert leftovers == [], leftovers
    assert scalar(conninfo, "SELECT count(*) FROM pg_proc WHERE proname = 'uuid_generate_v7'"
                            " AND pronamespace = %s::regnamespace", [schema]) == 1
    assert version_marker(conninfo, schema) == "40"


def assert_no_runner_left(conninfo):
    """No advisory lock and no busy uuidgate-migrate session in the database."""
    deadline = time.monotonic() + 10
    while True:
        busy = query(conninfo, "SELECT pid, state, query FROM pg_stat_activity"
                               " WHERE application_name = 'uuidgate-migrate' AND datname = current_database()")
        locks = query(conninfo, "SELECT pid FROM pg_locks WHERE locktype = 'advisory'")
        if not busy and not locks:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: sessions {busy}, advisory locks {locks}")
        time.sleep(0.1)


def start_standby(primary):
    """A streaming replica of primary (pg_basebackup -R), reporting replay
    every second."""
    from harness import PgServer, give_to_postgres
    standby = PgServer()
    os.makedirs(standby.sockdir, exist_ok=True)
    give_to_postgres(standby.base)
    give_to_postgres(standby.sockdir)
    standby._run([os.path.join(standby.bindir, "pg_basebackup"), "-D", standby.datadir, "-R",
                  "-X", "stream", "-c", "fast", "-d", primary.conninfo()])
    with open(os.path.join(standby.datadir, "postgresql.auto.conf"), "a") as f:
        f.write(f"port = {standby.port}\nunix_socket_directories = '{standby.sockdir}'\n"
                "wal_receiver_status_interval = '1s'\nhot_standby = on\n")
    return standby.start()
