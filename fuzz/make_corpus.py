#!/usr/bin/python3
"""Builds the fuzz seed corpora from real sessions.

Starts a private PostgreSQL (the integration tests' harness), puts a small
recording TCP forwarder in front of it, drives real clients through it (psql,
pgbench with the simple, extended and prepared protocols, psycopg with
SCRAM, COPY, pipelines and a cancel), then splits the recorded byte streams
into seeds for each target under fuzz/corpus/<target>/. Seeds made this way
are named cap_*; hand-written seeds are left alone.

    /usr/bin/python3 fuzz/make_corpus.py
"""

import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import PgServer, free_port  # noqa: E402

SSL_CODE = (1234 << 16) | 5679
GSS_CODE = (1234 << 16) | 5680
CANCEL_CODE = (1234 << 16) | 5678


class Recorder:
    """A TCP forwarder on loopback that keeps both directions of every
    connection."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.sessions = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.upstream_port))
            rec = {"c2s": bytearray(), "s2c": bytearray()}
            with self.lock:
                self.sessions.append(rec)
            threading.Thread(target=self._pump, args=(c, s, rec["c2s"]), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, rec["s2c"]), daemon=True).start()

    @staticmethod
    def _pump(src, dst, log):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                log.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def split_startup(stream):
    """The untyped packets at the start of a client stream, and where the
    typed messages begin. After an SSLRequest or GSSENCRequest the server
    answers one byte; the client carries on with another untyped packet."""
    packets, off = [], 0
    while off + 8 <= len(stream):
        (n, code) = struct.unpack("!II", stream[off:off + 8])
        packets.append(bytes(stream[off:off + n]))
        off += n
        if code not in (SSL_CODE, GSS_CODE):
            break
    return packets, off


def split_typed(stream, off=0):
    msgs = []
    while off + 5 <= len(stream):
        (n,) = struct.unpack("!I", stream[off + 1:off + 5])
        if off + 1 + n > len(stream):
            break
        msgs.append((chr(stream[off]), bytes(stream[off + 5:off + 1 + n]), bytes(stream[off:off + 1 + n])))
        off += 1 + n
    return msgs


def server_start(stream, client_packets):
    """Skips the one-byte answers to SSLRequest/GSSENCRequest."""
    skip = sum(1 for p in client_packets if len(p) == 8 and struct.unpack("!I", p[4:8])[0] in (SSL_CODE, GSS_CODE))
    return skip


def run(cmd, env=None, check=True, stdin=None):
    return subprocess.run(cmd, env=env, check=check, capture_output=True, text=True, input=stdin)


def drive_clients(pg, port):
    """Real client traffic through the recorder."""
    import psycopg

    dsn = f"host=127.0.0.1 port={port} dbname=postgres user=postgres sslmode=disable"
    scram = f"host=127.0.0.1 port={port} dbname=postgres user=u_scram password=pw-scram sslmode=disable"
    psql = os.path.join(pg.bindir, "psql")
    pgbench = os.path.join(pg.bindir, "pgbench")
    # An SSLRequest answered 'N' (the server has no TLS), then plaintext.
    run([psql, "-X", "-d", f"host=127.0.0.1 port={port} dbname=postgres user=postgres sslmode=prefer",
         "-c", "SELECT 1"])
    run([psql, "-X", "-d", dsn, "-c",
         "CREATE TABLE IF NOT EXISTS t (id bigserial PRIMARY KEY, name text, inserted_at timestamptz DEFAULT now());"
         "INSERT INTO t (name) VALUES ('a'), ('b');"
         "GRANT ALL ON t TO u_scram; GRANT ALL ON SEQUENCE t_id_seq TO u_scram;"
         "SELECT * FROM t;"])
    run([psql, "-X", "-d", dsn, "-c", "SELECT 1/0"], check=False)
    run([psql, "-X", "-d", dsn, "-c", "DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$"])
    run([psql, "-X", "-d", dsn, "-c", "\\copy t (name) FROM pstdin"], stdin="x\ny\n")
    run([psql, "-X", "-d", dsn, "-c", "COPY t TO STDOUT"])
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="postgres", PGSSLMODE="disable")
    run([pgbench, "-i", "-s", "1", "-q", "postgres"], env=env)
    for mode in ("simple", "extended", "prepared"):
        run([pgbench, "-M", mode, "-t", "5", "-c", "1", "postgres"], env=env)
    with psycopg.connect(scram) as conn:
        conn.execute("SELECT %s::int, %s::text", (1, "x")).fetchall()
        conn.execute("INSERT INTO public.t (name) VALUES (%s)", ("scram",), prepare=True)
        conn.execute("INSERT INTO public.t (name) VALUES (%s)", ("scram",), prepare=True)
        with conn.pipeline():
            conn.execute("SELECT 1")
            conn.execute("INSERT INTO t (name) VALUES (%s) RETURNING id", ("p",))
        try:
            conn.execute("SELECT * FROM no_such_table WHERE x = %s", (1,))
        except psycopg.Error:
            conn.rollback()
        with conn.cursor().copy("COPY t (name) FROM STDIN") as cp:
            cp.write_row(("copied",))
    with psycopg.connect(dsn) as conn:
        def cancel_soon():
            time.sleep(0.3)
            conn.cancel()
        threading.Thread(target=cancel_soon).start()
        try:
            conn.execute("SELECT pg_sleep(5)")
        except psycopg.Error:
            pass
    # A failed login.
    run([psql, "-X", "-d", dsn.replace("user=postgres", "user=nobody"), "-c", "SELECT 1"], check=False)
    time.sleep(0.5)


def write_seed(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def short(data):
    return hashlib.sha1(data).hexdigest()[:10]


def stmtmap_events(client_msgs, server_msgs):
    """A session's messages in fuzz_stmtmap's event encoding (client messages
    first, then the server's replies: the order pipelining allows)."""
    names = {b"": 0, b"s1": 1, b"s2": 2}
    out = bytearray()
    for t, body, _ in client_msgs:
        name = names.get(body.split(b"\0", 1)[0], 3) if t in "PC" else 0
        if t == "P":
            out.append(0 | name << 3 | 0x20)
        elif t == "C" and body[:1] == b"S":
            out.append(1 | names.get(body[1:].split(b"\0", 1)[0], 3) << 3)
        elif t in "BDEC":
            out.append(2 | (0x20 if t == "D" and body[:1] == b"S" else 0))
        elif t == "S":
            out.append(3)
        elif t == "Q":
            out.append(4)
            out += body.rstrip(b"\0") + b"\0"
        elif t == "F":
            out.append(5)
    for t, _, _ in server_msgs:
        i = "123CEIntsZTDN".find(t)
        if i >= 0:
            out.append(6 | i << 3)
    return bytes(out)


def split(sessions, out_stats):
    for target in ("fuzz_startup", "fuzz_framing", "fuzz_errorfields", "fuzz_sasl", "fuzz_stmtmap",
                   "fuzz_authmsg", "fuzz_rewrite"):
        d = os.path.join(HERE, "corpus", target)
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.startswith("cap_"):
                    os.unlink(os.path.join(d, f))
    seen = set()

    def seed(target, data):
        key = (target, data)
        if key in seen or not data:
            return
        seen.add(key)
        write_seed(target, f"cap_{short(data)}", data)
        out_stats[target] = out_stats.get(target, 0) + 1

    for rec in sessions:
        c2s, s2c = bytes(rec["c2s"]), bytes(rec["s2c"])
        packets, off = split_startup(c2s)
        for p in packets:
            seed("fuzz_startup", p)
        cmsgs = split_typed(c2s, off)
        smsgs = split_typed(s2c, server_start(s2c, packets))
        # Framing: both directions whole (capped), with the three limits.
        for limit, stream in ((1, c2s[off:]), (2, s2c[server_start(s2c, packets):])):
            seed("fuzz_framing", bytes([limit, len(stream) & 0xff, 7]) + stream[:4096])
        for t, body, _ in smsgs:
            if t in "EN":
                seed("fuzz_errorfields", body)
            if t == "R":
                code = struct.unpack("!I", body[:4])[0]
                seed("fuzz_authmsg", bytes([0]) + body)
                if code == 10:
                    seed("fuzz_sasl", bytes([1]) + body)
        for t, body, _ in cmsgs:
            if t == "p":
                seed("fuzz_authmsg", bytes([2]) + body)
                seed("fuzz_authmsg", bytes([3]) + body)
                seed("fuzz_sasl", bytes([0]) + body)
            if t == "Q":
                seed("fuzz_rewrite", body.rstrip(b"\0"))
            if t == "P":
                sql = body.split(b"\0", 2)[1]
                seed("fuzz_rewrite", sql)
        ev = stmtmap_events(cmsgs, smsgs)
        seed("fuzz_stmtmap", ev[:2048])


def fixed_seeds():
    """Shapes the clients above never send, and the real configuration files."""
    write_seed("fuzz_startup", "gssenc_request", struct.pack("!II", 8, GSS_CODE))
    write_seed("fuzz_startup", "cancel_32_byte_key", struct.pack("!III", 44, CANCEL_CODE, 4242) + bytes(range(32)))
    body = struct.pack("!I", 3 << 16 | 2) + b"user\0app\0database\0app\0_pq_.test\0x\0\0"
    write_seed("fuzz_startup", "protocol_3_2_option", struct.pack("!I", len(body) + 4) + body)
    with open(os.path.join(ROOT, "conf", "uuidgate.ini"), "rb") as f:
        write_seed("fuzz_config", "sample_config", f.read())
    write_seed("fuzz_config", "small", b"[uuidgate]\nlisten_addr = 127.0.0.1\nlisten_port = 6432\n"
               b"upstream = host=127.0.0.1 port=5432 dbname=app\nmigrate_on_start = yes\n"
               b"migrate_batch_pause = 500ms\ngate_timeout = 15m\ninsert_uuid = window\n"
               b"insert_uuid_until = 2026-12-31T00:00:00+02:00\nmax_packet_size = 64MB\n"
               b"auth_type = scram-sha-256\nauth_file = /etc/uuidgate/userlist.txt\n")
    write_seed("fuzz_config", "duration", b"1500ms")
    write_seed("fuzz_config", "timestamp", b"2026-12-01 00:00:00Z")


def main():
    from conftest import auth_hba_lines, create_auth_roles  # noqa: E402
    pg = PgServer(hba=auth_hba_lines()).init().start()
    try:
        create_auth_roles(pg)
        rec = Recorder(pg.port)
        drive_clients(pg, rec.port)
        rec.sock.close()
        stats = {}
        split(rec.sessions, stats)
        fixed_seeds()
        for target in sorted(stats):
            print(f"{target}: {stats[target]} seeds from {len(rec.sessions)} sessions")
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
