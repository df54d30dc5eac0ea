"""A small raw-socket PostgreSQL protocol client for the cases a real driver
will not produce: odd startup packets, bad lengths, bytes after SSLRequest,
direct TLS, half-finished logins.

Only what the tests need: build packets, read whole messages, parse
ErrorResponse and NegotiateProtocolVersion, and log in with trust, cleartext
or md5 authentication."""

import hashlib
import socket
import ssl
import struct
import time

SSL_REQUEST_CODE = (1234 << 16) | 5679
GSSENC_REQUEST_CODE = (1234 << 16) | 5680
CANCEL_REQUEST_CODE = (1234 << 16) | 5678

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10


class ConnectionClosed(Exception):
    """The peer closed the connection (EOF or reset)."""


def startup_packet(params, major=3, minor=0):
    body = struct.pack("!I", (major << 16) | minor)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def ssl_request():
    return struct.pack("!II", 8, SSL_REQUEST_CODE)


def gssenc_request():
    return struct.pack("!II", 8, GSSENC_REQUEST_CODE)


def cancel_request(pid, secret):
    return struct.pack("!IIII", 16, CANCEL_REQUEST_CODE, pid, secret)


def message(mtype, payload=b""):
    return mtype.encode() + struct.pack("!I", len(payload) + 4) + payload


def raw_header(mtype, length):
    """A message header with an arbitrary (possibly invalid) length field."""
    return mtype.encode() + struct.pack("!I", length & 0xFFFFFFFF)


def query(sql):
    return message("Q", sql.encode() + b"\0")


def terminate():
    return message("X")


def sasl_initial_response(mechanism, data):
    """SASLInitialResponse ('p'): mechanism name, then the client-first message."""
    return message("p", mechanism.encode() + b"\0" + struct.pack("!I", len(data)) + data)


def parse_error(payload):
    """ErrorResponse/NoticeResponse fields as a dict keyed by field letter."""
    fields = {}
    i = 0
    while i < len(payload) and payload[i] != 0:
        code = chr(payload[i])
        end = payload.index(b"\0", i + 1)
        fields[code] = payload[i + 1:end].decode(errors="replace")
        i = end + 1
    return fields


def parse_negotiate(payload):
    """NegotiateProtocolVersion: ((major, minor), [unrecognised options]).
    The first field is a whole protocol version code, as PostgreSQL sends it."""
    version, n = struct.unpack("!II", payload[:8])
    names = payload[8:].split(b"\0")[:n]
    return (version >> 16, version & 0xFFFF), [x.decode() for x in names]


class PgError(Exception):
    def __init__(self, fields):
        self.fields = fields
        super().__init__(f"{fields.get('C')}: {fields.get('M')}")

    @property
    def sqlstate(self):
        return self.fields.get("C")


class RawConn:
    """One connection; every read waits at most `timeout` seconds."""

    def __init__(self, host="127.0.0.1", port=5432, timeout=10.0, sock=None, unix_path=None):
        self.timeout = timeout
        if sock is not None:
            self.sock = sock
        elif unix_path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix_path)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.params = {}
        self.backend_key = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
                raise ConnectionClosed(str(e)) from e
            if not chunk:
                raise ConnectionClosed("end of stream")
            self.buf += chunk

    def read_bytes(self, n):
        self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_message(self):
        """Returns (type, payload) of the next whole message."""
        self._fill(5)
        mtype = chr(self.buf[0])
        (length,) = struct.unpack("!I", self.buf[1:5])
        self._fill(1 + length)
        payload = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return mtype, payload

    def read_error(self):
        """Reads messages until an ErrorResponse and returns its fields."""
        while True:
            mtype, payload = self.read_message()
            if mtype == "E":
                return parse_error(payload)

    def is_closed(self, timeout=None):
        """True when the peer has closed: reads return EOF (any unread
        bytes are discarded)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except OSError:
            return True
        finally:
            try:
                self.sock.settimeout(self.timeout)
            except OSError:
                pass
        return False

    def wrap_tls(self, context, server_hostname=None):
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.sock.settimeout(self.timeout)

    def login(self, user="postgres", database="postgres", password=None, params=None,
              minor=0):
        """Sends a StartupMessage and completes a trust/cleartext/md5 login.
        Returns the list of (type, payload) messages received up to and
        including ReadyForQuery. Raises PgError on an ErrorResponse."""
        p = {"user": user, "database": database}
        p.update(params or {})
        self.send(startup_packet(p, minor=minor))
        return self.finish_login(user, password)

    def finish_login(self, user="postgres", password=None):
        seen = []
        while True:
            mtype, payload = self.read_message()
            seen.append((mtype, payload))
            if mtype == "E":
                raise PgError(parse_error(payload))
            if mtype == "R":
                (code,) = struct.unpack("!I", payload[:4])
                if code == AUTH_CLEARTEXT:
                    self.send(message("p", password.encode() + b"\0"))
                elif code == AUTH_MD5:
                    salt = payload[4:8]
                    inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(message("p", b"md5" + outer.encode() + b"\0"))
                elif code != AUTH_OK:
                    raise AssertionError(f"unsupported authentication request {code}")
            elif mtype == "S":
                k, v = payload.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif mtype == "K":
                self.backend_key = struct.unpack("!II", payload[:8])
            elif mtype == "Z":
                return seen

    def simple_query(self, sql):
        """Runs a simple query; returns (rows, errors) where rows are lists
        of text values (None for NULL) and errors are ErrorResponse dicts."""
        self.send(query(sql))
        rows, errors = [], []
        while True:
            mtype, payload = self.read_message()
            if mtype == "D":
                (n,) = struct.unpack("!H", payload[:2])
                i, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", payload[i:i + 4])
                    i += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(payload[i:i + ln].decode())
                        i += ln
                rows.append(row)
            elif mtype == "E":
                errors.append(parse_error(payload))
            elif mtype == "Z":
                return rows, errors


def tls_context(cafile=None, alpn=("postgresql",), verify=True):
    ctx = ssl.create_default_context(cafile=cafile) if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx
