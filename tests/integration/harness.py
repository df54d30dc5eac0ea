"""Real processes for the integration tests: a private PostgreSQL cluster and
uuidgate instances, started on free ports under a temporary directory.

When the tests run as root, PostgreSQL runs as the `postgres` user (it refuses
to run as root); uuidgate runs as whoever runs the tests."""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("UUIDGATE_BUILD_DIR", os.path.join(ROOT, "build"))


def find_uuidgate_binary(build_dir=BUILD_DIR):
    """The uuidgate binary: $UUIDGATE_BIN, else build/uuidgate (where the root
    meson.build puts it) or build/proxy/uuidgate (where it used to be built);
    when both exist, the one built last wins, so a stale leftover is never used."""
    if os.environ.get("UUIDGATE_BIN"):
        return os.environ["UUIDGATE_BIN"]
    candidates = [os.path.join(build_dir, "uuidgate"), os.path.join(build_dir, "proxy", "uuidgate")]
    present = [c for c in candidates if os.path.exists(c)]
    if not present:
        return candidates[0]
    return max(present, key=os.path.getmtime)


UUIDGATE_BIN = find_uuidgate_binary()


def pg_bindir():
    if os.environ.get("PG_BINDIR"):
        return os.environ["PG_BINDIR"]
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]))
    if not dirs:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql; "
                           "install the postgresql package")
    return dirs[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, host="127.0.0.1", timeout=15.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")


def running_as_root():
    return os.geteuid() == 0


def _demote_cmd(cmd):
    """Prefix a command so it runs as `postgres` when we are root."""
    if running_as_root():
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def make_tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def give_to_postgres(path):
    if running_as_root():
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def make_certs(directory, names=("localhost",), ips=("127.0.0.1",)):
    """A private CA and a server certificate signed by it, made with the
    openssl CLI. Returns a dict of paths: ca, ca_key, cert, key."""
    os.makedirs(directory, exist_ok=True)
    p = {k: os.path.join(directory, f) for k, f in
         (("ca", "ca.crt"), ("ca_key", "ca.key"), ("cert", "server.crt"), ("key", "server.key"),
          ("csr", "server.csr"), ("ext", "server.ext"))}

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=uuidgate test CA",
        "-keyout", p["ca_key"], "-out", p["ca"])
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
        "-keyout", p["key"], "-out", p["csr"])
    san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{i}" for i in ips])
    with open(p["ext"], "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", p["csr"], "-CA", p["ca"], "-CAkey", p["ca_key"], "-CAcreateserial",
        "-days", "30", "-extfile", p["ext"], "-out", p["cert"])
    for k in ("ca", "cert"):
        os.chmod(p[k], 0o644)
    os.chmod(directory, 0o755)
    return p


class PgServer:
    """One PostgreSQL cluster: initdb, configure, start, stop."""

    def __init__(self, base=None, port=None, settings=None, hba=None, ssl=False):
        self.base = base or make_tmpdir("uuidgate-pg-")
        self.datadir = os.path.join(self.base, "data")
        self.sockdir = os.path.join(self.base, "sock")
        self.port = port or free_port()
        self.settings = settings or {}
        self.hba = hba
        self.ssl = ssl
        self.bindir = pg_bindir()
        self.logfile = os.path.join(self.base, "postgres.log")

    def _run(self, cmd, **kw):
        return subprocess.run(_demote_cmd(cmd), check=True, capture_output=True, text=True, **kw)

    def init(self):
        os.makedirs(self.sockdir, exist_ok=True)
        give_to_postgres(self.base)
        give_to_postgres(self.sockdir)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", "postgres",
                   "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "max_connections": "120",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "password_encryption": "'scram-sha-256'",
        }
        conf.update(self.ssl_settings())
        conf.update(self.settings)
        with open(os.path.join(self.datadir, "postgresql.auto.conf"), "a") as f:
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        if self.hba is not None:
            self.write_hba(self.hba)
        return self

    def ssl_settings(self):
        """`ssl` is False or a dict with `cert` and `key` paths (PEM); they are
        copied into the data directory, owned by postgres, mode 0600."""
        if not self.ssl:
            return {}
        names = {}
        for kind in ("cert", "key"):
            dst = os.path.join(self.datadir, f"server.{kind}")
            shutil.copyfile(self.ssl[kind], dst)
            os.chmod(dst, 0o600)
            give_to_postgres(dst)
            names[kind] = dst
        return {"ssl": "on", "ssl_cert_file": f"'{names['cert']}'",
                "ssl_key_file": f"'{names['key']}'"}

    def write_hba(self, lines):
        path = os.path.join(self.datadir, "pg_hba.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        give_to_postgres(path)

    def pg_ctl(self, *args):
        return self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir,
                          "-l", self.logfile, "-w", "-t", "60", *args])

    def start(self):
        self.pg_ctl("start")
        return self

    def reload(self):
        self.pg_ctl("reload")

    def stop(self, mode="fast"):
        try:
            self.pg_ctl("stop", "-m", mode)
        except subprocess.CalledProcessError:
            pass

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def conninfo(self, dbname="postgres", user="postgres", **extra):
        parts = [f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    def sql(self, query, dbname="postgres", user="postgres"):
        """Runs SQL with psql over TCP as the superuser; returns stdout."""
        out = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
                              "-v", "ON_ERROR_STOP=1", "-d", self.conninfo(dbname, user),
                              "-c", query],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


def sanitizer_reports(text):
    """The lines of a log that come from AddressSanitizer, UndefinedBehavior-
    Sanitizer or LeakSanitizer (an instrumented build writes them to stderr)."""
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


class Uuidgate:
    """One uuidgate process with a generated config file."""

    # Every instance made in this test process, so that the test suite can
    # check each one's log for sanitizer reports.
    instances = []

    def __init__(self, upstream, settings=None, base=None, binary=UUIDGATE_BIN, env=None):
        Uuidgate.instances.append(self)
        self.sanitizer_checked = 0
        self.base = base or make_tmpdir("uuidgate-proxy-")
        self.port = free_port()
        self.settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "upstream": upstream,
            "migrate_on_start": "no",
            "log_level": "debug",
        }
        self.settings.update(settings or {})
        self.binary = binary
        self.env = env
        self.proc = None
        self.config_path = os.path.join(self.base, "uuidgate.ini")
        self.logfile = os.path.join(self.base, "uuidgate.log")

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write("[uuidgate]\n")
            for k, v in self.settings.items():
                if v is not None:
                    f.write(f"{k} = {v}\n")

    def start(self, wait=True):
        self.write_config()
        env = dict(os.environ)
        env.update(self.env or {})
        self._log = open(self.logfile, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.config_path],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        if wait:
            wait_for_port(self.port, proc=self.proc)
        return self

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
        return self.proc.returncode if self.proc else None

    def reload(self, **changes):
        """Rewrites the config with `changes` (None removes a key) and sends SIGHUP."""
        self.settings.update(changes)
        self.write_config()
        self.signal(signal.SIGHUP)

    def wait(self, timeout=10):
        """Waits for the process to exit; returns its exit status or None."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_for_log(self, needle, timeout=10.0, since=0):
        """Waits until the log (from character `since`) contains `needle`;
        returns the log text."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if needle in text[since:]:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not logged within {timeout}s; log:\n{text[since:]}")
            time.sleep(0.05)

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def conninfo(self, dbname="postgres", user="postgres", **extra):
        parts = [f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)
