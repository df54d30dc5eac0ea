"""TLS on either leg: SSLRequest and direct TLS towards clients, sslmode
towards the server, certificate checks on both, and SCRAM across a proxy
that terminates TLS on both legs (no channel binding can pass)."""

import asyncio
import ssl
import struct

import asyncpg
import psycopg
import pytest

from conftest import AUTH_ROLES, create_auth_roles
from harness import PgServer, make_certs
from pgwire import RawConn, sasl_initial_response, ssl_request, startup_packet, tls_context


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A second CA that signed nothing the proxy or the server presents."""
    return make_certs(str(tmp_path_factory.mktemp("other-ca")))


@pytest.fixture(scope="module")
def tls_pg(certs):
    """A server with TLS whose test roles may log in only over TLS; it also
    listens on 127.0.0.2, an address its certificate does not name."""
    lines = ["local all all trust",
             "host all postgres 127.0.0.1/32 trust",
             "host all postgres 127.0.0.2/32 trust"]
    lines += [f"hostssl all {role} 127.0.0.1/32 {method}" for role, (method, _) in AUTH_ROLES.items()]
    lines += [f"hostssl all {role} 127.0.0.2/32 {method}" for role, (method, _) in AUTH_ROLES.items()]
    server = PgServer(ssl=certs, hba=lines,
                      settings={"listen_addresses": "'127.0.0.1,127.0.0.2'"}).init().start()
    create_auth_roles(server)
    yield server
    server.destroy()


def client_tls(certs, **extra):
    s = {"client_tls_sslmode": "require", "client_tls_cert_file": certs["cert"],
         "client_tls_key_file": certs["key"]}
    s.update(extra)
    return s


@pytest.fixture(scope="module")
def tls_client_gate(pg, certs, module_uuidgate_factory):
    """TLS required towards clients; plaintext to the server."""
    return module_uuidgate_factory(upstream=pg.conninfo(sslmode="disable"), settings=client_tls(certs))


@pytest.fixture(scope="module")
def both_legs_gate(tls_pg, certs, module_uuidgate_factory):
    """TLS on both legs, the server's certificate fully verified."""
    upstream = tls_pg.conninfo(sslmode="verify-full", sslrootcert=certs["ca"])
    return module_uuidgate_factory(client_tls(certs, client_tls_sslmode="prefer"), upstream=upstream)


def backend_uses_ssl(conn):
    return conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()[0]


# ---- the client leg -----------------------------------------------------------


def test_ssl_request_accepted(tls_client_gate):
    with RawConn(port=tls_client_gate.port) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"S"
        c.wrap_tls(tls_context(verify=False, alpn=None))
        c.login()
        rows, _ = c.simple_query("select 'over tls'")
        assert rows == [["over tls"]]


def test_plaintext_after_ssl_request_refused(tls_client_gate):
    with RawConn(port=tls_client_gate.port) as c:
        c.send(ssl_request() + startup_packet({"user": "postgres", "database": "postgres"}))
        fields = c.read_error()
        assert fields["C"] == "08P01"
        assert c.is_closed(timeout=5)


def test_sslmode_require(tls_client_gate):
    with psycopg.connect(tls_client_gate.conninfo(sslmode="require")) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("select 1").fetchone() == (1,)
        assert not backend_uses_ssl(conn), "server leg should be plaintext here"
    assert "tls=yes" in tls_client_gate.log()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_sslmode_verify_full(tls_client_gate, certs, host):
    conninfo = (f"host={host} port={tls_client_gate.port} dbname=postgres user=postgres "
                f"sslmode=verify-full sslrootcert={certs['ca']}")
    with psycopg.connect(conninfo) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("select 2").fetchone() == (2,)


def test_verify_full_with_wrong_ca_fails(tls_client_gate, other_ca):
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(tls_client_gate.conninfo(sslmode="verify-full", sslrootcert=other_ca["ca"]))


def test_plaintext_client_refused_when_tls_required(tls_client_gate):
    with RawConn(port=tls_client_gate.port) as c:
        c.send(startup_packet({"user": "postgres", "database": "postgres"}))
        fields = c.read_error()
        assert (fields["S"], fields["C"]) == ("FATAL", "28000")
        assert "SSL" in fields["M"] or "TLS" in fields["M"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(tls_client_gate.conninfo(sslmode="disable"))


def test_direct_tls_with_alpn(tls_client_gate, certs):
    with RawConn(port=tls_client_gate.port) as c:
        c.wrap_tls(tls_context(cafile=certs["ca"]), server_hostname="localhost")
        assert c.sock.selected_alpn_protocol() == "postgresql"
        c.login()
        rows, _ = c.simple_query("select 'direct'")
        assert rows == [["direct"]]


def test_direct_tls_without_alpn_refused(tls_client_gate, certs):
    with RawConn(port=tls_client_gate.port) as c:
        try:
            c.wrap_tls(tls_context(cafile=certs["ca"], alpn=None), server_hostname="localhost")
            c.send(startup_packet({"user": "postgres", "database": "postgres"}))
            fields = c.read_error()
            assert fields["S"] == "FATAL" and fields["C"] == "08P01", fields
            assert "ALPN" in fields["M"]
        except (ssl.SSLError, ConnectionError):
            pass  # refusing the handshake itself is just as good
        assert c.is_closed(timeout=5)


def test_direct_tls_with_other_alpn_refused(tls_client_gate, certs):
    with RawConn(port=tls_client_gate.port) as c:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            c.wrap_tls(tls_context(cafile=certs["ca"], alpn=("http/1.1",)), server_hostname="localhost")
            c.send(startup_packet({"user": "postgres", "database": "postgres"}))
            c.read_message()


def test_direct_tls_without_tls_configured(pg, uuidgate_factory, certs):
    gate = uuidgate_factory()
    with RawConn(port=gate.port) as c:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            c.wrap_tls(tls_context(cafile=certs["ca"]), server_hostname="localhost")
    with psycopg.connect(gate.conninfo()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_tls_protocols_restricted(pg, uuidgate_factory, certs):
    gate = uuidgate_factory(client_tls(certs, client_tls_protocols="tlsv1.3"))
    ctx = tls_context(cafile=certs["ca"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with RawConn(port=gate.port) as c:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            c.wrap_tls(ctx, server_hostname="localhost")
    with RawConn(port=gate.port) as c:
        c.wrap_tls(tls_context(cafile=certs["ca"]), server_hostname="localhost")
        assert c.sock.version() == "TLSv1.3"
        c.login()
    with psycopg.connect(gate.conninfo(sslmode="require")) as conn:
        assert conn.pgconn.ssl_in_use


# ---- the server leg -------------------------------------------------------------


@pytest.mark.parametrize("upstream_ssl", [
    {"sslmode": "require"},
    {"sslmode": "verify-ca", "sslrootcert": "CA"},
    {"sslmode": "verify-full", "sslrootcert": "CA"},
])
def test_server_leg_tls(tls_pg, certs, uuidgate_factory, upstream_ssl):
    extra = {k: (certs["ca"] if v == "CA" else v) for k, v in upstream_ssl.items()}
    gate = uuidgate_factory(upstream=tls_pg.conninfo(**extra))
    with psycopg.connect(gate.conninfo(user="u_md5", password=AUTH_ROLES["u_md5"][1])) as conn:
        assert backend_uses_ssl(conn)
        assert not conn.pgconn.ssl_in_use


def test_server_leg_verify_full_by_host_name(tls_pg, certs, uuidgate_factory):
    upstream = (f"host=localhost port={tls_pg.port} dbname=postgres sslmode=verify-full "
                f"sslrootcert={certs['ca']}")
    gate = uuidgate_factory(upstream=upstream)
    with psycopg.connect(gate.conninfo(user="u_password", password=AUTH_ROLES["u_password"][1])) as conn:
        assert backend_uses_ssl(conn)


@pytest.mark.parametrize("upstream", [
    "host=127.0.0.1 port={port} sslmode=verify-full sslrootcert={other}",
    "host=127.0.0.1 port={port} sslmode=verify-ca sslrootcert={other}",
    "host=127.0.0.2 port={port} sslmode=verify-full sslrootcert={ca}",
    "host=wrong.example hostaddr=127.0.0.1 port={port} sslmode=verify-full sslrootcert={ca}",
])
def test_server_leg_certificate_refused(tls_pg, certs, other_ca, uuidgate_factory, upstream):
    gate = uuidgate_factory(upstream=upstream.format(port=tls_pg.port, ca=certs["ca"],
                                                     other=other_ca["ca"]))
    with RawConn(port=gate.port) as c:
        c.send(startup_packet({"user": "postgres", "database": "postgres"}))
        fields = c.read_error()
        assert fields["S"] == "FATAL"
        assert fields["C"].startswith("08"), fields
        assert c.is_closed(timeout=5)


def test_server_leg_require_but_server_has_no_tls(pg, uuidgate_factory):
    gate = uuidgate_factory(upstream=pg.conninfo(sslmode="require"))
    with RawConn(port=gate.port) as c:
        c.send(startup_packet({"user": "postgres", "database": "postgres"}))
        fields = c.read_error()
        assert fields["C"].startswith("08"), fields
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(gate.conninfo())


def test_server_leg_prefer_falls_back_to_plaintext(pg, uuidgate_factory):
    gate = uuidgate_factory(upstream=pg.conninfo(sslmode="prefer"))
    with psycopg.connect(gate.conninfo()) as conn:
        assert not backend_uses_ssl(conn)


# ---- SCRAM with TLS on both legs ---------------------------------------------------


def scram_conninfo(gate, **extra):
    return gate.conninfo(user="u_scram", password=AUTH_ROLES["u_scram"][1], **extra)


def test_scram_plus_never_reaches_the_client(both_legs_gate):
    with RawConn(port=both_legs_gate.port) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"S"
        c.wrap_tls(tls_context(verify=False, alpn=None))
        c.send(startup_packet({"user": "u_scram", "database": "postgres"}))
        mtype, payload = c.read_message()
        assert mtype == "R"
        assert struct.unpack("!I", payload[:4])[0] == 10
        mechanisms = [m.decode() for m in payload[4:].split(b"\0") if m]
        assert mechanisms == ["SCRAM-SHA-256"]


def test_scram_channel_binding_prefer_gets_clear_error(both_legs_gate):
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(scram_conninfo(both_legs_gate, sslmode="require"))
    text = str(e.value)
    assert "channel_binding=disable" in text, text
    assert "channel binding" in text.lower()


def test_scram_channel_binding_prefer_sqlstate(both_legs_gate):
    """The refusal on the wire: a SCRAM client over TLS that could bind but
    sees no -PLUS mechanism sends gs2 flag 'y'; the proxy answers FATAL 28000
    with a hint instead of letting the server call it a downgrade attack."""
    with RawConn(port=both_legs_gate.port) as c:
        c.send(ssl_request())
        assert c.read_bytes(1) == b"S"
        c.wrap_tls(tls_context(verify=False, alpn=None))
        c.send(startup_packet({"user": "u_scram", "database": "postgres"}))
        assert c.read_message()[0] == "R"
        c.send(sasl_initial_response("SCRAM-SHA-256", b"y,,n=,r=abcdefghijklmnopqrstuvwx"))
        fields = c.read_error()
        assert (fields["S"], fields["C"]) == ("FATAL", "28000"), fields
        assert "channel_binding=disable" in fields.get("H", ""), fields
        assert c.is_closed(timeout=5)


def test_scram_channel_binding_disable_logs_in(both_legs_gate):
    with psycopg.connect(scram_conninfo(both_legs_gate, sslmode="require", channel_binding="disable")) as conn:
        assert conn.pgconn.ssl_in_use
        assert backend_uses_ssl(conn)
        assert conn.execute("select current_user").fetchone() == ("u_scram",)


def test_scram_plaintext_client_leg_logs_in(both_legs_gate):
    with psycopg.connect(scram_conninfo(both_legs_gate, sslmode="disable")) as conn:
        assert not conn.pgconn.ssl_in_use
        assert backend_uses_ssl(conn)


def test_scram_wrong_password_over_tls(both_legs_gate):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(both_legs_gate.conninfo(user="u_scram", password="wrong", sslmode="require",
                                                channel_binding="disable"))


def test_scram_channel_binding_require_refused_by_client(both_legs_gate):
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        psycopg.connect(scram_conninfo(both_legs_gate, sslmode="require", channel_binding="require"))


def test_asyncpg_scram_over_tls_both_legs(both_legs_gate):
    async def main():
        ctx = tls_context(verify=False, alpn=None)
        conn = await asyncpg.connect(host="127.0.0.1", port=both_legs_gate.port, user="u_scram",
                                     password=AUTH_ROLES["u_scram"][1], database="postgres", ssl=ctx)
        try:
            return await conn.fetchval("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        finally:
            await conn.close()

    assert asyncio.run(asyncio.wait_for(main(), 30)) is True


@pytest.mark.parametrize("role", ["u_md5", "u_password"])
def test_other_methods_over_tls_both_legs(both_legs_gate, role):
    with psycopg.connect(both_legs_gate.conninfo(user=role, password=AUTH_ROLES[role][1],
                                                 sslmode="require")) as conn:
        assert conn.pgconn.ssl_in_use and backend_uses_ssl(conn)


# ---- bulk data and closing over TLS ------------------------------------------------


def test_large_result_over_client_tls(tls_client_gate):
    """More than the relay's high-water mark in flight towards a TLS client,
    so reading from the server pauses and resumes when TLS output drains."""
    with psycopg.connect(tls_client_gate.conninfo(sslmode="require")) as conn:
        with conn.cursor() as cur:
            rows = 0
            with cur.copy("copy (select repeat('x', 1000) from generate_series(1, 50000)) to stdout") as copy:
                for block in copy:
                    rows += bytes(block).count(b"\n")
        assert rows == 50000
        assert conn.execute("select 1").fetchone() == (1,)


def test_large_upload_over_both_legs(both_legs_gate):
    value = "y" * (20 * 1024 * 1024)
    with psycopg.connect(both_legs_gate.conninfo(user="u_md5", password=AUTH_ROLES["u_md5"][1],
                                                 sslmode="require")) as conn:
        assert conn.execute("select length(%s::text)", (value,)).fetchone() == (len(value),)


def test_proxy_survives_refused_tls_clients(tls_client_gate, certs):
    """Refusing a TLS client (here: direct TLS without ALPN) sends a FATAL
    over TLS and closes; the proxy must go on serving."""
    for _ in range(3):
        with RawConn(port=tls_client_gate.port) as c:
            c.wrap_tls(tls_context(cafile=certs["ca"], alpn=None), server_hostname="localhost")
            c.send(startup_packet({"user": "postgres", "database": "postgres"}))
            c.is_closed(timeout=5)
    assert tls_client_gate.running(), "uuidgate died:\n" + tls_client_gate.log()[-2000:]
    with psycopg.connect(tls_client_gate.conninfo(sslmode="require")) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
