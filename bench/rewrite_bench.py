#!/usr/bin/env python3
"""The INSERT rewriter's cost, side by side in one run:

- UUIDv7 generation: uuidgate's C generator (build/protocol/uuidv7_bench) vs
  the database's gen_random_uuid(), uuidgate's public.uuid_generate_v7() and
  PhoenixKit's plpgsql uuid_generate_v7() (written here from its published
  description), per call;
- pgbench INSERT throughput through uuidgate with insert_uuid = always vs off,
  and through pgbouncer, in simple and prepared modes;
- non-INSERT traffic (pgbench -S) through uuidgate with the rewriter on vs off.

Usage: bench/rewrite_bench.py   (DURATION seconds per run, default 10; ROUNDS, default 3)
Not a test: prints figures and ratios, asserts nothing.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import BUILD_DIR, PgServer, Uuidgate, free_port, wait_for_port, running_as_root  # noqa: E402

DURATION = int(os.environ.get("DURATION", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CLIENTS = 8

PHOENIXKIT_V7 = """
CREATE OR REPLACE FUNCTION pk_uuid_generate_v7() RETURNS uuid AS $$
DECLARE
  ts bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
  b bytea := decode(lpad(to_hex(ts), 12, '0'), 'hex') || gen_random_bytes(10);
BEGIN
  b := set_byte(b, 6, (get_byte(b, 6) & 15) | 112);
  b := set_byte(b, 8, (get_byte(b, 8) & 63) | 128);
  RETURN encode(b, 'hex')::uuid;
END $$ LANGUAGE plpgsql VOLATILE;
"""

INSERT_SCRIPT = ("INSERT INTO phoenix_kit_settings (key, value, date_added, date_updated) "
                 "VALUES (md5(random()::text || :client_id), 'v', now(), now());\n")


def per_call_us(pg, db, expr, n=200000):
    t0 = time.monotonic()
    pg.sql(f"SELECT count({expr}) FROM generate_series(1, {n})", db)
    return (time.monotonic() - t0) * 1e6 / n


def c_generator_rate():
    exe = os.path.join(BUILD_DIR, "protocol", "uuidv7_bench")
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    return out.strip()


def pgbench(conninfo, mode, script=None, select_only=False):
    cmd = ["pgbench", "-n", "-M", mode, "-c", str(CLIENTS), "-j", "2", "-T", str(DURATION)]
    if select_only:
        cmd.append("-S")
    if script:
        cmd += ["-f", script]
    cmd.append(conninfo)
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    m = re.search(r"tps = ([\d.]+) \(without", out)
    return float(m.group(1)) if m else float("nan")


class Bouncer:
    def __init__(self, pg, base):
        self.port = free_port()
        self.dir = base
        ini = os.path.join(base, "pgbouncer.ini")
        with open(os.path.join(base, "users.txt"), "w") as f:
            f.write('"postgres" ""\n')
        with open(ini, "w") as f:
            f.write(f"[databases]\n* = host=127.0.0.1 port={pg.port}\n[pgbouncer]\n"
                    f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nauth_type = trust\n"
                    f"auth_file = {base}/users.txt\npool_mode = session\nmax_client_conn = 200\n"
                    f"default_pool_size = 50\nunix_socket_dir =\nlogfile = {base}/pgbouncer.log\n"
                    f"pidfile = {base}/pgbouncer.pid\n")
        os.chmod(base, 0o777)
        for name in os.listdir(base):
            os.chmod(os.path.join(base, name), 0o666)
        cmd = ["pgbouncer", "-d", ini]
        if running_as_root():
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True)
        wait_for_port(self.port)

    def stop(self):
        try:
            with open(os.path.join(self.dir, "pgbouncer.pid")) as f:
                os.kill(int(f.read().strip()), 15)
        except (OSError, ValueError):
            pass

    def conninfo(self, db):
        return f"host=127.0.0.1 port={self.port} dbname={db} user=postgres"


def median_tps(targets, mode, **kw):
    results = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, conninfo in targets.items():
            results[name].append(pgbench(conninfo, mode, **kw))
    return {name: statistics.median(v) for name, v in results.items()}


def main():
    pg = PgServer(settings={"max_connections": "200"}).init().start()
    base = tempfile.mkdtemp(prefix="uuidgate-rwbench-")
    gates = []
    bouncer = None
    try:
        pg.sql("CREATE DATABASE app")
        subprocess.run([os.path.join(ROOT, "tests", "fixtures", "load_v39.sh"), pg.conninfo("app"), "1"], check=True)
        subprocess.run([os.path.join(BUILD_DIR, "uuidgate"), "migrate", "up", "--upstream", pg.conninfo("app")],
                       check=True, capture_output=True)
        pg.sql(PHOENIXKIT_V7, "app")
        subprocess.run(["pgbench", "-i", "-q", "-s", "5", pg.conninfo("app")], check=True, capture_output=True)

        print("UUIDv7 generation:")
        print("  C generator:", c_generator_rate())
        for label, expr in (("gen_random_uuid()", "gen_random_uuid()"),
                            ("uuidgate's public.uuid_generate_v7()", "public.uuid_generate_v7()"),
                            ("PhoenixKit's plpgsql uuid_generate_v7()", "pk_uuid_generate_v7()")):
            print(f"  {label}: {per_call_us(pg, 'app', expr):.2f} us per call")

        script = os.path.join(base, "insert.sql")
        with open(script, "w") as f:
            f.write(INSERT_SCRIPT)
        on = Uuidgate(pg.conninfo("app"), settings={"insert_uuid": "always", "log_level": "info"}).start()
        off = Uuidgate(pg.conninfo("app"), settings={"insert_uuid": "off", "log_level": "info"}).start()
        gates = [on, off]
        bouncer = Bouncer(pg, base)
        targets = {"uuidgate rewrite on": on.conninfo("app"), "uuidgate rewrite off": off.conninfo("app"),
                   "pgbouncer": bouncer.conninfo("app")}
        for mode in ("simple", "prepared"):
            tps = median_tps(targets, mode, script=script)
            ratio = tps["uuidgate rewrite on"] / tps["uuidgate rewrite off"]
            print(f"INSERT {mode}: " + ", ".join(f"{k} {v:.0f} tps" for k, v in tps.items()) +
                  f"; on/off {ratio:.3f}; on/pgbouncer {tps['uuidgate rewrite on'] / tps['pgbouncer']:.3f}")
        for mode in ("simple", "extended"):
            tps = median_tps({k: v for k, v in targets.items() if k != "pgbouncer"}, mode, select_only=True)
            ratio = tps["uuidgate rewrite on"] / tps["uuidgate rewrite off"]
            print(f"SELECT -S {mode}: " + ", ".join(f"{k} {v:.0f} tps" for k, v in tps.items()) +
                  f"; on/off {ratio:.3f}")
        rewritten = on.log().count("event=rewrite ")
        print(f"(rewrite log lines at info level: {rewritten}; values are counted in /metrics)")
    finally:
        for g in gates:
            g.stop()
        if bouncer:
            bouncer.stop()
        pg.destroy()


if __name__ == "__main__":
    main()
