"""Load through one uuidgate: 500 concurrent clients running a mixed
workload, slow readers next to fast writers, and a storm of connects and
disconnects (pgbench -C). No client may see an error; the proxy's RSS and
open file descriptors must come back near idle once the clients have left.
Latency percentiles are printed, not asserted."""

import asyncio
import os
import random
import resource
import socket
import subprocess
import threading
import time

import asyncpg
import psycopg
import pytest

import pgwire
from harness import PgServer
from robust_helpers import assert_serving, fd_count, rss_kb, wait_until

pytestmark = pytest.mark.slow

CLIENTS = 500
RUN_SECONDS = 5


def raise_fd_limit(want=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@pytest.fixture(scope="module")
def load_pg():
    raise_fd_limit()
    server = PgServer(settings={"max_connections": "600", "shared_buffers": "64MB"}).init().start()
    server.sql("CREATE TABLE public.load_events (id bigserial PRIMARY KEY, client int, payload text,"
               " inserted_at timestamptz DEFAULT now());"
               "CREATE TABLE public.load_accounts (id int PRIMARY KEY, balance bigint NOT NULL);"
               "INSERT INTO public.load_accounts SELECT g, 0 FROM generate_series(1, 1000) g")
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def load_gate(load_pg, module_uuidgate_factory):
    raise_fd_limit()
    return module_uuidgate_factory(upstream=load_pg.conninfo(),
                                   settings={"max_client_conn": "2000", "log_level": "info",
                                             "log_connections": "no", "log_disconnections": "no"})


def percentiles(samples):
    s = sorted(samples)
    if not s:
        return "no samples"
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000  # noqa: E731
    return (f"n={len(s)} p50={pick(0.50):.2f}ms p90={pick(0.90):.2f}ms p99={pick(0.99):.2f}ms "
            f"max={s[-1] * 1000:.2f}ms")


def idle_figures(gate, label):
    rss, fds = rss_kb(gate.proc.pid), fd_count(gate.proc.pid)
    print(f"{label}: uuidgate RSS {rss} kB, {fds} fds")
    return rss, fds


def settle(gate, fds_idle, rss_idle, timeout=20):
    """Waits for the fd count to come back to idle; returns (rss, fds)."""
    wait_until(lambda: fd_count(gate.proc.pid) <= fds_idle + 2, timeout=timeout,
               what=f"fd count back to {fds_idle} (now {fd_count(gate.proc.pid)})")
    return idle_figures(gate, "after")


class Run:
    """Shared by the clients of one run: they connect, wait for everyone,
    then work until the deadline."""

    def __init__(self, clients):
        self.clients = clients
        self.connected = 0
        self.failed = 0
        self.everyone = asyncio.Event()
        self.deadline = None
        self.latencies = []
        self.errors = []

    def arrived(self, ok):
        if ok:
            self.connected += 1
        else:
            self.failed += 1
        if self.connected + self.failed == self.clients:
            self.everyone.set()


async def one_client(port, n, run, connect_slots):
    rnd = random.Random(n)
    try:
        async with connect_slots:
            conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres",
                                         timeout=60, command_timeout=60)
    except Exception as e:  # noqa: BLE001 - counted and reported
        run.errors.append(f"client {n} connect: {type(e).__name__}: {e}")
        run.arrived(False)
        return
    run.arrived(True)
    try:
        stmt = await conn.prepare("SELECT balance FROM public.load_accounts WHERE id = $1")
        await run.everyone.wait()
        while time.monotonic() < run.deadline:
            kind = rnd.random()
            t0 = time.monotonic()
            if kind < 0.4:
                await stmt.fetchval(rnd.randint(1, 1000))
            elif kind < 0.6:
                await conn.execute("SELECT 1")
            elif kind < 0.8:
                await conn.execute("INSERT INTO public.load_events (client, payload) VALUES ($1, $2)",
                                   n, "x" * rnd.randint(1, 500))
            elif kind < 0.95:
                async with conn.transaction():
                    a, b = rnd.randint(1, 1000), rnd.randint(1, 1000)
                    await conn.execute("UPDATE public.load_accounts SET balance = balance - 1 WHERE id = $1",
                                       min(a, b))
                    await conn.execute("UPDATE public.load_accounts SET balance = balance + 1 WHERE id = $1",
                                       max(a, b))
            else:
                await conn.fetch("SELECT g, md5(g::text) FROM generate_series(1, 200) g")
            run.latencies.append(time.monotonic() - t0)
            await asyncio.sleep(rnd.uniform(0, 0.02))
    except Exception as e:  # noqa: BLE001 - counted and reported
        run.errors.append(f"client {n}: {type(e).__name__}: {e}")
    finally:
        await conn.close()


async def run_clients(port, clients, seconds, on_everyone=None):
    run = Run(clients)
    connect_slots = asyncio.Semaphore(50)
    t0 = time.monotonic()
    tasks = [asyncio.create_task(one_client(port, i, run, connect_slots)) for i in range(clients)]

    async def start_when_connected():
        await run.everyone.wait()
        run.deadline = time.monotonic() + seconds
        if on_everyone:
            on_everyone()
    starter = asyncio.create_task(start_when_connected())
    # The deadline is set before any client's loop reads it: they wait for
    # the same event, and the starter was created first.
    await asyncio.gather(starter, *tasks)
    return run, time.monotonic() - t0 - seconds


def test_500_concurrent_clients_mixed_workload(load_pg, load_gate, record_property):
    rss_idle, fds_idle = idle_figures(load_gate, "idle")
    peak = {"rss": rss_idle, "fds": fds_idle}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], rss_kb(load_gate.proc.pid))
            peak["fds"] = max(peak["fds"], fd_count(load_gate.proc.pid))
            time.sleep(0.1)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    at_once = {}

    def everyone_connected():
        at_once["fds"] = fd_count(load_gate.proc.pid)
    try:
        run, connect_seconds = asyncio.run(run_clients(load_gate.port, CLIENTS, RUN_SECONDS, everyone_connected))
    finally:
        stop.set()
        watcher.join()
    print(f"{CLIENTS} clients connected in about {connect_seconds:.1f}s ({at_once.get('fds')} fds with all"
          f" connected); during the run: peak RSS {peak['rss']} kB, peak {peak['fds']} fds")
    print(f"latency: {percentiles(run.latencies)}")
    record_property("figure", f"{CLIENTS} clients, {RUN_SECONDS} s: latency {percentiles(run.latencies)};"
                              f" RSS idle {rss_idle} kB, peak {peak['rss']} kB; fds idle {fds_idle},"
                              f" all connected {at_once.get('fds')}")
    assert not run.errors, f"{len(run.errors)} errors, first: {run.errors[:5]}"
    assert run.connected == CLIENTS
    assert at_once["fds"] >= fds_idle + 2 * CLIENTS, "the clients were not all connected at once"
    rss_after, fds_after = settle(load_gate, fds_idle, rss_idle)
    record_property("figure", f"after the clients left: RSS {rss_after} kB, {fds_after} fds")
    assert fds_after <= fds_idle + 2
    assert rss_after - rss_idle < 64 * 1024, f"RSS stayed {rss_after - rss_idle} kB above idle"
    total = int(load_pg.sql("SELECT sum(balance) FROM public.load_accounts"))
    assert total == 0, "transfers lost or duplicated"
    assert_serving(load_gate)


# ---- slow readers, fast writers --------------------------------------------------


def slow_reader(port, rows, result):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", port))
    c = pgwire.RawConn(sock=sock, timeout=60)
    try:
        c.login()
        c.send(pgwire.query(f"SELECT repeat('r', 1000) FROM generate_series(1, {rows})"))
        got = 0
        while True:
            chunk = c.sock.recv(8192)
            if not chunk:
                raise pgwire.ConnectionClosed("closed mid-result")
            got += len(chunk)
            c.buf += chunk
            if b"Z\x00\x00\x00\x05I" in c.buf[-64:]:
                break
            if len(c.buf) > 1 << 16:
                c.buf = c.buf[-64:]
            time.sleep(0.005)
        result.append(got)
    except Exception as e:  # noqa: BLE001
        result.append(e)
    finally:
        c.close()


def fast_writer(conninfo, n, result):
    try:
        with psycopg.connect(conninfo) as conn:
            with conn.cursor().copy("COPY public.load_events (client, payload) FROM STDIN") as cp:
                for i in range(20000):
                    cp.write_row((n, "w" * 200))
        result.append("ok")
    except Exception as e:  # noqa: BLE001
        result.append(e)


def test_slow_readers_and_fast_writers(load_pg, load_gate, record_property):
    rss_idle, fds_idle = idle_figures(load_gate, "idle")
    readers, writers = [], []
    threads = [threading.Thread(target=slow_reader, args=(load_gate.port, 5000, readers)) for _ in range(20)]
    threads += [threading.Thread(target=fast_writer, args=(load_gate.conninfo(), i, writers)) for i in range(10)]
    peak = rss_idle
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_kb(load_gate.proc.pid))
        time.sleep(0.1)
        assert time.monotonic() - t0 < 180, "slow readers and fast writers did not finish"
    elapsed = time.monotonic() - t0
    errors = [r for r in readers + writers if isinstance(r, Exception)]
    print(f"20 slow readers (5 MB each) and 10 COPY writers (4 MB each) in {elapsed:.1f}s;"
          f" uuidgate RSS idle {rss_idle} kB, peak {peak} kB")
    record_property("figure", f"20 slow readers x 5 MB and 10 COPY writers x 4 MB in {elapsed:.1f} s;"
                              f" RSS idle {rss_idle} kB, peak {peak} kB (bound: 3 MB a session)")
    assert not errors, errors[:5]
    assert len(readers) == 20 and len(writers) == 10
    # Backpressure bounds each session's buffering (RELAY_HIGH_WATER, 1 MB a
    # direction, plus what is being read); 3 MB a session leaves room for the
    # allocator keeping freed memory, not for a result buffered whole.
    sessions = len(readers) + len(writers)
    assert (peak - rss_idle) < sessions * 3 * 1024, \
        f"RSS grew by {(peak - rss_idle) // 1024} MB for {sessions} sessions"
    settle(load_gate, fds_idle, rss_idle)
    assert_serving(load_gate)


# ---- connect storm ------------------------------------------------------------------


def test_connect_storm_pgbench(load_pg, load_gate, record_property):
    env = dict(os.environ, PGHOST="127.0.0.1", PGUSER="postgres")
    pgbench = os.path.join(load_pg.bindir, "pgbench")
    subprocess.run([pgbench, "-i", "-s", "1", "-q", "-p", str(load_pg.port), "postgres"], env=env,
                   check=True, capture_output=True)
    rss_idle, fds_idle = idle_figures(load_gate, "idle")
    r = subprocess.run([pgbench, "-C", "-c", "16", "-j", "2", "-T", "5", "-S", "-p", str(load_gate.port),
                        "postgres"], env=env, capture_output=True, text=True, timeout=120)
    summary = [line for line in r.stdout.splitlines()
               if any(k in line for k in ("processed", "failed", "latency", "tps", "connection time"))]
    print("pgbench -C through uuidgate:\n  " + "\n  ".join(summary))
    record_property("figure", "pgbench -C -c 16 -T 5 -S: " + "; ".join(line.strip() for line in summary))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "number of failed transactions: 0" in r.stdout or "failed" not in r.stdout
    rss_after, _ = settle(load_gate, fds_idle, rss_idle)
    assert rss_after - rss_idle < 32 * 1024
    assert_serving(load_gate)
