#!/usr/bin/env python3
"""The measuring half of examples/quickstart.sh: pods, servers, probes, reports.

quickstart.sh owns the lifecycle (namespaces, links, processes, cleanup); this file owns what
happens inside the pods' network namespaces once they exist:

  pods        reads the demo's cluster manifest and writes pods.json (name, netns, ip, dirs)
  serve       one process serving TCP on every pod's ports; the greeting names pod and port
  probe       connects from every pod to every other pod on every port, in parallel
  admin       GETs a path from every sidecar's admin endpoint (127.0.0.1 inside each pod)
  wait-ready  waits until every sidecar answers /ready with 200
  wait-policy waits until every sidecar has acknowledged the policy version the control
              server published after a change
  step        probes, compares with `picket-control matrix`, prints both grids and the new
              DROPPED flow records; exit 1 when observation and prediction differ
  summary     the table at the end

It enters a pod's network namespace with setns(2) on the calling thread: a socket belongs to the
namespace it was created in and keeps working after the thread moves on, so one process can
serve or probe all nine pods at once. Standard library only (Debian 12's python3).
"""

import argparse
import asyncio
import ctypes
import errno
import json
import os
import re
import selectors
import signal
import socket
import sys
import time
import urllib.parse

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetNs:
    """Context manager: the calling thread runs in /run/netns/<name> until exit."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            self._setns(target)
        finally:
            os.close(target)
        return self

    def __exit__(self, *exc):
        try:
            self._setns(self.home)
        finally:
            os.close(self.home)

    @staticmethod
    def _setns(fd):
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns: {os.strerror(e)}")


def load_pods(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# pods


def cmd_pods(args):
    """Pods of the cluster manifest, in manifest order (x/a, x/b, ... z/c)."""
    text = open(args.cluster).read()
    pods = []
    for doc in re.split(r"(?m)^---\s*$", text):
        if not re.search(r"(?m)^kind:\s*Pod\s*$", doc):
            continue
        meta = re.search(r"(?ms)^metadata:\n(.*?)(?=^\S)", doc + "\nend:")
        name = re.search(r"(?m)^  name:\s*(\S+)", meta.group(1)).group(1)
        ns = re.search(r"(?m)^  namespace:\s*(\S+)", meta.group(1)).group(1)
        ip = re.search(r"(?m)^  podIP:\s*(\S+)", doc).group(1)
        pods.append({"name": f"{ns}/{name}", "namespace": ns, "pod": name, "ip": ip,
                     "netns": f"{args.prefix}-{ns}-{name}",
                     "dir": os.path.join(args.workdir, "pods", f"{ns}-{name}")})
    if not pods:
        sys.exit(f"{args.cluster}: no Pod with status.podIP found")
    with open(args.out, "w") as f:
        json.dump(pods, f, indent=1)
    for p in pods:
        print(p["name"], p["namespace"], p["pod"], p["ip"], p["netns"], p["dir"])


# ---------------------------------------------------------------------------------------------
# serve


def cmd_serve(args):
    pods = load_pods(args.pods)
    ports = [int(p) for p in args.ports.split(",")]
    listeners = []
    for p in pods:
        with NetNs(p["netns"]):
            for port in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
                s.listen(128)
                s.setblocking(False)
                listeners.append((s, f"{p['name']}:{port}\n".encode()))

    async def main():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

        def handler(greeting):
            async def serve(reader, writer):
                try:
                    writer.write(greeting)
                    await writer.drain()
                    writer.close()
                    await writer.wait_closed()
                except OSError:
                    pass
            return serve

        servers = [await asyncio.start_server(handler(g), sock=s) for s, g in listeners]
        with open(args.ready + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(args.ready + ".tmp", args.ready)
        await stop
        for s in servers:
            s.close()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# probe


def probe(pods, ports, timeout):
    """Every ordered pair of distinct pods, every port: {(from, to, port): (allowed, detail)}.

    Allowed means the server's greeting arrived and names the destination pod and port; a reset,
    a refusal, an EOF without the greeting or the timeout count as denied.
    """
    sel = selectors.DefaultSelector()
    results = {}
    for src in pods:
        with NetNs(src["netns"]):
            for dst in pods:
                if dst is src:
                    continue
                for port in ports:
                    key = (src["name"], dst["name"], port)
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    rc = s.connect_ex((dst["ip"], port))
                    if rc not in (0, errno.EINPROGRESS):
                        results[key] = (False, errno.errorcode.get(rc, str(rc)))
                        s.close()
                        continue
                    want = f"{dst['name']}:{port}\n".encode()
                    sel.register(s, selectors.EVENT_WRITE, [key, want, b"", "connecting"])
    deadline = time.monotonic() + timeout
    while sel.get_map():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for k, _ in sel.select(left):
            s, state = k.fileobj, k.data
            key, want = state[0], state[1]
            done = None
            if state[3] == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    done = (False, errno.errorcode.get(err, str(err)).lower().lstrip("e"))
                else:
                    state[3] = "reading"
                    sel.modify(s, selectors.EVENT_READ, state)
                    continue
            else:
                try:
                    chunk = s.recv(256)
                except ConnectionResetError:
                    done = (False, "reset")
                except OSError as e:
                    done = (False, errno.errorcode.get(e.errno, str(e.errno)).lower())
                else:
                    if chunk:
                        state[2] += chunk
                        continue
                    if state[2] == want:
                        done = (True, "greeting")
                    elif state[2]:
                        done = (False, "wrong greeting " + state[2].decode(errors="replace")
                                .strip())
                    else:
                        done = (False, "closed")
            sel.unregister(s)
            s.close()
            results[key] = done
    for k in list(sel.get_map().values()):
        results[k.data[0]] = (False, "timeout")
        sel.unregister(k.fileobj)
        k.fileobj.close()
    return results


def cmd_probe(args):
    pods = load_pods(args.pods)
    ports = [int(p) for p in args.ports.split(",")]
    res = probe(pods, ports, args.timeout)
    out = {"probes": [{"from": f, "to": t, "port": p, "protocol": "TCP", "allowed": a,
                       "detail": d} for (f, t, p), (a, d) in sorted(res.items())]}
    json.dump(out, sys.stdout, indent=1)
    print()
    if args.expect_all_allowed and not all(a for a, _ in res.values()):
        bad = [f"{f} -> {t}:{p} ({d})" for (f, t, p), (a, d) in sorted(res.items()) if not a]
        sys.exit("not allowed: " + ", ".join(bad))


# ---------------------------------------------------------------------------------------------
# admin


def http_get(netns, addr, path, timeout=1.0):
    """GET http://addr/path from inside netns: (status, body); status 0 when unreachable."""
    host, port = addr.rsplit(":", 1)
    with NetNs(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, int(port)))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return 0, ""
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        return 0, ""
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        body = dechunk(body)
    return int(m.group(1)), body.decode(errors="replace")


def dechunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def cmd_admin(args):
    pods = load_pods(args.pods)
    out = {}
    for p in pods:
        status, body = http_get(p["netns"], args.admin, args.path)
        out[p["name"]] = {"status": status, "body": body}
    json.dump(out, sys.stdout, indent=1)
    print()


def cmd_wait_ready(args):
    pods = load_pods(args.pods)
    deadline = time.monotonic() + args.timeout
    waiting = {p["name"]: p for p in pods}
    last = {}
    while waiting and time.monotonic() < deadline:
        for name, p in list(waiting.items()):
            status, body = http_get(p["netns"], args.admin, "/ready", timeout=0.5)
            last[name] = f"{status} {body.strip()[:80]}"
            if status == 200:
                del waiting[name]
        if waiting:
            time.sleep(0.05)
    if waiting:
        sys.exit("sidecars not ready after %ss: %s" % (
            args.timeout, "; ".join(f"{n}: {last.get(n)}" for n in waiting)))


# ---------------------------------------------------------------------------------------------
# main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("pods")
    p.add_argument("--cluster", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_pods)

    p = sub.add_parser("serve")
    p.add_argument("--pods", required=True)
    p.add_argument("--ports", default="80,81")
    p.add_argument("--ready", required=True)
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("probe")
    p.add_argument("--pods", required=True)
    p.add_argument("--ports", default="80,81")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--expect-all-allowed", action="store_true")
    p.set_defaults(fn=cmd_probe)

    p = sub.add_parser("admin")
    p.add_argument("--pods", required=True)
    p.add_argument("--admin", default="127.0.0.1:15000")
    p.add_argument("--path", required=True)
    p.set_defaults(fn=cmd_admin)

    p = sub.add_parser("wait-ready")
    p.add_argument("--pods", required=True)
    p.add_argument("--admin", default="127.0.0.1:15000")
    p.add_argument("--timeout", type=float, default=20)
    p.set_defaults(fn=cmd_wait_ready)

    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
