"""Real clients through the proxy: psql, pgbench in its three query modes,
and asyncpg (its own protocol implementation, not libpq)."""

import asyncio
import re
import subprocess

import asyncpg
import pytest


@pytest.fixture(scope="module")
def gate(pg, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=pg.conninfo())


@pytest.fixture(scope="module")
def bench_db(pg, gate):
    pg.sql("drop database if exists proxy_clients_bench")
    pg.sql("create database proxy_clients_bench")
    out = subprocess.run(["pgbench", "-i", "-s", "1", "-q", gate.conninfo(dbname="proxy_clients_bench")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return "proxy_clients_bench"


def psql(gate, *args, dbname="postgres", input=None):
    return subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-d", gate.conninfo(dbname=dbname), *args],
                          capture_output=True, text=True, input=input, timeout=60)


def test_pgbench_init_through_proxy(pg, bench_db):
    assert pg.sql("select count(*) from pgbench_accounts", dbname=bench_db) == "100000"


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_modes(gate, bench_db, mode):
    out = subprocess.run(["pgbench", "-n", "-c", "4", "-j", "2", "-T", "2", "-M", mode,
                          gate.conninfo(dbname=bench_db)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    processed = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    assert processed and int(processed.group(1)) > 0, out.stdout
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    assert failed is None or failed.group(1) == "0", out.stdout
    assert "error" not in out.stderr.lower(), out.stderr


def test_psql_script_with_copy_and_errors(gate, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("".join(f"{i},name {i}\n" for i in range(1000)))
    script = f"""
drop table if exists psql_copy;
create table psql_copy (id int primary key, name text);
\\copy psql_copy from '{data}' csv
select count(*), sum(id) from psql_copy;
\\set ON_ERROR_STOP 0
select 1 / 0;
\\set ON_ERROR_STOP 1
select name from psql_copy where id = 999 \\gset
select :'name' || ' again';
\\copy (select id from psql_copy order by id desc limit 2) to stdout
"""
    out = psql(gate, "-f", "-", input=script)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert "1000|499500" in out.stdout
    assert "name 999 again" in out.stdout
    assert lines[-2:] == ["999", "998"]
    assert "division by zero" in out.stderr


def test_psql_reports_server_error_exit_code(gate):
    out = psql(gate, "-c", "select * from no_such_table")
    assert out.returncode == 1
    assert 'relation "no_such_table" does not exist' in out.stderr


def test_psql_meta_commands(gate):
    out = psql(gate, "-c", "\\conninfo")
    assert out.returncode == 0, out.stderr
    assert str(gate.port) in out.stdout
    out = psql(gate, "-c", "\\dt pg_catalog.pg_class")
    assert out.returncode == 0 and "pg_class" in out.stdout


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def asyncpg_dsn(gate):
    return f"postgresql://postgres@127.0.0.1:{gate.port}/postgres"


def test_asyncpg_queries_and_prepared(gate):
    async def main():
        conn = await asyncpg.connect(asyncpg_dsn(gate))
        try:
            assert await conn.fetchval("select 40 + 2") == 42
            stmt = await conn.prepare("select $1::int * 2, $2::text")
            for i in range(100):
                assert tuple(await stmt.fetchrow(i, f"v{i}")) == (i * 2, f"v{i}")
            await conn.execute("drop table if exists asyncpg_t; create table asyncpg_t (a int, b text)")
            await conn.executemany("insert into asyncpg_t values ($1, $2)", [(i, str(i)) for i in range(500)])
            await conn.copy_records_to_table("asyncpg_t", records=[(i, "c") for i in range(10_000)])
            assert await conn.fetchval("select count(*) from asyncpg_t") == 10_500
            async with conn.transaction():
                total = 0
                async for rec in conn.cursor("select a from asyncpg_t where b = 'c'", prefetch=333):
                    total += rec["a"]
            assert total == sum(range(10_000))
        finally:
            await conn.close()

    run(main())


def test_asyncpg_timeout_cancels_query(gate):
    async def main():
        conn = await asyncpg.connect(asyncpg_dsn(gate))
        try:
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetchval("select pg_sleep(30)", timeout=0.5)
            assert await conn.fetchval("select 'after cancel'") == "after cancel"
        finally:
            await conn.close()

    run(main())


def test_asyncpg_listen_notify(gate):
    async def main():
        listener = await asyncpg.connect(asyncpg_dsn(gate))
        sender = await asyncpg.connect(asyncpg_dsn(gate))
        got = asyncio.Queue()
        try:
            await listener.add_listener("asyncpg_chan", lambda *a: got.put_nowait(a[3]))
            await sender.execute("notify asyncpg_chan, 'one'; notify asyncpg_chan, 'two'")
            assert [await asyncio.wait_for(got.get(), 10) for _ in range(2)] == ["one", "two"]
        finally:
            await listener.close()
            await sender.close()

    run(main())


def test_asyncpg_pool(gate):
    async def main():
        pool = await asyncpg.create_pool(asyncpg_dsn(gate), min_size=4, max_size=8)
        try:
            results = await asyncio.gather(*[pool.fetchval("select $1::int + 1", i) for i in range(200)])
            assert results == [i + 1 for i in range(200)]
        finally:
            await pool.close()

    run(main())


def test_asyncpg_error_keeps_connection(gate):
    async def main():
        conn = await asyncpg.connect(asyncpg_dsn(gate))
        try:
            with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
                await conn.fetchval("select 1 / 0")
            with pytest.raises(asyncpg.exceptions.UndefinedTableError):
                await conn.prepare("select * from missing_table")
            assert await conn.fetchval("select 7") == 7
        finally:
            await conn.close()

    run(main())
