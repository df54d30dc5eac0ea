#!/usr/bin/python3
"""PhoenixKit's own V40 (one transaction) against `uuidgate migrate up`, on the
same generated V39 data, each under the same pgbench application workload.

    /usr/bin/python3 bench/migrate_bench.py [--scale 1000] [--clients 4] [--rate 200] [--workers 1,2]

Prints, per method: migration wall time, the longest and 99.9th-percentile
application transaction latency while it ran (pgbench per-transaction logs),
application errors, and the ratios uuidgate / reference; then the cost of one
uuid_generate_v7() call, PhoenixKit's PL/pgSQL against uuidgate's SQL."""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from harness import PgServer  # noqa: E402

MIGRATE = os.environ.get("UUIDGATE_MIGRATE_CMD", os.path.join(ROOT, "build", "migrate", "uuidgate-migrate")).split()
APP_SQL = os.path.join(ROOT, "bench", "migrate_app.sql")
CHUNK_S = 2


class App(threading.Thread):
    """pgbench in back-to-back chunks, each writing its own per-transaction
    log (pgbench only flushes its log at a normal exit)."""

    def __init__(self, pg, db, args, logdir):
        super().__init__(daemon=True)
        self.pg, self.db, self.args, self.logdir = pg, db, args, logdir
        self.stop = threading.Event()
        self.errors = []
        self.chunks = 0

    def run(self):
        while not self.stop.is_set():
            prefix = os.path.join(self.logdir, f"chunk{self.chunks:05d}")
            self.chunks += 1
            cmd = [os.path.join(self.pg.bindir, "pgbench"), "-n", "-M", "prepared",
                   "-c", str(self.args.clients), "-j", str(min(self.args.clients, 2)),
                   "-T", str(CHUNK_S), "-R", str(self.args.rate), "-D", f"scale={self.args.scale}",
                   "-f", APP_SQL, "--log", "--log-prefix", prefix,
                   "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres", self.db]
            r = subprocess.run(cmd, capture_output=True, text=True)
            for line in r.stderr.splitlines():
                if "aborted" in line or "ERROR" in line or "error" in line.lower():
                    self.errors.append(line)

    def latencies(self, t0, t1, with_end=False):
        """Latencies in ms of transactions that ran within [t0, t1]."""
        out = []
        for path in glob.glob(os.path.join(self.logdir, "chunk*")):
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 6 or parts[2] == "skipped":
                        continue
                    end = int(parts[4]) + int(parts[5]) / 1e6
                    lat_ms = int(parts[2]) / 1000.0
                    if end >= t0 and end - lat_ms / 1000.0 <= t1:
                        out.append((lat_ms, end) if with_end else lat_ms)
        return sorted(out)


def psql(pg, db, *args):
    subprocess.run([os.path.join(pg.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", pg.conninfo(dbname=db), *args], check=True, capture_output=True, text=True)


def stats(lat):
    if not lat:
        return float("nan"), float("nan")
    return lat[-1], lat[min(len(lat) - 1, int(len(lat) * 0.999))]


def explain_stalls(app, t0, t1, logfile, n=3):
    """The worst transactions and what the migration was doing just before."""
    events = []
    if logfile and os.path.exists(logfile):
        import datetime
        with open(logfile) as f:
            for line in f:
                try:
                    ts = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
                except ValueError:
                    continue
                ts = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
                events.append((ts, line[25:].strip()))
    out = []
    for lat, end in sorted(app.latencies(t0, t1, with_end=True), reverse=True)[:n]:
        start = end - lat / 1000.0
        before = [e for e in events if e[0] <= start + 0.001 and "progress:" not in e[1]]
        what = before[-1][1] if before else "?"
        out.append(f"    {lat:8.1f} ms at +{start - t0:6.1f}s; migration: {what[:110]}")
    return out


def run_method(pg, args, name, migrate):
    db = f"bench_{name}"
    pg.sql(f"DROP DATABASE IF EXISTS {db}")
    pg.sql(f"CREATE DATABASE {db} TEMPLATE bench_v39")
    psql(pg, db, "-c", "VACUUM ANALYZE")
    logdir = tempfile.mkdtemp(prefix=f"bench-{name}-")
    app = App(pg, db, args, logdir)
    app.start()
    time.sleep(1)
    b0 = time.time()
    time.sleep(args.baseline)  # the application alone: the machine's noise floor
    t0 = time.time()
    logfile = migrate(db)
    t1 = time.time()
    time.sleep(1)
    app.stop.set()
    app.join()
    lat = app.latencies(t0, t1)
    base_max, base_p999 = stats(app.latencies(b0, t0))
    mx, p999 = stats(lat)
    stalls = explain_stalls(app, t0, t1, logfile)
    errors = [e for e in app.errors]
    shutil.rmtree(logdir, ignore_errors=True)
    return {"name": name, "db": db, "wall": t1 - t0, "max": mx, "p999": p999, "txns": len(lat),
            "errors": len(errors), "error_lines": errors[:5], "base_max": base_max,
            "base_p999": base_p999, "stalls": stalls}


def reference(pg):
    def go(db):
        psql(pg, db, "-f", os.path.join(ROOT, "tests", "fixtures", "phoenixkit_v40.sql"))
        return None
    return go


def uuidgate(pg, extra, logfile):
    def go(db):
        with open(logfile, "w") as log:
            r = subprocess.run(MIGRATE + ["up", "--upstream", pg.conninfo(dbname=db)] + extra,
                               stdout=subprocess.DEVNULL, stderr=log)
        if r.returncode != 0:
            with open(logfile) as log:
                raise SystemExit(f"uuidgate migrate up failed ({r.returncode}):\n{log.read()[-3000:]}")
        return logfile
    return go


def function_cost_us(pg, db, n=300000):
    out = subprocess.run([os.path.join(pg.bindir, "psql"), "-X", "-A", "-t", "-d", pg.conninfo(dbname=db),
                          "-c", "\\timing on", "-c",
                          f"SELECT count(public.uuid_generate_v7()) FROM generate_series(1, {n})"],
                         check=True, capture_output=True, text=True).stdout
    ms = [float(line.split()[1]) for line in out.splitlines() if line.startswith("Time:")][-1]
    return ms * 1000.0 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rate", type=int, default=200, help="application transactions per second")
    ap.add_argument("--workers", default="1,2", help="uuidgate runs, one per worker count")
    ap.add_argument("--baseline", type=float, default=5, help="seconds of application alone first")
    ap.add_argument("--log", default="/tmp/uuidgate-migrate-bench.log", help="uuidgate's log")
    args = ap.parse_args()

    pg = PgServer(settings={"max_wal_size": "'4GB'", "checkpoint_timeout": "'15min'"}).init().start()
    try:
        print(f"loading V39 fixture at scale {args.scale} ...", flush=True)
        pg.sql("CREATE DATABASE bench_v39")
        subprocess.run([os.path.join(ROOT, "tests", "fixtures", "load_v39.sh"),
                        pg.conninfo(dbname="bench_v39"), str(args.scale)], check=True)
        rows = pg.sql("SELECT sum(n_live_tup) FROM pg_stat_user_tables", dbname="bench_v39")
        print(f"  {rows} rows; app: pgbench -M prepared, {args.clients} clients, {args.rate} tps", flush=True)

        results = [run_method(pg, args, "reference", reference(pg))]
        for w in [int(x) for x in args.workers.split(",")]:
            results.append(run_method(pg, args, f"uuidgate_w{w}",
                                      uuidgate(pg, ["--workers", str(w)], f"{args.log}.w{w}")))
        print()
        print(f"{'method':<12} {'wall s':>8} {'max ms':>9} {'p99.9 ms':>9} {'txns':>7} {'errors':>7}"
              f"   (app alone before: max, p99.9 ms)")
        for r in results:
            print(f"{r['name']:<12} {r['wall']:>8.1f} {r['max']:>9.1f} {r['p999']:>9.1f} "
                  f"{r['txns']:>7} {r['errors']:>7}   ({r['base_max']:.1f}, {r['base_p999']:.1f})")
            for e in r["error_lines"]:
                print(f"    {e}")
        ref = results[0]
        for ug in results[1:]:
            print(f"\n{ug['name']}: slowest application transactions:")
            for line in ug["stalls"]:
                print(line)
            print(f"ratios {ug['name']}/reference: wall {ug['wall'] / ref['wall']:.2f}x, "
                  f"longest stall {ug['max'] / ref['max']:.3f}x, p99.9 {ug['p999'] / ref['p999']:.3f}x")
            print(f"targets: longest stall <= 100 ms: {'met' if ug['max'] <= 100 else 'NOT met'}; "
                  f"wall <= 2x reference: {'met' if ug['wall'] <= 2 * ref['wall'] else 'NOT met'}")
        ref_us = function_cost_us(pg, ref["db"])
        ug_us = function_cost_us(pg, results[1]["db"])
        print(f"uuid_generate_v7(): PhoenixKit PL/pgSQL {ref_us:.2f} us/call, uuidgate SQL "
              f"{ug_us:.2f} us/call ({ref_us / ug_us:.1f}x faster)")
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
