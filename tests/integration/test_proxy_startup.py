"""The startup phase: listeners, the packets a client may send before its
StartupMessage, protocol negotiation, and hostile or broken input before and
right after login."""

import os
import stat
import struct
import subprocess
import time

import psycopg
import pytest

from pgwire import (ConnectionClosed, PgError, RawConn, gssenc_request, message, parse_error,
                    parse_negotiate, query, raw_header, ssl_request, startup_packet)


@pytest.fixture(scope="module")
def gate(pg_auth, module_uuidgate_factory):
    return module_uuidgate_factory(upstream=pg_auth.conninfo())


def raw(gate, **kw):
    return RawConn(port=gate.port, **kw)


def expect_fatal(conn, sqlstate):
    """Reads up to an ErrorResponse, checks it, and checks the connection
    is then closed."""
    fields = conn.read_error()
    assert fields.get("S") == "FATAL", fields
    assert fields.get("C") == sqlstate, fields
    assert conn.is_closed(timeout=5), "connection left open after FATAL"
    return fields


def wait_for_backends_gone(server, application_name, timeout=10.0):
    q = f"select count(*) from pg_stat_activity where application_name = '{application_name}'"
    deadline = time.monotonic() + timeout
    while server.sql(q) != "0":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# ---- listeners -------------------------------------------------------------


def test_tcp_login_with_psql(gate):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-d", gate.conninfo(), "-c",
                          "select 'through ' || current_user"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "through postgres"


def test_unix_socket(pg, uuidgate_factory, tmp_path):
    sockdir = tmp_path / "sock"
    sockdir.mkdir()
    gate = uuidgate_factory({"unix_socket_dir": str(sockdir), "unix_socket_mode": "0770"})
    path = sockdir / f".s.PGSQL.{gate.port}"
    assert path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o770
    out = subprocess.run(["psql", "-X", "-A", "-t", "-h", str(sockdir), "-p", str(gate.port),
                          "-U", "postgres", "-d", "postgres", "-c", "select 6 * 7"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
    gate.stop()
    assert not path.exists(), "socket file left behind after shutdown"


def test_max_client_conn(pg, uuidgate_factory):
    gate = uuidgate_factory({"max_client_conn": "2"})
    held = [psycopg.connect(gate.conninfo(), autocommit=True) for _ in range(2)]
    try:
        with raw(gate) as c:
            c.send(startup_packet({"user": "postgres", "database": "postgres"}))
            fields = expect_fatal(c, "53300")
            assert "max_client_conn" in fields["M"]
        with pytest.raises(psycopg.OperationalError, match="max_client_conn"):
            psycopg.connect(gate.conninfo())
        held.pop().close()
        with psycopg.connect(gate.conninfo()) as again:
            assert again.execute("select 1").fetchone() == (1,)
    finally:
        for conn in held:
            conn.close()


# ---- before the StartupMessage ---------------------------------------------


def test_ssl_request_refused_without_tls(gate):
    with raw(gate) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"N"
        c.login()
        rows, errors = c.simple_query("select 'plain'")
        assert rows == [["plain"]] and not errors


def test_gssenc_request_refused(gate):
    with raw(gate) as c:
        c.send(gssenc_request())
        assert c.read_bytes(1) == b"N"
        c.login()
        rows, _ = c.simple_query("select 1")
        assert rows == [["1"]]


def test_gssenc_then_ssl_request(gate):
    """libpq's gssencmode=prefer order: GSSENCRequest, then SSLRequest, then
    the StartupMessage."""
    with raw(gate) as c:
        c.send(gssenc_request())
        assert c.read_bytes(1) == b"N"
        c.send(ssl_request())
        assert c.read_bytes(1) == b"N"
        c.login()


def test_duplicate_ssl_request_refused(gate):
    with raw(gate) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"N"
        c.send(ssl_request())
        fields = c.read_error()
        assert fields["S"] == "FATAL"
        assert fields["C"] in ("08P01", "0A000")
        assert c.is_closed(timeout=5)


# ---- the StartupMessage -----------------------------------------------------


def test_startup_3_0_login(gate):
    with raw(gate) as c:
        seen = c.login(params={"application_name": "raw-startup"})
        types = [t for t, _ in seen]
        assert types[-1] == "Z"
        assert "v" not in types, "NegotiateProtocolVersion sent for a plain 3.0 startup"
        assert types.count("K") == 1
        assert c.params.get("application_name") == "raw-startup"
        rows, _ = c.simple_query("select current_setting('application_name')")
        assert rows == [["raw-startup"]]


def test_backend_key_is_not_the_servers(gate):
    with raw(gate) as c:
        c.login()
        pid, _secret = c.backend_key
        rows, _ = c.simple_query("select pg_backend_pid()")
        assert pid != int(rows[0][0])


def test_newer_minor_version_negotiated_down(gate):
    with raw(gate) as c:
        seen = c.login(minor=2)
        negotiations = [p for t, p in seen if t == "v"]
        assert len(negotiations) == 1
        assert parse_negotiate(negotiations[0]) == ((3, 0), [])
        assert [t for t, _ in seen].index("v") < [t for t, _ in seen].index("R")
        rows, _ = c.simple_query("select 'after v'")
        assert rows == [["after v"]]


def test_protocol_options_reported_unrecognised(gate):
    with raw(gate) as c:
        seen = c.login(params={"_pq_.compression": "on", "_pq_.other": "x"})
        negotiations = [p for t, p in seen if t == "v"]
        assert len(negotiations) == 1
        version, names = parse_negotiate(negotiations[0])
        assert version == (3, 0)
        assert sorted(names) == ["_pq_.compression", "_pq_.other"]
        rows, _ = c.simple_query("select 1")
        assert rows == [["1"]]


def test_unsupported_major_version(gate):
    with raw(gate) as c:
        c.send(startup_packet({"user": "postgres"}, major=2))
        fields = expect_fatal(c, "0A000")
        assert "protocol" in fields["M"]


@pytest.mark.parametrize("value", ["database", "true"])
def test_replication_refused(gate, value):
    with raw(gate) as c:
        c.send(startup_packet({"user": "postgres", "database": "postgres", "replication": value}))
        fields = expect_fatal(c, "0A000")
        assert "replication" in fields["M"]


def test_replication_off_is_a_normal_login(gate):
    with raw(gate) as c:
        c.login(params={"replication": "false"})


def test_missing_user_refused(gate):
    with raw(gate) as c:
        c.send(startup_packet({"database": "postgres"}))
        fields = expect_fatal(c, "28000")
        assert "user" in fields["M"]


def test_oversized_startup_packet(gate):
    with raw(gate) as c:
        c.send(startup_packet({"user": "postgres", "options": "x" * 10100}))
        expect_fatal(c, "08P01")


@pytest.mark.parametrize("length", [0, 3, 7, 0x80000000, 0xFFFFFFFF])
def test_bad_startup_length(gate, length):
    with raw(gate) as c:
        c.send(struct.pack("!I", length) + struct.pack("!I", 3 << 16))
        expect_fatal(c, "08P01")


def test_startup_packet_without_terminator(gate):
    body = struct.pack("!I", 3 << 16) + b"user\0postgres\0"
    with raw(gate) as c:
        c.send(struct.pack("!I", len(body) + 4) + body)
        expect_fatal(c, "08P01")


# ---- bad messages before and after login ------------------------------------


def start_password_login(gate, user="u_md5"):
    """Sends a StartupMessage for a role that needs a password and reads up
    to the server's authentication request: the session is mid-login."""
    c = raw(gate)
    c.send(startup_packet({"user": user, "database": "postgres"}))
    mtype, payload = c.read_message()
    assert mtype == "R" and struct.unpack("!I", payload[:4])[0] in (3, 5)
    return c


@pytest.mark.parametrize("length", [0, 3, -1, 0x7FFFFFFF])
def test_bad_message_length_during_login(gate, length):
    with start_password_login(gate) as c:
        c.send(raw_header("p", length))
        expect_fatal(c, "08P01")


def test_message_over_64k_during_login(gate):
    with start_password_login(gate) as c:
        c.send(raw_header("p", 70000 + 4) + b"x" * 1000)
        fields = expect_fatal(c, "08P01")
        assert "large" in fields["M"] or "length" in fields["M"]


def test_unexpected_message_during_login(gate):
    with start_password_login(gate) as c:
        c.send(query("select 1"))
        expect_fatal(c, "08P01")


@pytest.mark.parametrize("length", [0, 3, -1, 0x7FFFFFFF])
def test_bad_message_length_after_login(gate, pg_auth, length):
    with raw(gate) as c:
        c.login(params={"application_name": "bad-length"})
        c.send(raw_header("Q", length))
        expect_fatal(c, "08P01")
    # The proxy also closed its server connection.
    assert wait_for_backends_gone(pg_auth, "bad-length")


def test_message_over_max_packet_size(pg, uuidgate_factory):
    gate = uuidgate_factory({"max_packet_size": "64kB"})
    with raw(gate) as c:
        c.login()
        big = "select '" + "y" * 70000 + "'"
        c.send(query(big))
        fields = expect_fatal(c, "08P01")
        assert "max_packet_size" in fields["M"]
    with raw(gate) as c:
        c.login()
        rows, _ = c.simple_query("select '" + "y" * 60000 + "' = repeat('y', 60000)")
        assert rows == [["t"]]


# ---- timeouts ---------------------------------------------------------------


def test_silent_client_closed_after_login_timeout(pg, uuidgate_factory):
    gate = uuidgate_factory({"client_login_timeout": "1s"})
    with raw(gate, timeout=15) as c:
        assert c.is_closed(timeout=10)


def test_half_startup_closed_after_login_timeout(pg, uuidgate_factory):
    gate = uuidgate_factory({"client_login_timeout": "1s"})
    with raw(gate, timeout=15) as c:
        c.send(struct.pack("!I", 100) + struct.pack("!I", 3 << 16))
        try:
            fields = c.read_error()
        except ConnectionClosed:
            fields = None
        if fields is not None:
            assert fields["S"] == "FATAL"
        assert c.is_closed(timeout=10)


def test_password_prompt_left_unanswered_times_out(pg_auth, uuidgate_factory):
    gate = uuidgate_factory({"client_login_timeout": "1s"}, upstream=pg_auth.conninfo())
    with start_password_login(gate) as c:
        c.timeout = 15
        fields = c.read_error()
        assert fields["S"] == "FATAL"
        assert "timeout" in fields["M"] or "timed out" in fields["M"]
        assert c.is_closed(timeout=10)


def test_logged_in_client_not_hit_by_login_timeout(pg, uuidgate_factory):
    gate = uuidgate_factory({"client_login_timeout": "1s"})
    with raw(gate) as c:
        c.login()
        assert not c.is_closed(timeout=2)
        rows, _ = c.simple_query("select 'still here'")
        assert rows == [["still here"]]


def test_errors_are_parseable(gate):
    """ErrorResponse from the proxy carries S, V, C and M like the server's."""
    with raw(gate) as c:
        c.send(startup_packet({"database": "postgres"}))
        mtype, payload = c.read_message()
        assert mtype == "E"
        fields = parse_error(payload)
        assert {"S", "V", "C", "M"} <= set(fields)
        assert payload.endswith(b"\0")

