"""Helpers for the gate, HTTP, admin console and replica tests: fresh V39
databases copied from a template, the HTTP endpoints, waiting on /status,
a session that holds a table lock (to keep a migration waiting for as long
as a test needs), clients that connect in the background, psql on the
admin console, and SCRAM for both the auth_file and a raw login."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import psycopg

import pgwire
from harness import free_port, pg_bindir
from migrate_helpers import run_migrate, v39

TEMPLATE_V39 = "gate_tpl_v39"
TEMPLATE_V40 = "gate_tpl_v40"
# A table in the middle of the seed's list: tables before it are migrated
# while a lock on it keeps the migration waiting.
BLOCKED_TABLE = "phoenix_kit_entities"
PSQL = os.path.join(pg_bindir(), "psql")

_templates = {}


def _ensure_templates(pg):
    """Loads the fixture once per cluster (scale 1) and migrates a second
    copy to 40; tests copy these, which takes a fraction of a load."""
    if _templates.get(pg.port):
        return
    for name in (TEMPLATE_V39, TEMPLATE_V40):
        pg.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg.sql(f"CREATE DATABASE {TEMPLATE_V39}")
    v39.load(pg.conninfo(dbname=TEMPLATE_V39), scale=1)
    pg.sql(f"CREATE DATABASE {TEMPLATE_V40} TEMPLATE {TEMPLATE_V39}")
    r = run_migrate(pg.conninfo(dbname=TEMPLATE_V40), "up")
    assert r.returncode == 0, r.stderr
    _templates[pg.port] = True


def copy_db(pg, name, template):
    _ensure_templates(pg)
    pg.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg.sql(f"CREATE DATABASE {name} TEMPLATE {template}")
    return pg.conninfo(dbname=name)


def v39_copy(pg, name):
    """A fresh PhoenixKit V39 database (about 6,000 rows)."""
    return copy_db(pg, name, TEMPLATE_V39)


def v40_copy(pg, name):
    """A fresh database already migrated to 40."""
    return copy_db(pg, name, TEMPLATE_V40)


def empty_db(pg, name):
    pg.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg.sql(f"CREATE DATABASE {name}")
    return pg.conninfo(dbname=name)


def gate_settings(**extra):
    """Settings for a uuidgate that migrates at start, with an HTTP port."""
    s = {"migrate_on_start": "yes", "http_listen": f"127.0.0.1:{free_port()}"}
    s.update({k: str(v) for k, v in extra.items()})
    return s


def http_port(gate):
    return int(gate.settings["http_listen"].rsplit(":", 1)[1])


def http_get(gate, path, method="GET"):
    """(status, content type, body text) of one request."""
    req = urllib.request.Request(f"http://127.0.0.1:{http_port(gate)}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def status(gate):
    code, ctype, body = http_get(gate, "/status")
    assert code == 200 and ctype.startswith("application/json"), (code, ctype, body)
    return json.loads(body)


def wait_status(gate, pred, timeout=30, what="condition"):
    """Polls /status until pred(status) holds; returns that status."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if gate.proc.poll() is not None:
            raise AssertionError(f"uuidgate exited with {gate.proc.returncode} waiting for {what};"
                                 f" log:\n{gate.log()[-4000:]}")
        try:
            last = status(gate)
        except (OSError, urllib.error.URLError):
            last = None
        if last is not None and pred(last):
            return last
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout}s; last status: {last}\nlog:\n{gate.log()[-4000:]}")


def wait_open(gate, timeout=60):
    return wait_status(gate, lambda s: s["gate"]["open"], timeout, "open gate")


def wait_held(gate, n=1, timeout=20):
    return wait_status(gate, lambda s: s["clients"]["held"] >= n, timeout, f"{n} held client(s)")


def wait_lock_wait(gate, timeout=30):
    """Until the migration is retrying a lock (on the table a TableLock holds)."""
    return wait_status(gate, lambda s: s["migration"]["lock_retries"] > 0, timeout, "lock retries")


class TableLock:
    """A session that holds ACCESS SHARE on a table in an open transaction:
    the migration's ADD COLUMN on it times out and retries until release()."""

    def __init__(self, conninfo, table=BLOCKED_TABLE):
        self.conn = psycopg.connect(conninfo)
        self.conn.execute(f"LOCK TABLE public.{table} IN ACCESS SHARE MODE")

    def release(self):
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class BackgroundClient(threading.Thread):
    """Connects through uuidgate in a thread and runs one query; result,
    error and the time it took are kept for the test to inspect."""

    def __init__(self, conninfo, sql="SELECT 1", connect_timeout=60):
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.sql = sql
        self.connect_timeout = connect_timeout
        self.rows = None
        self.columns = None
        self.error = None
        self.start()

    def run(self):
        try:
            with psycopg.connect(self.conninfo, connect_timeout=self.connect_timeout,
                                 autocommit=True) as conn:
                cur = conn.execute(self.sql)
                self.columns = [d.name for d in cur.description] if cur.description else []
                self.rows = cur.fetchall() if cur.description else []
        except Exception as e:  # noqa: BLE001 - the test inspects it
            self.error = e

    def result(self, timeout=60):
        self.join(timeout)
        assert not self.is_alive(), "the client is still waiting"
        return self


def raw_login_error(gate, dbname, user="postgres", password=None, timeout=30):
    """Logs in with the raw protocol client and returns the ErrorResponse
    fields it gets (fails the test if the login succeeds)."""
    with pgwire.RawConn(port=gate.port, timeout=timeout) as c:
        try:
            c.login(user=user, database=dbname, password=password)
        except pgwire.PgError as e:
            return e.fields
    raise AssertionError(f"login to {dbname} as {user} succeeded")


def sqlstate_of(exc):
    return getattr(getattr(exc, "diag", None), "sqlstate", None) or getattr(exc, "sqlstate", None)


def unix_dir(gate):
    return gate.settings["unix_socket_dir"]


def psql(gate, sql, dbname="uuidgate", user="postgres", password=None, unix=False, timeout=30):
    """Runs psql -At against uuidgate (TCP, or its Unix socket)."""
    host = unix_dir(gate) if unix else "127.0.0.1"
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    env.pop("PGPASSWORD", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run([PSQL, "-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-h", host,
                           "-p", str(gate.port), "-U", user, "-d", dbname, "-c", sql],
                          capture_output=True, text=True, timeout=timeout, env=env)


def admin_pairs(gate, command, **kw):
    """A two-column SHOW (key|value) as a dict, through psql on the Unix socket."""
    kw.setdefault("unix", True)
    r = psql(gate, command, **kw)
    assert r.returncode == 0, r.stderr
    return dict(line.split("|", 1) for line in r.stdout.splitlines() if line)


def admin_rows(gate, command, **kw):
    kw.setdefault("unix", True)
    r = psql(gate, command, **kw)
    assert r.returncode == 0, r.stderr
    return [line.split("|") for line in r.stdout.splitlines() if line]


# ---- SCRAM-SHA-256 (RFC 5802 / 7677) ----------------------------------------

def _b64(b):
    return base64.b64encode(b).decode()


def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def scram_secret(password, salt=None, iterations=4096):
    """A PostgreSQL-style SCRAM-SHA-256 verifier for an auth_file."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
    server = _hmac(salted, b"Server Key")
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored)}:{_b64(server)}"


def md5_secret(user, password):
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def scram_login(conn, user, database, password):
    """A full login over a pgwire.RawConn with SCRAM-SHA-256 (no channel
    binding). Returns the messages up to ReadyForQuery; raises PgError."""
    conn.send(pgwire.startup_packet({"user": user, "database": database}))
    mtype, payload = conn.read_message()
    if mtype == "E":
        raise pgwire.PgError(pgwire.parse_error(payload))
    assert mtype == "R" and int.from_bytes(payload[:4], "big") == pgwire.AUTH_SASL, (mtype, payload)
    assert b"SCRAM-SHA-256\0" in payload[4:], payload
    nonce = _b64(os.urandom(18))
    first_bare = f"n=,r={nonce}"
    conn.send(pgwire.sasl_initial_response("SCRAM-SHA-256", ("n,," + first_bare).encode()))
    mtype, payload = conn.read_message()
    if mtype == "E":
        raise pgwire.PgError(pgwire.parse_error(payload))
    assert mtype == "R" and int.from_bytes(payload[:4], "big") == 11, (mtype, payload)
    server_first = payload[4:].decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = _hmac(salted, b"Client Key")
    final_bare = f"c=biws,r={attrs['r']}"
    auth_message = f"{first_bare},{server_first},{final_bare}".encode()
    signature = _hmac(hashlib.sha256(client_key).digest(), auth_message)
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    conn.send(pgwire.message("p", f"{final_bare},p={_b64(proof)}".encode()))
    mtype, payload = conn.read_message()
    if mtype == "E":
        raise pgwire.PgError(pgwire.parse_error(payload))
    assert mtype == "R" and int.from_bytes(payload[:4], "big") == 12, (mtype, payload)
    server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
    assert payload[4:].decode() == f"v={_b64(server_signature)}", "wrong server signature"
    return conn.finish_login(user)


def write_auth_file(path, entries):
    with open(path, "w") as f:
        for user, secret in entries.items():
            f.write(f'"{user}" "{secret}"\n')
    os.chmod(path, 0o600)
    return path

