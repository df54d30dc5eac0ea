#!/usr/bin/env python3
"""Start-up to gate open, measured side by side in one run.

1. A database already at version 40: how long from starting uuidgate until the
   gate is open (uuidgate's own `gate_open ... after_ms=` and the wall time
   until a first query through it succeeds), repeated.
2. The V39 fixture at SCALE (default 250: about 1.1 M rows): `uuidgate migrate
   up` alone, then uuidgate starting on an identical copy with clients
   connecting throughout (one new connection every 100 ms, each waiting at the
   gate), reporting the time to gate open, its ratio to `migrate up` alone,
   and the longest time a held client waited.

Usage: bench/gate_bench.py [SCALE]   (not a test: no assertions)
"""

import os
import re
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import psycopg  # noqa: E402

from harness import PgServer, Uuidgate, UUIDGATE_BIN  # noqa: E402

SCALE = int(sys.argv[1]) if len(sys.argv) > 1 else 250
REPEATS = 10


def load_fixture(pg, db, scale):
    pg.sql(f"CREATE DATABASE {db}")
    subprocess.run([os.path.join(ROOT, "tests", "fixtures", "load_v39.sh"), pg.conninfo(db), str(scale)],
                   check=True)


def copy_db(pg, src, dst):
    pg.sql(f"CREATE DATABASE {dst} TEMPLATE {src}")


def gate_open_ms(gate, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"event=gate_open .*after_ms=(\d+)", gate.log())
        if m:
            return int(m.group(1))
        time.sleep(0.01)
    raise RuntimeError("gate did not open:\n" + gate.log()[-2000:])


def first_query_ms(gate, db, started):
    while True:
        try:
            with psycopg.connect(gate.conninfo(db), connect_timeout=600) as conn:
                conn.execute("SELECT 1")
                return (time.monotonic() - started) * 1000
        except psycopg.OperationalError:
            time.sleep(0.005)


def bench_at_40(pg):
    load_fixture(pg, "at40", 1)
    subprocess.run([UUIDGATE_BIN, "migrate", "up", "--upstream", pg.conninfo("at40")], check=True,
                   capture_output=True)
    internal, wall = [], []
    for _ in range(REPEATS):
        gate = Uuidgate(pg.conninfo("at40"), settings={"migrate_on_start": "yes", "log_level": "info"})
        started = time.monotonic()
        gate.start(wait=False)
        wall.append(first_query_ms(gate, "at40", started))
        internal.append(gate_open_ms(gate))
        gate.stop()
    internal.sort()
    wall.sort()
    print(f"database at 40, {REPEATS} starts: gate open after median {internal[len(internal) // 2]} ms "
          f"(max {internal[-1]} ms) by uuidgate's clock; first query through it after median "
          f"{wall[len(wall) // 2]:.0f} ms (max {wall[-1]:.0f} ms) from process start")


class Arrivals(threading.Thread):
    """Opens a new client connection every 100 ms until told to stop; each one
    waits at the gate and records how long it waited."""

    def __init__(self, gate, db):
        super().__init__(daemon=True)
        self.gate, self.db = gate, db
        self.waits, self.errors = [], []
        self.stop = threading.Event()
        self.threads = []

    def one(self):
        t0 = time.monotonic()
        try:
            with psycopg.connect(self.gate.conninfo(self.db), connect_timeout=900) as conn:
                conn.execute("SELECT 1")
            self.waits.append(time.monotonic() - t0)
        except psycopg.Error as e:
            self.errors.append(str(e))

    def run(self):
        while not self.stop.is_set():
            t = threading.Thread(target=self.one, daemon=True)
            t.start()
            self.threads.append(t)
            time.sleep(0.1)


def bench_migration(pg):
    load_fixture(pg, "v39tpl", SCALE)
    rows = pg.sql("SELECT sum(n_live_tup) FROM pg_stat_user_tables", "v39tpl")
    copy_db(pg, "v39tpl", "alone")
    copy_db(pg, "v39tpl", "gated")
    t0 = time.monotonic()
    subprocess.run([UUIDGATE_BIN, "migrate", "up", "--upstream", pg.conninfo("alone")], check=True,
                   capture_output=True)
    alone = time.monotonic() - t0

    gate = Uuidgate(pg.conninfo("gated"), settings={"migrate_on_start": "yes", "log_level": "info",
                                                     "gate_timeout": "1h", "max_client_conn": "2000"})
    gate.start()
    arrivals = Arrivals(gate, "gated")
    arrivals.start()
    opened = gate_open_ms(gate, timeout=3600) / 1000
    arrivals.stop.set()
    arrivals.join()
    for t in arrivals.threads:
        t.join(60)
    gate.stop()
    longest = max(arrivals.waits) if arrivals.waits else float("nan")
    print(f"fixture scale {SCALE} ({rows} rows): migrate up alone {alone:.2f} s; "
          f"start to gate open with clients arriving {opened:.2f} s "
          f"(ratio {opened / alone:.2f}); {len(arrivals.waits)} held clients, longest wait {longest:.2f} s, "
          f"{len(arrivals.errors)} errors")


def main():
    pg = PgServer(settings={"max_connections": "400", "shared_buffers": "512MB",
                            "max_wal_size": "4GB", "checkpoint_timeout": "30min"}).init().start()
    try:
        bench_at_40(pg)
        bench_migration(pg)
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
