"""Configuration and logging: --check and its error messages, environment
overrides, command-line flags, the sample configuration, and log lines."""

import json
import os
import re
import signal
import subprocess
import time

import psycopg
import pytest

from harness import ROOT, UUIDGATE_BIN, Uuidgate, free_port, wait_for_port
from pgwire import RawConn, startup_packet


def uuidgate(*args, env=None, timeout=20):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("UUIDGATE_")}
    full_env.update(env or {})
    return subprocess.run([UUIDGATE_BIN, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def write_ini(tmp_path, body, name="uuidgate.ini"):
    path = tmp_path / name
    path.write_text(body)
    return str(path)


GOOD = "[uuidgate]\nupstream = host=127.0.0.1 port=5432 dbname=postgres\nmigrate_on_start = no\n"


# ---- --check ------------------------------------------------------------------


def test_check_accepts_a_good_file(tmp_path):
    path = write_ini(tmp_path, GOOD + "max_client_conn = 50\nclient_login_timeout = 15s\n")
    out = uuidgate("--check", "-c", path)
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout


@pytest.mark.parametrize("line, key, allowed", [
    ("max_client_conn = lots", "max_client_conn", "a whole number from 1 to 1000000"),
    ("listen_port = 70000", "listen_port", "a whole number from 1 to 65535"),
    ("log_level = loud", "log_level", "one of debug, info, warning, error"),
    ("client_login_timeout = 5 minutes", "client_login_timeout", "a duration such as"),
    ("server_connect_timeout = -1s", "server_connect_timeout", "a duration such as"),
    ("tcp_keepalive = maybe", "tcp_keepalive", "yes or no"),
    ("max_packet_size = 1kB", "max_packet_size", "from 65536"),
    ("client_tls_sslmode = sometimes", "client_tls_sslmode", "one of disable, allow, prefer, require"),
    ("unix_socket_mode = rwx", "unix_socket_mode", "octal"),
])
def test_check_names_file_line_key_and_allowed_values(tmp_path, line, key, allowed):
    path = write_ini(tmp_path, GOOD + "; a comment\n" + line + "\n", name="bad.ini")
    out = uuidgate("--check", "-c", path)
    assert out.returncode == 2, out.stdout + out.stderr
    message = out.stderr
    assert f"{path}:5" in message, message
    assert key in message and allowed in message, message
    assert line.split("=", 1)[1].strip() in message, message


def test_check_unknown_key(tmp_path):
    path = write_ini(tmp_path, GOOD + "max_clients = 5\n", name="bad.ini")
    out = uuidgate("--check", "-c", path)
    assert out.returncode == 2
    assert f"{path}:4" in out.stderr and "unknown key" in out.stderr and "max_clients" in out.stderr


@pytest.mark.parametrize("body, needle", [
    ("upstream = x\n", "outside a section"),
    ("[pgbouncer]\nlisten_port = 1\n", "unknown section"),
    ("[uuidgate]\njust some words\n", "key = value"),
    ("[uuidgate\n", "section header"),
])
def test_check_malformed_files(tmp_path, body, needle):
    path = write_ini(tmp_path, body, name="bad.ini")
    out = uuidgate("--check", "-c", path)
    assert out.returncode == 2
    assert needle in out.stderr and path in out.stderr, out.stderr


def test_check_missing_file(tmp_path):
    out = uuidgate("--check", "-c", str(tmp_path / "absent.ini"))
    assert out.returncode == 2
    assert "absent.ini" in out.stderr


def test_check_tls_without_certificate(tmp_path):
    path = write_ini(tmp_path, GOOD + "client_tls_sslmode = require\n")
    out = uuidgate("--check", "-c", path)
    assert out.returncode == 2
    assert "client_tls_cert_file" in out.stderr


def test_check_missing_upstream(tmp_path):
    path = write_ini(tmp_path, "[uuidgate]\nmigrate_on_start = no\n")
    out = uuidgate("--check", "-c", path)
    assert out.returncode == 2
    assert "upstream" in out.stderr


def test_env_var_error_names_the_variable(tmp_path):
    path = write_ini(tmp_path, GOOD)
    out = uuidgate("--check", "-c", path, env={"UUIDGATE_MAX_CLIENT_CONN": "many"})
    assert out.returncode == 2
    assert "UUIDGATE_MAX_CLIENT_CONN" in out.stderr and "many" in out.stderr


def test_env_listen_port_override(pg):
    file_port, env_port = free_port(), free_port()
    gate = Uuidgate(pg.conninfo(), {"listen_port": str(file_port)},
                    env={"UUIDGATE_LISTEN_PORT": str(env_port)})
    gate.port = env_port
    try:
        gate.start()
        with psycopg.connect(gate.conninfo()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"host=127.0.0.1 port={file_port} user=postgres connect_timeout=2")
    finally:
        gate.stop()


def test_flags_without_config_file(pg):
    port = free_port()
    proc = subprocess.Popen([UUIDGATE_BIN, "--upstream", pg.conninfo(), "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, UUIDGATE_MIGRATE_ON_START="no"))
    try:
        wait_for_port(port, proc=proc)
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres") as conn:
            assert conn.execute("select 'flags'").fetchone() == ("flags",)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_reload_keeps_upstream_given_as_flag(pg, tmp_path):
    port = free_port()
    path = write_ini(tmp_path, f"[uuidgate]\nlisten_port = {port}\nmigrate_on_start = no\n")
    proc = subprocess.Popen([UUIDGATE_BIN, "-c", path, "--upstream", pg.conninfo()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc=proc)
        conninfo = f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=5"
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("select 2").fetchone() == (2,)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_help_and_version():
    out = uuidgate("--help")
    assert out.returncode == 0
    for key in ("upstream", "listen_port", "max_client_conn", "client_tls_sslmode", "log_format"):
        assert key in out.stdout
    version = uuidgate("--version")
    assert version.returncode == 0 and re.match(r"uuidgate \d+\.\d+\.\d+", version.stdout)


def test_unknown_flag_exits_2():
    assert uuidgate("--no-such-flag").returncode == 2


def test_sample_config_equals_conf_file(tmp_path):
    out = uuidgate("--sample-config")
    assert out.returncode == 0
    with open(os.path.join(ROOT, "conf", "uuidgate.ini")) as f:
        committed = f.read()
    assert out.stdout == committed, ("conf/uuidgate.ini is out of date: regenerate it with "
                                     "`build/uuidgate --sample-config > conf/uuidgate.ini`")


def test_sample_config_is_itself_valid(tmp_path):
    out = uuidgate("--sample-config")
    body = out.stdout + "\nupstream = host=127.0.0.1 dbname=postgres\n"
    path = write_ini(tmp_path, body)
    check = uuidgate("--check", "-c", path)
    assert check.returncode == 0, check.stderr


# ---- log lines -----------------------------------------------------------------------

LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^\s"=]*)(?:\s+|$)')


def parse_logfmt(line):
    pairs, pos = {}, 0
    while pos < len(line):
        m = LOGFMT_PAIR.match(line, pos)
        if not m:
            raise ValueError(f"not logfmt at {pos}: {line!r}")
        value = m.group(2)
        if value.startswith('"'):
            value = json.loads(value)
        pairs[m.group(1)] = value
        pos = m.end()
    return pairs


def exercise(gate):
    """Events of several kinds: login, a refused client, a disconnect."""
    with psycopg.connect(gate.conninfo(), application_name='quote " and = sign') as conn:
        conn.execute("select 1")
    with RawConn(port=gate.port) as c:
        c.send(startup_packet({"database": "postgres"}))
        c.read_error()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(gate.conninfo(), dbname="no such\tdb\nreally")
    gate.wait_for_log("no such")


def test_logfmt_lines(pg, uuidgate_factory):
    gate = uuidgate_factory({"log_format": "logfmt"})
    exercise(gate)
    gate.stop()
    lines = gate.log().splitlines()
    events = [parse_logfmt(line) for line in lines]
    assert all({"ts", "level", "event"} <= set(e) for e in events), lines
    kinds = {e["event"] for e in events}
    assert {"listening", "login", "client_disconnect", "stopped"} <= kinds, kinds
    assert any("no such\tdb\nreally" in e.get("db", "") for e in events), lines


def test_json_lines(pg, uuidgate_factory):
    gate = uuidgate_factory({"log_format": "json"})
    exercise(gate)
    gate.stop()
    lines = gate.log().splitlines()
    events = [json.loads(line) for line in lines]
    assert all(isinstance(e, dict) and {"ts", "level", "event"} <= set(e) for e in events)
    kinds = {e["event"] for e in events}
    assert {"listening", "login", "client_disconnect", "stopped"} <= kinds, kinds
    assert any(e.get("db") == "no such\tdb\nreally" for e in events), lines


def test_logfile_receives_the_same_lines(pg, uuidgate_factory, tmp_path):
    logfile = tmp_path / "proxy.log"
    gate = uuidgate_factory({"logfile": str(logfile), "log_level": "info"})
    with psycopg.connect(gate.conninfo()) as conn:
        conn.execute("select 1")
    gate.stop()
    assert logfile.read_text() == gate.log()
    assert "event=login" in logfile.read_text()


def test_log_connections_off(pg, uuidgate_factory):
    gate = uuidgate_factory({"log_connections": "no", "log_disconnections": "no", "log_level": "info"})
    with psycopg.connect(gate.conninfo()) as conn:
        conn.execute("select 1")
    gate.stop()
    log = gate.log()
    assert "event=stopped" in log
    assert "event=login" not in log and "event=client_disconnect" not in log


def test_check_flag_does_not_start(pg, tmp_path):
    port = free_port()
    path = write_ini(tmp_path, f"[uuidgate]\nupstream = {pg.conninfo()}\n"
                               f"listen_port = {port}\nmigrate_on_start = no\n")
    out = uuidgate("--check", "-c", path)
    assert out.returncode == 0, out.stderr
    with pytest.raises(OSError):
        RawConn(port=port, timeout=1)
