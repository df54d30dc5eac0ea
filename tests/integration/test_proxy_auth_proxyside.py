"""uuidgate authenticating clients itself (auth_type scram-sha-256, md5, trust)
from auth_file or auth_query, then logging in to the server with the stored
secret, or for SCRAM with the key recovered from the client's own proof."""

import os

import psycopg
import pytest

from conftest import AUTH_ROLES, auth_hba_lines, create_auth_roles
from harness import PgServer


@pytest.fixture(scope="module")
def server(certs):
    pg = PgServer(hba=auth_hba_lines("host"), ssl=certs).init().start()
    create_auth_roles(pg)
    yield pg
    pg.destroy()


def password_of(role):
    return AUTH_ROLES[role][1]


def write_auth_file(path, entries):
    with open(path, "w") as f:
        for user, secret in entries.items():
            f.write(f'"{user}" "{secret}"\n')
    os.chmod(path, 0o600)
    return path


def stored_secret(server, role):
    return server.sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")


def gate_with(uuidgate_factory, server, tmp_path, entries, **settings):
    conf = {"auth_type": "scram-sha-256",
            "auth_file": write_auth_file(str(tmp_path / "users.txt"), entries)}
    conf.update(settings)
    return uuidgate_factory(conf, upstream=server.conninfo(**{"sslmode": "disable"}))


def login(gate, user, password, **extra):
    with psycopg.connect(gate.conninfo(user=user, password=password, **extra), connect_timeout=10) as conn:
        return conn.execute("SELECT current_user").fetchone()[0]


@pytest.mark.parametrize("role", ["u_scram", "u_md5", "u_password"])
def test_plain_secret_answers_every_server_method(uuidgate_factory, server, tmp_path, role):
    gate = gate_with(uuidgate_factory, server, tmp_path, {role: password_of(role)})
    assert login(gate, role, password_of(role)) == role


def test_scram_secret_logs_in_with_the_clients_recovered_key(uuidgate_factory, server, tmp_path):
    gate = gate_with(uuidgate_factory, server, tmp_path, {"u_scram": stored_secret(server, "u_scram")})
    assert login(gate, "u_scram", password_of("u_scram")) == "u_scram"
    assert password_of("u_scram") not in gate.log()


def test_md5_secret_with_md5_clients(uuidgate_factory, server, tmp_path):
    gate = gate_with(uuidgate_factory, server, tmp_path, {"u_md5": stored_secret(server, "u_md5")},
                     auth_type="md5")
    assert login(gate, "u_md5", password_of("u_md5")) == "u_md5"


@pytest.mark.parametrize("user, password", [("u_scram", "wrong"), ("nobody", "whatever")])
def test_wrong_password_and_unknown_user_look_alike(uuidgate_factory, server, tmp_path, user, password):
    gate = gate_with(uuidgate_factory, server, tmp_path, {"u_scram": password_of("u_scram")})
    with pytest.raises(psycopg.OperationalError) as e:
        login(gate, user, password)
    assert f'password authentication failed for user "{user}"' in str(e.value)


def test_channel_binding_required_by_the_client_is_refused(uuidgate_factory, server, tmp_path, certs):
    gate = gate_with(uuidgate_factory, server, tmp_path, {"u_scram": password_of("u_scram")},
                     client_tls_sslmode="require", client_tls_cert_file=certs["cert"],
                     client_tls_key_file=certs["key"])
    with pytest.raises(psycopg.OperationalError) as e:
        login(gate, "u_scram", password_of("u_scram"), sslmode="require", channel_binding="require")
    assert "channel binding" in str(e.value)


def test_tls_on_both_legs_with_scram(uuidgate_factory, server, tmp_path, certs):
    """What passthrough cannot do: libpq's default channel_binding=prefer with
    TLS on both legs."""
    gate = uuidgate_factory({"auth_type": "scram-sha-256",
                             "auth_file": write_auth_file(str(tmp_path / "users.txt"),
                                                          {"u_scram": stored_secret(server, "u_scram")}),
                             "client_tls_sslmode": "require", "client_tls_cert_file": certs["cert"],
                             "client_tls_key_file": certs["key"]},
                            upstream=server.conninfo(sslmode="verify-full", sslrootcert=certs["ca"],
                                                     host="localhost"))
    assert login(gate, "u_scram", password_of("u_scram"), sslmode="require") == "u_scram"


def test_auth_query_finds_users_missing_from_auth_file(uuidgate_factory, server, tmp_path):
    gate = gate_with(uuidgate_factory, server, tmp_path, {"admin": "adminpw"}, auth_user="postgres")
    assert login(gate, "u_scram", password_of("u_scram")) == "u_scram"
    with pytest.raises(psycopg.OperationalError) as e:
        login(gate, "u_scram", "wrong")
    assert "password authentication failed" in str(e.value)
    with pytest.raises(psycopg.OperationalError):
        login(gate, "no_such_role", "x")


def test_auth_query_failure_is_explained(uuidgate_factory, server, tmp_path):
    gate = gate_with(uuidgate_factory, server, tmp_path, {}, auth_user="postgres",
                     auth_query="SELECT 1 FROM no_such_table WHERE $1 = ''")
    with pytest.raises(psycopg.OperationalError) as e:
        login(gate, "u_scram", password_of("u_scram"))
    assert "auth_query failed" in str(e.value)
    assert "event=auth_query_failed" in gate.log()
