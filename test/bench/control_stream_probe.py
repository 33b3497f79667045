#!/usr/bin/env python3
"""The control server's memory under the per-stream buffering attack (issue 11).

Starts `picket-control serve` (the binary given) on loopback with fresh certificates and an
empty manifest directory, records its RSS, then opens N TLS streams with ONE pod's certificate.
Each sends a frame header announcing HEADER bytes and BODY bytes of that body, then holds the
connection open. After the sends finish (or the server closes the stream), it waits SETTLE
seconds, records the server's RSS again and its /status "stats", prints one JSON line and
stops everything.

    bazel build //control:picket-control
    test/bench/control_stream_probe.py bazel-bin/control/picket-control \\
        [--streams 16] [--header-mib 16] [--body-mib 15]

On a binary without the bounds (main before them), the attack is accepted as is; with them, a
header over the request frame limit (4 MiB by default) is refused at once, and at most two
streams per identity stay open.
"""
import argparse
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def attack(port, certs, header, body, results, index):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(certs, "ca.pem"))
    ctx.load_cert_chain(os.path.join(certs, "pods", "default.a.pem"),
                        os.path.join(certs, "pods", "default.a-key.pem"))
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port))
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    sent = 0
    try:
        tls.sendall(struct.pack(">I", header))
        chunk = b"x" * (1 << 20)
        while sent < body:
            n = min(len(chunk), body - sent)
            tls.sendall(chunk[:n])
            sent += n
        results[index] = ("held", sent, tls)
    except (OSError, ssl.SSLError) as e:
        results[index] = ("closed by server: " + type(e).__name__, sent, tls)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--header-mib", type=float, default=16)
    ap.add_argument("--body-mib", type=float, default=15)
    ap.add_argument("--settle", type=float, default=3.0)
    args = ap.parse_args()
    header = min(int(args.header_mib * (1 << 20)), 16 << 20)
    body = int(args.body_mib * (1 << 20))

    tmp = tempfile.mkdtemp(prefix="ctl-probe-")
    certs, manifests = os.path.join(tmp, "certs"), os.path.join(tmp, "manifests")
    os.makedirs(manifests)
    subprocess.run([args.binary, "certs", "--out", certs, "--server-ip", "127.0.0.1",
                    "--pod", "default/a"], check=True, stdout=subprocess.DEVNULL)
    port, admin = free_port(), free_port()
    server = subprocess.Popen(
        [args.binary, "serve", "--manifests", manifests, "--listen", f"127.0.0.1:{port}",
         "--admin", f"127.0.0.1:{admin}", "--tls-cert", os.path.join(certs, "server.pem"),
         "--tls-key", os.path.join(certs, "server-key.pem"), "--tls-ca",
         os.path.join(certs, "ca.pem")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/status", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        before = rss_kib(server.pid)
        results = [None] * args.streams
        threads = [threading.Thread(target=attack, args=(port, certs, header, body, results, i))
                   for i in range(args.streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        time.sleep(args.settle)
        after = rss_kib(server.pid)
        status = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{admin}/status", timeout=5).read())
        outcomes = {}
        for r in results:
            key = r[0] if r else "no result"
            outcomes[key] = outcomes.get(key, 0) + 1
        print(json.dumps({
            "streams": args.streams, "header_bytes": header, "body_bytes": body,
            "rss_before_mb": round(before / 1024, 1), "rss_after_mb": round(after / 1024, 1),
            "client_outcomes": outcomes, "server_stats": status.get("stats", {}),
        }, sort_keys=True))
        for r in results:
            if r:
                r[2].close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        subprocess.run(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
