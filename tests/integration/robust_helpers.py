"""Shared by the hostile-client, fault and load tests: process figures from
/proc, a check that a proxy still serves an ordinary client, and a small TCP
forwarder between uuidgate and PostgreSQL that can stall or cut the network."""

import os
import socket
import struct
import threading
import time

import psycopg


def rss_kb(pid):
    """Resident set size of a process, in kB (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def assert_serving(gate, dbname="postgres", user="postgres", **extra):
    """An ordinary client logs in through the proxy and runs a query."""
    assert gate.running(), f"uuidgate exited with {gate.proc.returncode}; log:\n{gate.log()[-3000:]}"
    with psycopg.connect(gate.conninfo(dbname=dbname, user=user, connect_timeout=10, **extra)) as conn:
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


class FaultyLink:
    """A TCP forwarder on loopback (listen port -> target port) whose
    forwarding can be paused (the network stalls: bytes wait, nothing is
    lost, no RST), resumed, or cut (every connection reset)."""

    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.running = threading.Event()
        self.running.set()
        self.conns = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def conninfo(self, dbname="postgres", user="postgres", **extra):
        parts = [f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=10)
                s.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, s]
            threading.Thread(target=self._pump, args=(c, s), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.running.wait()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pause(self):
        self.running.clear()

    def resume(self):
        self.running.set()

    def cut(self):
        """Drops every open connection: both ends see the link go (the
        blocked forwarding threads wake up and close their sockets)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.resume()
        self.sock.close()
        self.cut()
