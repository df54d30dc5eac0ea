"""UUIDv7 on INSERT: uuidgate fills the uuid column of migrated tables for
INSERTs that leave it out, in the simple and the extended protocol, and
passes every statement it is not certain about through unchanged.

Where a test proves that uuidgate filled the column, the column has no
database default (only uuidgate can fill it); where it proves a statement
passed through, the server's statement log shows the text unchanged."""

import asyncio
import os
import re
import subprocess
import time
import uuid

import psycopg
import pytest

from harness import ROOT, UUIDGATE_BIN, PgServer

DB = "ins_app"


@pytest.fixture(scope="module")
def server():
    pg = PgServer(settings={"log_statement": "'all'"}).init().start()
    pg.sql(f"CREATE DATABASE {DB}")
    subprocess.run([os.path.join(ROOT, "tests", "fixtures", "load_v39.sh"), pg.conninfo(DB), "1"], check=True)
    subprocess.run([UUIDGATE_BIN, "migrate", "up", "--upstream", pg.conninfo(DB)], check=True,
                   capture_output=True)
    # Only uuidgate can fill the column of these two tables.
    pg.sql("ALTER TABLE phoenix_kit_settings ALTER COLUMN uuid DROP DEFAULT; "
           "ALTER TABLE phoenix_kit_admin_notes ALTER COLUMN uuid DROP DEFAULT", DB)
    yield pg
    pg.destroy()


@pytest.fixture(scope="module")
def gate(server, module_uuidgate_factory):
    g = module_uuidgate_factory({"insert_uuid": "always", "log_rewrites": "yes"}, upstream=server.conninfo(DB))
    deadline = time.monotonic() + 20
    while "event=uuid_tables tables=" not in g.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return g


def connect(gate, **kw):
    return psycopg.connect(gate.conninfo(DB), autocommit=True, **kw)


def is_v7(value):
    return uuid.UUID(str(value)).version == 7


def server_saw(server, text):
    with open(server.logfile, errors="replace") as f:
        return text in f.read()


SETTING = ("INSERT INTO phoenix_kit_settings (key, value, date_added, date_updated) "
           "VALUES ({key}, 'v', now(), now())")


def test_simple_query_gets_a_literal(gate):
    with connect(gate) as conn:
        row = conn.execute(SETTING.format(key="'simple-1'") + " RETURNING uuid", prepare=False).fetchone()
    assert is_v7(row[0])


def test_multi_row_values_get_one_value_each(gate):
    with connect(gate) as conn:
        rows = conn.execute("INSERT INTO phoenix_kit_settings (key, date_added, date_updated) VALUES "
                            "('mr-1', now(), now()), ('mr-2', now(), now()), ('mr-3', now(), now()) "
                            "RETURNING uuid", prepare=False).fetchall()
    values = [r[0] for r in rows]
    assert len(set(values)) == 3 and all(is_v7(v) for v in values)
    assert values == sorted(values)


def test_schema_qualified_quoted_names_and_on_conflict(gate):
    with connect(gate) as conn:
        conn.execute('INSERT INTO "public"."phoenix_kit_settings" ("key", date_added, date_updated) '
                     "VALUES ('q-1', now(), now()) ON CONFLICT (key) DO NOTHING", prepare=False)
        got = conn.execute("SELECT uuid FROM phoenix_kit_settings WHERE key = 'q-1'").fetchone()[0]
    assert is_v7(got)


def test_several_statements_in_one_query(gate):
    with connect(gate) as conn:
        conn.execute(SETTING.format(key="'ms-1'") + "; SELECT 1; " + SETTING.format(key="'ms-2'"), prepare=False)
        got = conn.execute("SELECT count(*) FROM phoenix_kit_settings WHERE key IN ('ms-1', 'ms-2') "
                           "AND uuid IS NOT NULL").fetchone()[0]
    assert got == 2


def test_prepared_insert_gets_fresh_values_on_every_execution(gate):
    n = 10000
    with connect(gate) as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO phoenix_kit_admin_notes (user_id, author_id, content, inserted_at, updated_at) "
                            "VALUES (%s, %s, %s, now(), now())",
                            [(1, 1, f"note {i}") for i in range(n)])
        rows = conn.execute("SELECT uuid FROM phoenix_kit_admin_notes WHERE content LIKE 'note %' "
                            "ORDER BY id").fetchall()
    values = [r[0] for r in rows]
    assert len(values) == n and len(set(values)) == n
    assert values == sorted(values), "values drawn on one connection increase"
    now_ms = time.time() * 1000
    stamps = [int(str(v).replace("-", "")[:12], 16) for v in (values[0], values[-1])]
    assert all(abs(now_ms - s) < 120000 for s in stamps)


def test_returning_shows_the_generated_value(gate):
    with connect(gate) as conn:
        got = conn.execute("INSERT INTO phoenix_kit_settings (key, date_added, date_updated) "
                           "VALUES (%s, now(), now()) RETURNING *", ("ret-1",)).fetchone()
    assert any(isinstance(v, uuid.UUID) and is_v7(v) for v in got)


def test_client_sees_only_its_own_parameters(gate):
    with connect(gate) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO phoenix_kit_settings (key, date_added, date_updated) "
                        "VALUES (%s, now(), now())", ("desc-1",), prepare=True)
        stmt = conn.pgconn.describe_prepared(b"_pg3_0")
        assert stmt.nparams == 1


def test_error_position_points_into_the_clients_text(gate):
    with connect(gate) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction) as e:
            conn.execute("INSERT INTO phoenix_kit_settings (key, date_added, date_updated) "
                         "VALUES (no_such_fn(), now(), now())", prepare=False)
    pos = e.value.diag.statement_position
    assert pos and int(pos) == len("INSERT INTO phoenix_kit_settings (key, date_added, date_updated) VALUES (") + 1


def test_bind_with_wrong_parameter_count_names_the_clients_counts(gate):
    with connect(gate) as conn:
        conn.pgconn.prepare(b"wrongcount", b"INSERT INTO phoenix_kit_settings (key, date_added, date_updated) "
                            b"VALUES ($1, now(), now())")
        res = conn.pgconn.exec_prepared(b"wrongcount", [b"a", b"b"])
        message = res.error_message.decode()
    assert "supplies 2 parameters" in message and "requires 1" in message


def test_asyncpg_binary_binds(gate):
    asyncpg = pytest.importorskip("asyncpg")

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=gate.port, user="postgres", database=DB)
        try:
            stmt = await conn.prepare("INSERT INTO phoenix_kit_settings (key, date_added, date_updated) "
                                      "VALUES ($1, now(), now()) RETURNING uuid")
            assert len(stmt.get_parameters()) == 1
            return [await stmt.fetchval(f"apg-{i}") for i in range(50)]
        finally:
            await conn.close()

    values = asyncio.run(run())
    assert len(set(values)) == 50 and all(is_v7(v) for v in values)


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_inserts(gate, server, tmp_path, mode):
    script = tmp_path / "insert.sql"
    script.write_text("INSERT INTO phoenix_kit_settings (key, value, date_added, date_updated) "
                      "VALUES (md5(random()::text || :client_id), 'pgb', now(), now());\n")
    before = int(server.sql("SELECT count(*) FROM phoenix_kit_settings", DB))
    r = subprocess.run(["pgbench", "-n", "-M", mode, "-f", str(script), "-c", "4", "-t", "200", gate.conninfo(DB)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    after = server.sql("SELECT count(*), count(DISTINCT uuid), count(uuid) FROM phoenix_kit_settings", DB)
    total, distinct, filled = map(int, after.split("|"))
    assert total == before + 800 and distinct == total and filled == total


PASS_THROUGH = [
    ("no column list", "INSERT INTO phoenix_kit_user_roles VALUES (DEFAULT, 'pt-role-1', 'x', false, now(), now())"),
    ("uuid given", "INSERT INTO phoenix_kit_user_roles (name, uuid, inserted_at) VALUES ('pt-role-2', "
                   "'00000000-0000-4000-8000-000000000000', now())"),
    ("insert select", "INSERT INTO phoenix_kit_user_roles (name, inserted_at) SELECT 'pt-role-3', now()"),
    ("explain", "EXPLAIN INSERT INTO phoenix_kit_user_roles (name, inserted_at) VALUES ('pt-role-4', now())"),
    ("prepare", "PREPARE pt_p AS INSERT INTO phoenix_kit_user_roles (name, inserted_at) VALUES ('pt-role-5', now())"),
    ("with set", "SET application_name = 'pt'; INSERT INTO phoenix_kit_user_roles (name, inserted_at) "
                 "VALUES ('pt-role-6', now())"),
    ("other table", "CREATE TABLE IF NOT EXISTS pt_other (name text, uuid uuid); "
                    "INSERT INTO pt_other (name) VALUES ('pt-7')"),
]


@pytest.mark.parametrize("label, sql", PASS_THROUGH, ids=[p[0] for p in PASS_THROUGH])
def test_uncertain_statements_reach_the_server_unchanged(gate, server, label, sql):
    with connect(gate) as conn:
        try:
            conn.execute(sql, prepare=False)
        except psycopg.Error:
            pass  # the server's own verdict on the statement is not the point
    assert server_saw(server, sql), f"{label}: the server did not see the original text"


def test_unqualified_name_after_set_search_path_passes_through(gate, server):
    sql = "INSERT INTO phoenix_kit_user_roles (name, inserted_at, updated_at) VALUES ('pt-sp', now(), now())"
    with connect(gate) as conn:
        conn.execute("SET search_path = pg_catalog, public", prepare=False)
        conn.execute(sql, prepare=False)
    assert server_saw(server, sql)


def test_non_utf8_session_passes_through(gate, server):
    sql = "INSERT INTO phoenix_kit_user_roles (name, inserted_at, updated_at) VALUES ('pt-latin', now(), now())"
    with psycopg.connect(gate.conninfo(DB, options="'-c client_encoding=LATIN1'"), autocommit=True) as conn:
        conn.execute(sql, prepare=False)
    assert server_saw(server, sql)


def test_metrics_count_rewrites(gate):
    out = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(gate.port), "-U", "postgres",
                          "-d", DB, "-c", SETTING.format(key="'m-1'")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert re.search(r"event=rewrite .*rows=1", gate.log())


def test_off_passes_everything_through(server, uuidgate_factory):
    g = uuidgate_factory({"insert_uuid": "off"}, upstream=server.conninfo(DB))
    with psycopg.connect(g.conninfo(DB), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(SETTING.format(key="'off-1'"), prepare=False)
