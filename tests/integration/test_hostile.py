"""Hostile clients: malformed packets of every shape before and after login,
absurd lengths, huge startup packets and Binds, slow senders, a client that
never reads, guessed cancel keys, plaintext after SSLRequest, a search_path
crafted against the proxy's own login probe, non-admins at the admin
console, and the security defaults (TLS 1.2+, no secrets in the log, file
permission warnings).

Each case must end in a clear ErrorResponse or a clean close, and the proxy
must go on serving an ordinary client afterwards."""

import hashlib
import os
import random
import socket
import ssl
import struct
import subprocess
import time
import warnings

import psycopg
import pytest

import pgwire
from conftest import auth_hba_lines, create_auth_roles
from gate_helpers import PSQL, scram_login, scram_secret, write_auth_file
from harness import PgServer, make_tmpdir
from pgwire import (CANCEL_REQUEST_CODE, ConnectionClosed, RawConn, cancel_request, message,
                    raw_header, ssl_request, startup_packet)
from robust_helpers import assert_serving, rss_kb

LOGIN_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def gate(pg, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=pg.conninfo(), settings={"client_login_timeout": f"{LOGIN_TIMEOUT_S}s"})


def expect_refused(conn, timeout=8.0):
    """Reads until the proxy closes; returns the ErrorResponses it sent first.
    Fails when it neither answers nor closes in time."""
    errors = []
    deadline = time.monotonic() + timeout
    conn.sock.settimeout(timeout)
    try:
        while time.monotonic() < deadline:
            mtype, payload = conn.read_message()
            if mtype == "E":
                errors.append(pgwire.parse_error(payload))
    except ConnectionClosed:
        return errors
    except (socket.timeout, TimeoutError):
        pass
    except OSError:
        return errors
    raise AssertionError(f"the proxy neither refused nor closed within {timeout}s (errors so far: {errors})")


# ---- the startup phase ------------------------------------------------------

STARTUP_SHAPES = {
    "length_0": struct.pack("!I", 0) + b"\0" * 8,
    "length_3": struct.pack("!I", 3) + b"\0" * 8,
    "length_4": struct.pack("!I", 4) + b"\0" * 8,
    "length_2^31-1": struct.pack("!I", 0x7FFFFFFF) + struct.pack("!I", 3 << 16),
    "length_negative": struct.pack("!i", -8) + struct.pack("!I", 3 << 16),
    "length_2^32-1": struct.pack("!I", 0xFFFFFFFF) + struct.pack("!I", 3 << 16),
    "version_2_0": startup_packet({"user": "postgres"}, major=2),
    "version_4_0": startup_packet({"user": "postgres"}, major=4),
    "version_1234_9999": struct.pack("!II", 8, (1234 << 16) | 9999),
    "no_user": startup_packet({"database": "postgres"}),
    "unterminated_params": (lambda b: struct.pack("!I", len(b) + 4) + b)(
        struct.pack("!I", 3 << 16) + b"user\0postgres\0database\0post"),
    "value_without_name_end": (lambda b: struct.pack("!I", len(b) + 4) + b)(
        struct.pack("!I", 3 << 16) + b"user"),
    "empty_name": (lambda b: struct.pack("!I", len(b) + 4) + b)(
        struct.pack("!I", 3 << 16) + b"\0postgres\0user\0postgres\0\0"),
    "cancel_short": struct.pack("!III", 12, CANCEL_REQUEST_CODE, 1),
    "cancel_oversized_key": struct.pack("!II", 8 + 4 + 300, CANCEL_REQUEST_CODE) + b"\1" * 304,
    "ssl_request_with_body": struct.pack("!III", 12, (1234 << 16) | 5679, 0),
    "startup_10001_bytes": (lambda b: struct.pack("!I", len(b) + 4) + b)(
        struct.pack("!I", 3 << 16) + b"user\0postgres\0x\0" + b"y" * (10001 - 4 - 4 - 16 - 2) + b"\0\0"),
    "typed_message_first": pgwire.query("SELECT 1"),
    "tls_client_hello_first": bytes.fromhex("16030100f4010000f00303") + b"\0" * 64,
    "http_request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
}


@pytest.mark.parametrize("shape", sorted(STARTUP_SHAPES))
def test_malformed_startup_refused(gate, shape):
    data = STARTUP_SHAPES[shape]
    if shape == "startup_10001_bytes":
        assert len(data) == 10001
    with RawConn(port=gate.port) as c:
        try:
            c.send(data)
        except OSError:
            pass  # refused before all was sent
        errors = expect_refused(c)
        for e in errors:
            assert e.get("S") == "FATAL" and e.get("C"), e
    assert_serving(gate)


def test_startup_packet_of_10000_bytes_is_accepted(gate):
    """The limit is the server's own (10,000 bytes); one byte more is refused
    above."""
    body = struct.pack("!I", 3 << 16) + b"user\0postgres\0database\0postgres\0application_name\0"
    pad = 10000 - 4 - len(body) - 2
    body += b"a" * pad + b"\0\0"
    packet = struct.pack("!I", len(body) + 4) + body
    assert len(packet) == 10000
    with RawConn(port=gate.port) as c:
        c.send(packet)
        try:
            c.finish_login()
        except pgwire.PgError as e:
            # the server may refuse a 63+ byte application_name only by truncating it
            pytest.fail(f"refused: {e}")
        rows, _ = c.simple_query("SELECT 1")
        assert rows == [["1"]]


# ---- typed messages before and after login -----------------------------------

BAD_LENGTHS = {"0": 0, "3": 3, "2^31-1": 0x7FFFFFFF, "negative": 0x80000000, "minus_1": 0xFFFFFFFF}


@pytest.mark.parametrize("name", sorted(BAD_LENGTHS))
def test_bad_length_during_login(pg_auth, module_uuidgate_factory, name):
    gate = login_gate(pg_auth, module_uuidgate_factory)
    with RawConn(port=gate.port) as c:
        c.send(startup_packet({"user": "u_md5", "database": "postgres"}))
        mtype, _ = c.read_message()
        assert mtype == "R"
        c.send(raw_header("p", BAD_LENGTHS[name]) + b"xxxx")
        errors = expect_refused(c)
        assert all(e.get("C") == "08P01" for e in errors), errors
    assert_serving(gate)


_login_gates = {}


def login_gate(pg_auth, factory):
    """One proxy in front of the password-checking cluster for the module."""
    if id(pg_auth) not in _login_gates or not _login_gates[id(pg_auth)].running():
        _login_gates[id(pg_auth)] = factory(upstream=pg_auth.conninfo(),
                                            settings={"client_login_timeout": f"{LOGIN_TIMEOUT_S}s"})
    return _login_gates[id(pg_auth)]


@pytest.mark.parametrize("name", sorted(BAD_LENGTHS))
@pytest.mark.parametrize("mtype", ["Q", "P", "B", "X", "d", "?"])
def test_bad_length_after_login(gate, name, mtype):
    with RawConn(port=gate.port) as c:
        c.login()
        c.send(raw_header(mtype, BAD_LENGTHS[name]) + b"\0" * 16)
        errors = expect_refused(c)
        assert all(e.get("S") == "FATAL" for e in errors), errors
    assert_serving(gate)


def test_unknown_message_type_reaches_the_server_not_the_proxy(gate):
    """A well-framed message of an unknown type is the server's to refuse."""
    with RawConn(port=gate.port) as c:
        c.login()
        c.send(message("~", b"junk"))
        errors = expect_refused(c)
        assert errors and errors[0]["C"] == "08P01", errors
    assert_serving(gate)


def test_truncated_message_then_close(gate):
    """A client that announces 1 MB and leaves after 10 bytes."""
    with RawConn(port=gate.port) as c:
        c.login()
        c.send(raw_header("Q", 1 << 20) + b"SELECT 1; ")
    assert_serving(gate)


def test_garbage_stream_after_login(gate):
    rnd = random.Random(1234)
    for _ in range(5):
        with RawConn(port=gate.port) as c:
            c.login()
            try:
                c.send(bytes(rnd.getrandbits(8) for _ in range(4096)))
            except OSError:
                pass
            expect_refused(c, timeout=15)
    assert_serving(gate)


def _bind(n_params, value=b"1"):
    body = b"\0\0" + struct.pack("!h", 0)
    body += struct.pack("!h", n_params)
    for _ in range(n_params):
        body += struct.pack("!i", len(value)) + value
    body += struct.pack("!h", 0)
    return message("B", body)


def test_bind_with_10000_parameters(gate):
    n = 10000
    sql = "SELECT pg_catalog.array_length(ARRAY[" + ",".join(f"${i}::int" for i in range(1, n + 1)) + "], 1)"
    with RawConn(port=gate.port, timeout=30) as c:
        c.login()
        c.send(message("P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0)) + _bind(n) +
               message("E", b"\0" + struct.pack("!i", 0)) + message("S"))
        rows = []
        while True:
            mtype, payload = c.read_message()
            assert mtype != "E", pgwire.parse_error(payload)
            if mtype == "D":
                rows.append(payload)
            if mtype == "Z":
                break
        assert len(rows) == 1 and rows[0].endswith(b"10000")
    assert_serving(gate)


def test_bind_claiming_more_parameters_than_it_carries(gate):
    with RawConn(port=gate.port) as c:
        c.login()
        c.send(message("P", b"\0SELECT $1::int\0" + struct.pack("!h", 0)))
        body = b"\0\0" + struct.pack("!h", 0) + struct.pack("!h", 10000) + struct.pack("!i", 1) + b"1"
        c.send(message("B", body) + message("S"))
        errors = []
        while True:
            mtype, payload = c.read_message()
            if mtype == "E":
                errors.append(pgwire.parse_error(payload))
            if mtype == "Z":
                break
        assert errors and errors[0]["C"] == "08P01", errors
    assert_serving(gate)


# ---- slow and stubborn clients ---------------------------------------------------


def test_one_byte_per_second_is_cut_by_login_timeout(gate, record_property):
    packet = startup_packet({"user": "postgres", "database": "postgres"})
    start = time.monotonic()
    closed_at = None
    with RawConn(port=gate.port) as c:
        for b in packet:
            try:
                c.send(bytes([b]))
            except OSError:
                closed_at = time.monotonic()
                break
            if c.is_closed(timeout=1.0):
                closed_at = time.monotonic()
                break
        else:
            pytest.fail("the whole packet went through one byte a second")
    assert closed_at is not None
    record_property("figure", f"cut after {closed_at - start:.1f} s (client_login_timeout = {LOGIN_TIMEOUT_S}s)")
    assert closed_at - start < LOGIN_TIMEOUT_S + 3, f"cut after {closed_at - start:.1f}s"
    assert_serving(gate)


def test_client_that_never_reads_a_100mb_result(gate, record_property):
    """The proxy must push back on the server instead of buffering a result
    its client does not read: its RSS stays bounded."""
    baseline = rss_kb(gate.proc.pid)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gate.port))
    c = RawConn(sock=sock, timeout=10)
    try:
        c.login()
        # 100,000 rows of 1 kB: about 100 MB of DataRows.
        c.send(pgwire.query("SELECT repeat('x', 1000) FROM generate_series(1, 100000)"))
        peak = baseline
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            peak = max(peak, rss_kb(gate.proc.pid))
            time.sleep(0.1)
        grown_mb = (peak - baseline) / 1024
        print(f"never-reading client: uuidgate RSS {baseline} kB at start, peak {peak} kB (+{grown_mb:.1f} MB)")
        record_property("figure", f"uuidgate RSS +{grown_mb:.1f} MB (bound 64 MB) while a client"
                                  f" leaves a 100 MB result unread")
        assert grown_mb < 64, f"RSS grew by {grown_mb:.1f} MB"
        assert_serving(gate)
    finally:
        c.close()
    assert_serving(gate)


def test_cancel_with_guessed_keys_cancels_nothing(gate):
    with RawConn(port=gate.port) as victim:
        victim.login()
        pid, secret = victim.backend_key
        victim.send(pgwire.query("SELECT pg_sleep(1.5), 'survived'"))
        rnd = random.Random(99)
        guesses = [(pid, secret ^ 1), (pid, 0), (pid + 1, secret), (0, 0)]
        guesses += [(rnd.getrandbits(32), rnd.getrandbits(32)) for _ in range(50)]
        for gpid, gkey in guesses:
            with RawConn(port=gate.port) as attacker:
                attacker.send(cancel_request(gpid, gkey))
                assert attacker.is_closed(timeout=5)
        rows, errors = [], []
        while True:
            mtype, payload = victim.read_message()
            if mtype == "D":
                rows.append(payload)
            elif mtype == "E":
                errors.append(pgwire.parse_error(payload))
            elif mtype == "Z":
                break
        assert not errors, errors
        assert rows and rows[0].endswith(b"survived")
    assert_serving(gate)


def test_many_half_open_connections_do_not_block_others(gate):
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", gate.port))
            s.sendall(struct.pack("!I", 100))  # a startup header, then nothing
            socks.append(s)
        assert_serving(gate)
    finally:
        for s in socks:
            s.close()


# ---- TLS ------------------------------------------------------------------------


def tls_settings(certs, **extra):
    s = {"client_tls_sslmode": "require", "client_tls_cert_file": certs["cert"],
         "client_tls_key_file": certs["key"], "client_login_timeout": f"{LOGIN_TIMEOUT_S}s"}
    s.update(extra)
    return s


@pytest.fixture(scope="module")
def tls_gate(pg, certs, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=pg.conninfo(sslmode="disable"), settings=tls_settings(certs))


def test_plaintext_after_ssl_request_answered_s(tls_gate):
    with RawConn(port=tls_gate.port) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"S"
        c.send(startup_packet({"user": "postgres", "database": "postgres"}))
        assert c.is_closed(timeout=LOGIN_TIMEOUT_S + 5)
    with psycopg.connect(tls_gate.conninfo(sslmode="require")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_sslmode_require_refuses_plaintext(tls_gate):
    with RawConn(port=tls_gate.port) as c:
        c.send(startup_packet({"user": "postgres", "database": "postgres"}))
        errors = expect_refused(c)
        assert errors and errors[0]["C"] == "28000", errors
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(tls_gate.conninfo(sslmode="disable"), connect_timeout=10).close()
    with psycopg.connect(tls_gate.conninfo(sslmode="require")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def old_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def test_tls_1_1_client_refused_by_default(tls_gate):
    with RawConn(port=tls_gate.port) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"S"
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            c.wrap_tls(old_tls_context())
    with psycopg.connect(tls_gate.conninfo(sslmode="require")) as conn:
        assert conn.execute("SELECT pg_catalog.version()").fetchone()


def test_tls_1_1_client_accepted_only_when_asked_for(pg, certs, uuidgate_factory):
    """The control for the test above: the refusal comes from the protocol
    floor, not from the test's client failing by itself."""
    gate = uuidgate_factory(upstream=pg.conninfo(sslmode="disable"),
                            settings=tls_settings(certs, client_tls_protocols="all",
                                                  client_tls_ciphers="DEFAULT:@SECLEVEL=0"))
    with RawConn(port=gate.port) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"S"
        c.wrap_tls(old_tls_context())
        assert c.sock.version() in ("TLSv1.1", "TLSv1")
        c.login()


# ---- the login probe and a crafted search_path --------------------------------


@pytest.fixture(scope="module")
def probe_db(pg):
    """A database with one migrated table in public, and a role that owns a
    schema shadowing both the table and current_schemas()."""
    pg.sql("DROP DATABASE IF EXISTS hostile_probe")
    pg.sql("CREATE DATABASE hostile_probe")
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mallory') THEN "
           "CREATE ROLE mallory LOGIN; END IF; END $$")
    pg.sql("CREATE TABLE public.phoenix_kit_users (id bigserial PRIMARY KEY, email text, uuid uuid);"
           "GRANT ALL ON public.phoenix_kit_users, public.phoenix_kit_users_id_seq TO mallory;"
           "CREATE SCHEMA mallory AUTHORIZATION mallory;", dbname="hostile_probe")
    pg.sql("SET ROLE mallory;"
           "CREATE TABLE mallory.phoenix_kit_users (id bigserial PRIMARY KEY, email text);"
           "CREATE FUNCTION mallory.current_schemas(boolean) RETURNS name[] LANGUAGE sql AS "
           "$$ SELECT ARRAY['pg_catalog', 'public']::name[] $$;"
           "CREATE FUNCTION mallory.text(name[]) RETURNS text LANGUAGE sql AS $$ SELECT '{pg_catalog,public}' $$;",
           dbname="hostile_probe")
    return "hostile_probe"


@pytest.fixture(scope="module")
def rewriting_gate(pg, probe_db, module_uuidgate_factory):
    gate = module_uuidgate_factory(upstream=pg.conninfo(dbname=probe_db),
                                   settings={"insert_uuid": "always", "log_rewrites": "yes"})
    gate.wait_for_log("event=uuid_tables", timeout=15)
    return gate


def test_login_probe_ignores_a_shadowing_search_path(pg, rewriting_gate, probe_db):
    # Control: with search_path = public the INSERT into public's table is rewritten.
    with psycopg.connect(rewriting_gate.conninfo(dbname=probe_db, user="mallory",
                                                 options="'-c search_path=public'"), autocommit=True) as conn:
        conn.execute("INSERT INTO phoenix_kit_users (email) VALUES ('control')")
    assert pg.sql("SELECT uuid IS NOT NULL FROM public.phoenix_kit_users WHERE email = 'control'",
                  dbname=probe_db) == "t"
    # The attack: mallory's schema first ("$user" is mallory by default, too),
    # shadowing current_schemas() and text(name[]).
    for options in (None, "-c search_path=mallory,public", "-c search_path=mallory,pg_catalog,public"):
        extra = {"options": "'" + options.replace(" ", "\\ ") + "'"} if options else {}
        with psycopg.connect(rewriting_gate.conninfo(dbname=probe_db, user="mallory", **extra),
                             autocommit=True) as conn:
            if options and "mallory,pg_catalog" in options:
                # pg_catalog named after mallory: unqualified calls reach the shadow.
                assert conn.execute("SELECT current_schemas(false)::text").fetchone()[0] == \
                    "{pg_catalog,public}"
            # Went to mallory.phoenix_kit_users, which has no uuid column: a
            # rewrite would fail with 'column "uuid" does not exist'.
            conn.execute("INSERT INTO phoenix_kit_users (email) VALUES ('attack')")
            assert conn.execute("SELECT count(*) FROM mallory.phoenix_kit_users").fetchone()[0] >= 1
    assert_serving(rewriting_gate, dbname=probe_db)


# ---- the admin console ------------------------------------------------------------

ADMIN_COMMANDS = ["SHOW HELP", "SHOW GATE", "SHOW MIGRATION", "SHOW CLIENTS", "SHOW SERVERS",
                  "SHOW STATS", "SHOW CONFIG", "SHOW VERSION", "PAUSE", "RESUME", "RELOAD",
                  "SHUTDOWN", "KILL_CLIENT 1"]


@pytest.fixture(scope="module")
def admin_gate(pg, module_uuidgate_factory):
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'plain_user') THEN "
           "CREATE ROLE plain_user LOGIN; END IF; END $$")
    base = make_tmpdir("uuidgate-hostile-admin-")
    auth_file = write_auth_file(os.path.join(base, "userlist.txt"),
                                {"ops": scram_secret("ops-pw"), "plain_user": scram_secret("plain-pw")})
    return module_uuidgate_factory(upstream=pg.conninfo(), base=base, settings={
        "unix_socket_dir": base, "admin_users": "ops", "auth_file": auth_file,
        "auth_type": "scram-sha-256"})


@pytest.mark.parametrize("command", ADMIN_COMMANDS)
def test_non_admin_reaches_no_admin_command(admin_gate, command):
    # An authenticated ordinary user, over TCP: refused at login.
    with RawConn(port=admin_gate.port) as c:
        with pytest.raises(pgwire.PgError) as e:
            scram_login(c, "plain_user", "uuidgate", "plain-pw")
        assert e.value.sqlstate == "28000"
    # The admin user with a wrong password.
    with RawConn(port=admin_gate.port) as c:
        with pytest.raises(pgwire.PgError) as e:
            scram_login(c, "ops", "uuidgate", "wrong")
        assert e.value.sqlstate == "28P01"
    # Another OS user over the Unix socket (peers of uuidgate's own user are admins).
    os.chmod(admin_gate.base, 0o755)
    r = subprocess.run(["runuser", "-u", "postgres", "--", PSQL, "-X", "-At", "-w", "-h", admin_gate.base,
                        "-p", str(admin_gate.port), "-U", "plain_user", "-d", "uuidgate", "-c", command],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "not allowed" in r.stderr, r.stderr
    # The same words sent to an ordinary database are the server's business.
    with psycopg.connect(admin_gate.conninfo(user="plain_user", password="plain-pw")) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute(command)
    # Nothing happened: the proxy is not paused, shut down or short of a client.
    assert admin_gate.running()
    with RawConn(port=admin_gate.port) as c:
        scram_login(c, "ops", "uuidgate", "ops-pw")
        rows, errors = c.simple_query("SHOW GATE")
        assert not errors
        assert dict(rows)["paused"] == "no", rows
    assert_serving(admin_gate, user="plain_user", password="plain-pw")


# ---- secrets and permissions ------------------------------------------------------


@pytest.fixture(scope="module")
def secret_pg():
    server = PgServer(hba=auth_hba_lines()).init().start()
    create_auth_roles(server)
    yield server
    server.destroy()


def test_passwords_and_secrets_never_logged(secret_pg, uuidgate_factory):
    """Passthrough logins (cleartext, md5, SCRAM) and proxy-side SCRAM
    logins, with log_level = debug: no password, SCRAM key or md5 hash in
    the log."""
    base = make_tmpdir("uuidgate-hostile-secrets-")
    local_secret = scram_secret("Local-Secret-Pw-7")
    auth_file = write_auth_file(os.path.join(base, "userlist.txt"),
                                {"u_trust": local_secret, "u_scram": "pw-scram"})
    passthrough = uuidgate_factory(upstream=secret_pg.conninfo(), settings={"log_level": "debug"})
    for role, password in (("u_password", "pw-cleartext"), ("u_md5", "pw-md5"), ("u_scram", "pw-scram")):
        with psycopg.connect(passthrough.conninfo(user=role, password=password)) as conn:
            conn.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(passthrough.conninfo(user=role, password=password + "-wrong")).close()
    local = uuidgate_factory(upstream=secret_pg.conninfo(), base=base, settings={
        "log_level": "debug", "auth_type": "scram-sha-256", "auth_file": auth_file})
    with psycopg.connect(local.conninfo(user="u_trust", password="Local-Secret-Pw-7")) as conn:
        conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(local.conninfo(user="u_trust", password="Local-Secret-Pw-8")).close()
    passthrough.stop()
    local.stop()
    stored_key, server_key = local_secret.split("$")[2].split(":")
    needles = ["pw-cleartext", "pw-md5", "pw-scram", "Local-Secret-Pw-7", "Local-Secret-Pw-8",
               stored_key, server_key, local_secret,
               hashlib.md5(b"pw-md5u_md5").hexdigest()]
    for gate in (passthrough, local):
        text = gate.log()
        assert "level=debug" in text or '"level":"debug"' in text, "debug logging was not on"
        for needle in needles:
            assert needle not in text, f"{needle!r} found in {gate.logfile}"


def test_world_readable_auth_file_warned(pg, uuidgate_factory):
    base = make_tmpdir("uuidgate-hostile-perm-")
    auth_file = write_auth_file(os.path.join(base, "userlist.txt"), {"someone": scram_secret("x")})
    os.chmod(auth_file, 0o644)
    gate = uuidgate_factory(upstream=pg.conninfo(), base=base, settings={"auth_file": auth_file})
    gate.wait_for_log("auth_file_permissions")
    assert_serving(gate)


def test_world_readable_tls_key_warned(pg, certs, uuidgate_factory, tmp_path):
    key = tmp_path / "server.key"
    key.write_bytes(open(certs["key"], "rb").read())
    os.chmod(key, 0o644)
    gate = uuidgate_factory(upstream=pg.conninfo(sslmode="disable"),
                            settings=tls_settings(certs, client_tls_key_file=str(key),
                                                  client_tls_sslmode="prefer"))
    gate.wait_for_log("tls_key_permissions")
    assert_serving(gate)


def test_private_tls_key_not_warned(pg, certs, uuidgate_factory, tmp_path):
    key = tmp_path / "server.key"
    key.write_bytes(open(certs["key"], "rb").read())
    os.chmod(key, 0o600)
    gate = uuidgate_factory(upstream=pg.conninfo(sslmode="disable"),
                            settings=tls_settings(certs, client_tls_key_file=str(key),
                                                  client_tls_sslmode="prefer"))
    assert_serving(gate)
    assert "tls_key_permissions" not in gate.log()


def test_table_lookup_ignores_operators_shadowed_by_the_roles_search_path(pg, uuidgate_factory):
    """uuidgate's own catalog query runs under whatever search_path the role
    or database sets; a schema listed before pg_catalog may define an '='
    for (name, text) that is always true. The lookup must still find only
    the migrated tables that exist."""
    db = "hostile_operator"
    pg.sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    pg.sql(f"CREATE DATABASE {db}")
    pg.sql("CREATE TABLE public.phoenix_kit_users (id bigserial PRIMARY KEY, uuid uuid);"
           "CREATE TABLE public.not_migrated (id bigserial PRIMARY KEY, uuid uuid);"
           "CREATE SCHEMA evil;"
           "CREATE FUNCTION evil.always(name, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';"
           "CREATE FUNCTION evil.always(oid, regtype) RETURNS boolean LANGUAGE sql AS 'SELECT true';"
           "CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = text, FUNCTION = evil.always);"
           "CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = regtype, FUNCTION = evil.always);",
           dbname=db)
    pg.sql(f"ALTER ROLE postgres IN DATABASE {db} SET search_path = evil, pg_catalog, public")
    try:
        gate = uuidgate_factory(upstream=pg.conninfo(dbname=db), settings={"insert_uuid": "always"})
        text = gate.wait_for_log("event=uuid_tables ", timeout=15)
        line = [x for x in text.splitlines() if "event=uuid_tables " in x][-1]
        assert "tables=1" in line, line
    finally:
        pg.sql(f"ALTER ROLE postgres IN DATABASE {db} RESET search_path")
