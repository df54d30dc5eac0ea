"""What the deployment files in conf/ rely on: systemd notifications from a
real uuidgate (READY=1 only when the gate opens, EXTEND_TIMEOUT_USEC while
it migrates, STOPPING=1), the container healthcheck against a real /livez,
and the files themselves (the unit verifies, the YAML parses and says what
docs/deploy.md promises, the sidecar's configuration passes --check)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
import yaml

from gate_helpers import TableLock, gate_settings, http_port, v39_copy, wait_lock_wait, wait_open
from harness import ROOT, UUIDGATE_BIN, free_port

CONF = os.path.join(ROOT, "conf")


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []

    def drain(self):
        """Everything queued now (uuidgate keeps sending while it migrates)."""
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return self.messages

    def seen(self, prefix):
        return [m for m in self.drain() if any(line.startswith(prefix) for line in m.splitlines())]

    def close(self):
        self.sock.close()


def wait_for(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_systemd_ready_only_when_the_gate_opens(pg, uuidgate_factory, tmp_path):
    db = v39_copy(pg, "deploy_notify")
    notify = NotifySocket(str(tmp_path))
    try:
        with TableLock(db):
            gate = uuidgate_factory(gate_settings(), upstream=db,
                                    env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
            wait_lock_wait(gate)
            assert not notify.seen("READY=1")
            extends = notify.seen("EXTEND_TIMEOUT_USEC=")
            assert extends, notify.messages
            assert any("STATUS=phoenix_kit V40 migration in progress" in m for m in extends)
        wait_open(gate)
        assert wait_for(lambda: notify.seen("READY=1")), notify.messages
        assert wait_for(lambda: notify.seen("WATCHDOG=1")), notify.messages
        gate.signal(signal.SIGTERM)
        assert gate.wait(15) is not None
        assert notify.seen("STOPPING=1"), notify.messages
    finally:
        notify.close()


def test_container_healthcheck_command_against_livez(pg, uuidgate_factory):
    with open(os.path.join(CONF, "Containerfile")) as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.M)
    assert m, "no HEALTHCHECK ... CMD [...] in the Containerfile"
    cmd = yaml.safe_load(m.group(1))  # a JSON array
    assert "/livez" in " ".join(cmd)
    gate = uuidgate_factory({"http_listen": f"127.0.0.1:{free_port()}"}, upstream=pg.conninfo())
    live = [c.replace("8080", str(http_port(gate))) for c in cmd]
    assert subprocess.run(live, timeout=10).returncode == 0
    dead = [c.replace("8080", str(free_port())) for c in cmd]
    assert subprocess.run(dead, timeout=10, stderr=subprocess.DEVNULL).returncode != 0


def runtime_packages():
    with open(os.path.join(CONF, "Containerfile")) as f:
        values = set(re.findall(r'ARG RUNTIME_PACKAGES="([^"]*)"', f.read()))
    assert len(values) == 1, "both stages must name the same RUNTIME_PACKAGES"
    return values.pop().split()


@pytest.mark.skipif(not shutil.which("dpkg") or not shutil.which("readelf"), reason="needs dpkg and readelf")
def test_container_runtime_packages_cover_the_binary():
    out = subprocess.run(["readelf", "-d", UUIDGATE_BIN], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"Shared library: \[(.*?)\]", out)
    wanted = set(runtime_packages())
    for lib in needed:
        if lib.startswith(("libc.so", "ld-linux")):
            continue
        if lib.startswith(("libasan", "libubsan")):
            pytest.skip("a sanitizer build")
        owner = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True)
        pkg = owner.stdout.split(":", 1)[0]
        assert pkg in wanted, f"{lib} comes from {pkg}, missing from RUNTIME_PACKAGES"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_systemd_unit_verifies(tmp_path):
    with open(os.path.join(CONF, "uuidgate.service")) as f:
        unit = f.read()
    for key in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                "ProtectSystem=strict", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                "CapabilityBoundingSet=\n", "KillSignal=SIGTERM"):
        assert key in unit, key
    path = tmp_path / "uuidgate.service"
    path.write_text(unit.replace("/usr/bin/uuidgate", UUIDGATE_BIN))
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def load_yaml(*parts):
    with open(os.path.join(CONF, *parts)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def test_sidecar_manifest(tmp_path):
    docs = {d["kind"]: d for d in load_yaml("kubernetes", "sidecar.yaml")}
    assert {"Deployment", "ConfigMap", "Secret"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (sidecar,) = [c for c in pod["initContainers"] if c["name"] == "uuidgate"]
    assert sidecar["restartPolicy"] == "Always"
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports == {"postgres": 6432, "http": 8080}
    for probe in ("startupProbe", "livenessProbe"):
        assert sidecar[probe]["httpGet"]["path"] == "/livez", probe
        assert sidecar[probe]["httpGet"]["port"] in ("http", 8080)
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in sidecar["env"]}
    assert "UUIDGATE_UPSTREAM" in env
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == docs["Secret"]["metadata"]["name"]
    assert "$(DB_PASSWORD)" in env["UUIDGATE_UPSTREAM"]["value"]
    assert list(env).index("DB_PASSWORD") < list(env).index("UUIDGATE_UPSTREAM")
    (app,) = pod["containers"]
    app_env = {e["name"]: e.get("value", "") for e in app["env"]}
    assert "@127.0.0.1:6432/" in app_env["DATABASE_URL"]
    mount = sidecar["volumeMounts"][0]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True

    ini = docs["ConfigMap"]["data"]["uuidgate.ini"]
    assert re.search(r"^http_listen = 0\.0\.0\.0:8080$", ini, re.M)
    assert not re.search(r"^upstream\s*=", ini, re.M), "the password belongs in the Secret"
    path = tmp_path / "uuidgate.ini"
    path.write_text(ini)
    r = subprocess.run([UUIDGATE_BIN, "--check", "-c", str(path)], capture_output=True, text=True,
                       env=dict(os.environ, UUIDGATE_UPSTREAM="host=db dbname=app user=app"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert pod["terminationGracePeriodSeconds"] > int(re.search(r"^shutdown_timeout = (\d+)s", ini, re.M).group(1))


def test_compose_file():
    (compose,) = load_yaml("compose.yaml")
    services = compose["services"]
    assert {"postgres", "uuidgate", "app"} <= set(services)
    gate = services["uuidgate"]
    assert gate["build"]["dockerfile"] == "conf/Containerfile"
    assert "UUIDGATE_UPSTREAM" in gate["environment"]
    assert gate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["app"]["depends_on"]["uuidgate"]["condition"] == "service_healthy"
    assert "@uuidgate:6432/" in services["app"]["environment"]["DATABASE_URL"]
    fixture = services["fixture"]
    assert fixture["profiles"] == ["demo"]
    assert gate["depends_on"]["fixture"]["required"] is False
    assert os.path.exists(os.path.join(ROOT, "tests", "fixtures", "load_v39.sh"))
