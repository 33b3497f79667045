"""Starts fake_apiserver.py for one test and talks to it: HTTPS requests, raw watch streams.

Owns: the server process (started with its own --dir under TEST_TMPDIR, awaited through its
ready file with a deadline, stopped by PID with SIGTERM and required to exit 0; its --dir is
removed then). Used by the tests in this folder. One FakeApiServer (one keep-alive connection)
per thread: client() makes another; a RawWatch may be read on any one thread.
"""

import copy, http.client, json, os, shutil, signal, socket, ssl, subprocess, tempfile, time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_apiserver.py")
DEADLINE_S = 30


def wait_for(predicate, what, deadline_s=DEADLINE_S, poll_s=0.02):
    """Polls predicate until it returns a truthy value (returned) or the deadline passes."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(poll_s)


class FakeApiServer:
    def __init__(self, *extra_args):
        base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
        self.dir = tempfile.mkdtemp(prefix="apiserver.", dir=base)
        self.proc = subprocess.Popen(["/usr/bin/python3", SERVER, "--dir", self.dir,
                                      *extra_args])
        ready = os.path.join(self.dir, "ready")

        def is_ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"fake_apiserver exited with {self.proc.returncode}")
            return os.path.exists(ready)
        wait_for(is_ready, "fake_apiserver's ready file")
        with open(ready) as f:
            self.port = int(f.read())
        self.ssl = ssl.create_default_context(cafile=self.path("ca.crt"))
        self.host = "::1" if "::1" in extra_args else "127.0.0.1"
        self.conn = None

    def path(self, name):
        return os.path.join(self.dir, name)

    def token(self):
        with open(self.path("token")) as f:
            return f.read().strip()

    def client(self):
        """Another client of the same server with its own connection (for another thread);
        close() it when done."""
        other = copy.copy(self)
        other.conn = None
        return other

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def stop(self):
        self.close()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(DEADLINE_S)
        shutil.rmtree(self.dir, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"fake_apiserver exited with {code} on SIGTERM")

    def request(self, method, path, body=None, token=None, headers=None):
        """(status, headers, parsed JSON or raw bytes) of one request on a new connection."""
        hdrs = {"Authorization": "Bearer " + (self.token() if token is None else token),
                "Accept": "application/json"}
        if token == "":
            del hdrs["Authorization"]
        hdrs.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):  # one keep-alive connection (few ports: CI machines run out)
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ssl,
                                                        timeout=DEADLINE_S)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw
        return resp.status, resp.headers, payload

    def ok(self, method, path, body=None, headers=None):
        status, _, payload = self.request(method, path, body, headers=headers)
        if status >= 300:
            raise AssertionError(f"{method} {path}: {status} {payload}")
        return payload

    def control(self, action, **query):
        q = urllib.parse.urlencode(query)
        return self.ok("GET" if action in ("stats", "requests") else "POST",
                       f"/_test/{action}" + ("?" + q if q else ""))

    def create_pod(self, ns, name, labels=None, pod_ip=None):
        pod = self.ok("POST", f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        if pod_ip:
            pod = self.ok("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status",
                          {"status": {"podIP": pod_ip, "podIPs": [{"ip": pod_ip}]}},
                          {"Content-Type": "application/merge-patch+json"})
        return pod


class RawWatch:
    """A watch read at the HTTP/1.1 chunk level, to see framing as a client's parser does."""

    def __init__(self, server, path):
        raw = socket.create_connection((server.host, server.port), timeout=DEADLINE_S)
        self.sock = server.ssl.wrap_socket(raw, server_hostname="127.0.0.1")
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Authorization: Bearer {server.token()}\r\n"
                           "Accept: application/json\r\n\r\n").encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if l)}
        self.chunk_sizes, self.data, self.ended = [], b"", False

    def _fill(self):
        got = self.sock.recv(65536)
        if not got:
            raise EOFError("connection closed")
        self.buf += got

    def _until(self, sep):
        while sep not in self.buf:
            self._fill()
        out, self.buf = self.buf.split(sep, 1)
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def next_event(self):
        """The next {type, object}; None when the stream ended with its last chunk.
        Raises EOFError when the connection closed without the terminating chunk."""
        while b"\n" not in self.data:
            if self.ended:
                return None
            size = int(self._until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._exact(2)
                self.ended = True
                continue
            self.chunk_sizes.append(size)
            self.data += self._exact(size)
            if self._exact(2) != b"\r\n":
                raise AssertionError("chunk not followed by CRLF")
        line, self.data = self.data.split(b"\n", 1)
        return json.loads(line)

    def close(self):
        self.sock.close()
