#!/usr/bin/env python3
"""The measuring half of examples/quickstart.sh: pods, servers, probes, reports.

quickstart.sh owns the lifecycle (namespaces, links, processes, cleanup); this file owns what
happens inside the pods' network namespaces once they exist:

  pods        reads the demo's cluster manifest and writes pods.json (name, netns, ip, dirs)
  serve       one process serving TCP and UDP on every pod's ports; the greeting (the answer to
              a datagram) names pod and port
  probe       connects (TCP) or sends a datagram (UDP) from every pod to every other pod on
              every port, in parallel
  admin       GETs a path from every sidecar's admin endpoint (127.0.0.1 inside each pod)
  wait-ready  waits until every sidecar answers /ready with 200
  wait-policy waits until every sidecar enforces the policy version `picket-control compile`
              computes for its pod from the current manifests
  step        probes, compares with `picket-control matrix`, prints both grids and the new
              DROPPED flow records; exit 1 when observation and prediction differ
  wait-control  waits until the control server answers /ready
  control-status  one paragraph from the control server's /status
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
        # Values may be quoted ("y": a bare y is a boolean to kubectl's YAML 1.1).
        name = re.search(r"(?m)^  name:\s*(\S+)", meta.group(1)).group(1).strip("'\"")
        ns = re.search(r"(?m)^  namespace:\s*(\S+)", meta.group(1)).group(1).strip("'\"")
        ip = re.search(r"(?m)^  podIP:\s*(\S+)", doc).group(1)
        pods.append({"name": f"{ns}/{name}", "namespace": ns, "pod": name, "ip": ip,
                     "netns": f"{args.prefix}-{ns}-{name}",
                     "dir": os.path.join(args.workdir, "pods", f"{ns}-{name}"),
                     "flow_log": os.path.join(args.workdir, "pods", f"{ns}-{name}",
                                              "flows.jsonl"),
                     "expected": os.path.join(args.workdir, "expected", f"{ns}-{name}.json")})
    if not pods:
        sys.exit(f"{args.cluster}: no Pod with status.podIP found")
    with open(args.out, "w") as f:
        json.dump(pods, f, indent=1)
    for p in pods:
        print(p["name"], p["namespace"], p["pod"], p["ip"], p["netns"], p["dir"])


# ---------------------------------------------------------------------------------------------
# serve


class DatagramGreeter(asyncio.DatagramProtocol):
    """Answers every datagram with the greeting: a UDP probe is allowed when the answer comes."""

    def __init__(self, greeting):
        self.greeting = greeting
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(self.greeting, addr)


def cmd_serve(args):
    pods = load_pods(args.pods)
    ports = [int(p) for p in args.ports.split(",")]
    protocols = parse_protocols(args.protocols)
    listeners = []
    datagram = []
    for p in pods:
        with NetNs(p["netns"]):
            for port in ports:
                greeting = f"{p['name']}:{port}\n".encode()
                if "TCP" in protocols:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("0.0.0.0", port))
                    s.listen(128)
                    s.setblocking(False)
                    listeners.append((s, greeting))
                if "UDP" in protocols:
                    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    u.bind(("0.0.0.0", port))
                    u.setblocking(False)
                    datagram.append((u, greeting))

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
        for u, g in datagram:
            await loop.create_datagram_endpoint(lambda g=g: DatagramGreeter(g), sock=u)
        with open(args.ready + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(args.ready + ".tmp", args.ready)
        await stop
        for s in servers:
            s.close()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# probe


def parse_protocols(text):
    protocols = [p.strip().upper() for p in text.split(",") if p.strip()]
    bad = [p for p in protocols if p not in ("TCP", "UDP")]
    if bad or not protocols:
        sys.exit(f"--protocols: want TCP and/or UDP, got {text!r}")
    return protocols


def probe(pods, ports, timeout, protocols=("TCP",), udp_timeout=1.5):
    """Every ordered pair of distinct pods, every port and protocol:
    {(from, to, port, protocol): (allowed, detail)}.

    TCP: allowed means the server's greeting arrived and names the destination pod and port; a
    reset, a refusal, an EOF without the greeting or the timeout count as denied.
    UDP: one datagram, one new flow; allowed means the greeting came back. A dropped datagram
    gives no answer at all, so denied is the silence of `udp_timeout` (or an ICMP refusal).
    """
    sel = selectors.DefaultSelector()
    results = {}
    start = time.monotonic()
    for src in pods:
        with NetNs(src["netns"]):
            for dst in pods:
                if dst is src:
                    continue
                for port in ports:
                    want = f"{dst['name']}:{port}\n".encode()
                    for proto in protocols:
                        key = (src["name"], dst["name"], port, proto)
                        if proto == "UDP":
                            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            s.setblocking(False)
                            s.connect((dst["ip"], port))
                            s.send(b"probe\n")
                            sel.register(s, selectors.EVENT_READ,
                                         [key, want, b"", "datagram", start + udp_timeout])
                            continue
                        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        s.setblocking(False)
                        rc = s.connect_ex((dst["ip"], port))
                        if rc not in (0, errno.EINPROGRESS):
                            results[key] = (False, errno.errorcode.get(rc, str(rc)))
                            s.close()
                            continue
                        sel.register(s, selectors.EVENT_WRITE,
                                     [key, want, b"", "connecting", start + timeout])

    def expire(now):
        for k in list(sel.get_map().values()):
            if k.data[4] <= now:
                results[k.data[0]] = (False, "timeout")
                sel.unregister(k.fileobj)
                k.fileobj.close()

    while sel.get_map():
        now = time.monotonic()
        expire(now)
        if not sel.get_map():
            break
        left = min(k.data[4] for k in sel.get_map().values()) - now
        for k, _ in sel.select(max(left, 0)):
            s, state = k.fileobj, k.data
            key, want = state[0], state[1]
            done = None
            if state[3] == "datagram":
                try:
                    data = s.recv(256)
                except OSError as e:
                    done = (False, errno.errorcode.get(e.errno, str(e.errno)).lower().lstrip("e"))
                else:
                    done = (True, "greeting") if data == want else (
                        False, "wrong greeting " + data.decode(errors="replace").strip())
            elif state[3] == "connecting":
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
    return results


def cmd_probe(args):
    pods = load_pods(args.pods)
    ports = [int(p) for p in args.ports.split(",")]
    res = probe(pods, ports, args.timeout, parse_protocols(args.protocols), args.udp_timeout)
    out = {"probes": [{"from": f, "to": t, "port": p, "protocol": proto, "allowed": a,
                       "detail": d} for (f, t, p, proto), (a, d) in sorted(res.items())]}
    json.dump(out, sys.stdout, indent=1)
    print()
    if args.expect_all_allowed and not all(a for a, _ in res.values()):
        bad = [f"{f} -> {t}:{p}/{proto} ({d})"
               for (f, t, p, proto), (a, d) in sorted(res.items()) if not a]
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


def canonical_policy(content):
    """A policy snapshot's meaning, independent of how identity ids were numbered.

    Identity ids are the compiler's own numbering (a long-running control server keeps the ids
    of unchanged label sets; an offline compile numbers afresh), so identity sets are replaced
    by the pods they stand for, and the snapshot's version (a hash over the ids) is dropped.
    """
    # A sidecar's /config_dump shows only the address entries its rules name and its own
    # (proxy/admin.h, PolicyDumpJson), and a pod no policy isolates is pushed no entries at all
    # (scoped pushes, control/PROTOCOL.md 6.1): compare the same cut of a compiled policy.
    def ids_of(items):
        # An identity set lists ids, a run of them as [first, last].
        for i in items:
            if isinstance(i, list):
                yield from range(i[0], i[1] + 1)
            else:
                yield i
    sets = [list(ids_of(ids)) for ids in content.get("pod_policy", {}).get("identity_sets", [])]
    named = {i for ids in sets for i in ids}
    own = (content.get("namespace"), content.get("pod"))
    isolated = any(content.get("pod_policy", {}).get(d, {}).get("isolated")
                   for d in ("ingress", "egress"))
    pods_of = {}
    entries = []
    for e in content.get("address_map", []):
        if not isolated:
            continue
        if e.get("identity") not in named and (e.get("namespace"), e.get("pod")) != own:
            continue
        pods_of.setdefault(e.get("identity"), []).append(f"{e.get('namespace')}/{e.get('pod')}")
        entries.append({k: v for k, v in e.items() if k != "identity"})
    pol = dict(content.get("pod_policy", {}))
    pol["identity_sets"] = [sorted(p for i in ids for p in pods_of.get(i, []))
                            for ids in sets]
    entries.sort(key=lambda e: (e.get("namespace"), e.get("pod")))
    return json.dumps({"address_map": entries, "pod_policy": pol}, sort_keys=True)


def sidecar_policy(p, admin):
    """The policy a sidecar enforces, from its /config_dump: {version, content} or None."""
    status, body = http_get(p["netns"], admin, "/config_dump", timeout=0.5)
    if status != 200:
        return None
    try:
        return json.loads(body).get("policy")
    except ValueError:
        return None


def cmd_wait_policy(args):
    """Waits until every sidecar enforces the policy `picket-control compile` computes for it.

    Whether the policy came from a policy_file or from the control server, each sidecar must end
    up enforcing what the offline compiler makes of the current manifests for its pod: the same
    version (a content hash), or failing that the same content up to identity numbering.
    """
    pods = load_pods(args.pods)
    want = {}
    for p in pods:
        with open(p["expected"]) as f:
            compiled = json.load(f)
        want[p["name"]] = (compiled["version"], canonical_policy(compiled))
    deadline = time.monotonic() + args.timeout
    have = {}
    done = set()
    while True:
        for p in pods:
            name = p["name"]
            if name in done:
                continue
            pol = sidecar_policy(p, args.admin) or {}
            have[name] = pol.get("version")
            if have[name] == want[name][0] or (
                    pol.get("content") and canonical_policy(pol["content"]) == want[name][1]):
                done.add(name)
        late = [n for n in want if n not in done]
        if not late:
            return
        if time.monotonic() >= deadline:
            sys.exit("sidecars still on another policy after %ss: %s" % (
                args.timeout, ", ".join(f"{n} has {have.get(n)}, wants {want[n][0]}"
                                        for n in late)))
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# step: observe, predict, compare, explain


def grid_rows(pods, port, proto, cells):
    """cells: {(from, to, port, protocol): '.'|'X'}; rows of a 9x9 grid in the upstream suite's
    notation."""
    names = [p["name"] for p in pods]
    nss = []
    for n in names:
        ns = n.split("/")[0]
        if ns not in nss:
            nss.append(ns)
    head1 = " ".join(f"{ns:<{2 * sum(1 for n in names if n.startswith(ns + '/')) - 1}}"
                     for ns in nss)
    head2 = " ".join(n.split("/")[1] for n in names)
    rows = [head1, head2]
    for f in names:
        rows.append(" ".join("-" if f == t else cells.get((f, t, port, proto), "?")
                             for t in names))
    return names, rows


def print_grids(pods, ports, protocols, observed, predicted, mismatched):
    for port, proto in [(port, proto) for proto in protocols for port in ports]:
        names, obs = grid_rows(pods, port, proto, observed)
        _, pre = grid_rows(pods, port, proto, predicted)
        w = len(obs[1]) + 4
        print(f"    {'port ' + str(port) + '/' + proto:<14}{'observed':<{w}}predicted")
        labels = ["from \\ to", ""] + names
        for i, label in enumerate(labels):
            note = ""
            if i >= 2:
                bad = [t for t in names if (label, t, port, proto) in mismatched]
                if bad:
                    note = "   <- differs: " + ", ".join(bad)
            print(f"    {label:<14}{obs[i]:<{w}}{pre[i]}{note}".rstrip())
        print()


def flow_of(rec):
    return rec.get("flow", rec) if isinstance(rec, dict) else {}


def picket_facts(fl):
    """Picket's own facts of a flow (close_reason, policy_detail, ...): Hubble's flow.proto has no
    field for them, so the sidecar puts them in `extensions` (an Any holding a Struct)."""
    ext = (fl.get("extensions") or {}).get("value") or {}
    return ext.get("picket") or {}


def endpoint_name(ep, ip):
    ep = ep or {}
    if ep.get("namespace") and ep.get("pod_name"):
        return f"{ep['namespace']}/{ep['pod_name']}"
    return ip or "?"


def read_new_records(pods, offsets):
    out = []
    for p in pods:
        path = p["flow_log"]
        try:
            with open(path, "rb") as f:
                f.seek(offsets.get(p["name"], 0))
                data = f.read()
        except FileNotFoundError:
            continue
        # Only whole lines: a record being written is read on the next poll.
        data = data[: data.rfind(b"\n") + 1]
        for line in data.decode(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            out.append((p["name"], rec))
    return out


def summarize_drops(records):
    """Groups DROPPED records by (sidecar, direction, reason, deciding policies)."""
    groups = {}
    for pod, rec in records:
        fl = flow_of(rec)
        if fl.get("verdict") != "DROPPED":
            continue
        ip = fl.get("IP") or {}
        l4 = fl.get("l4") or {}
        proto = next((p for p in ("TCP", "UDP", "SCTP") if l4.get(p)), "?")
        l4p = l4.get(proto) or {}
        src = endpoint_name(fl.get("source"), ip.get("source"))
        dst = endpoint_name(fl.get("destination"), ip.get("destination"))
        direction = fl.get("traffic_direction", "?")
        reason = fl.get("drop_reason_desc") or picket_facts(fl).get("close_reason") or "?"
        pols = []
        for k in ("ingress_denied_by", "egress_denied_by"):
            for pol in fl.get(k) or []:
                pols.append(f"{pol.get('namespace', '?')}/{pol.get('name', '?')}")
        key = (pod, direction, reason, ", ".join(sorted(set(pols))))
        peer = src if direction == "INGRESS" else dst
        groups.setdefault(key, {}).setdefault(peer, set()).add(
            f"{l4p.get('destination_port', '?')}/{proto}")
    return groups


def print_drops(groups):
    for (pod, direction, reason, pols), peers in sorted(groups.items()):
        what = "from" if direction == "INGRESS" else "to"
        where = "inbound" if direction == "INGRESS" else "outbound"
        sel = f"; selected by {pols}" if pols else ""
        print(f"    {pod} ({where}, {reason}{sel}) refused flows {what}:")
        items = [f"{peer}:{','.join(str(x) for x in sorted(ports, key=str))}"
                 for peer, ports in sorted(peers.items())]
        line = "      "
        for it in items:
            if len(line) + len(it) > 98:
                print(line.rstrip())
                line = "      "
            line += it + "  "
        print(line.rstrip())


def cmd_step(args):
    pods = load_pods(args.pods)
    ports = [int(p) for p in args.ports.split(",")]
    t0 = time.monotonic()
    offsets = {}
    for p in pods:
        try:
            offsets[p["name"]] = os.path.getsize(p["flow_log"])
        except OSError:
            offsets[p["name"]] = 0
    protocols = parse_protocols(args.protocols)
    res = probe(pods, ports, args.timeout, protocols, args.udp_timeout)
    probe_s = time.monotonic() - t0
    observed = {k: "." if a else "X" for k, (a, _) in res.items()}

    with open(args.predicted) as f:
        pred_json = json.load(f)
    predicted = {}
    for pr in pred_json["probes"]:
        proto = pr.get("protocol", "TCP")
        if proto not in protocols or pr["from"] == pr["to"]:
            continue
        predicted[(pr["from"], pr["to"], int(pr["port"]), proto)] = "." if pr["allowed"] else "X"

    mismatched = {k for k in observed if predicted.get(k) != observed[k]}
    denied = sum(1 for v in observed.values() if v == "X")

    # Every denied connection or datagram flow leaves exactly one DROPPED record, in the sidecar
    # that decided.
    groups, ndrops = {}, 0
    deadline = time.monotonic() + args.drops_timeout
    while True:
        groups = summarize_drops(read_new_records(pods, offsets))
        ndrops = sum(len(ports_) for g in groups.values() for ports_ in g.values())
        if ndrops >= denied or time.monotonic() >= deadline:
            break
        time.sleep(0.05)

    if not args.quiet:
        print_grids(pods, ports, protocols, observed, predicted, mismatched)
    if mismatched:
        print(f"    DIFFERS from the prediction in {len(mismatched)} of {len(observed)} cells:")
        shown = sorted(mismatched)[:args.max_diffs]
        for f, t, port, proto in shown:
            a, detail = res[(f, t, port, proto)]
            want = predicted.get((f, t, port, proto)) == "."
            print(f"      {f} -> {t}:{port}/{proto}: observed {'allowed' if a else 'denied'}"
                  f" ({detail}), predicted {'allowed' if want else 'denied'}")
        if len(mismatched) > len(shown):
            print(f"      ... and {len(mismatched) - len(shown)} more")
    else:
        print(f"    observed == predicted: all {len(observed)} cells agree "
              f"({len(observed) - denied} allowed, {denied} denied)")
    print(f"    new DROPPED flow records: {ndrops}"
          + ("" if ndrops == denied else f" (expected {denied}, one per denied flow)"))
    if not args.quiet:
        print_drops(groups)
    result = {"index": args.index, "title": args.title, "cells": len(observed),
              "allowed": len(observed) - denied, "denied": denied, "drops": ndrops,
              "mismatches": len(mismatched), "probe_seconds": round(probe_s, 2),
              "wait_seconds": args.wait_seconds}
    with open(args.out, "w") as f:
        json.dump(result, f)
    sys.exit(1 if mismatched else 0)


def cmd_summary(args):
    rows = []
    for path in args.results:
        with open(path) as f:
            rows.append(json.load(f))
    print(f"  {'step':<40} {'allowed':>7} {'denied':>6} {'DROPPED':>7} {'policy wait':>11} "
          f"{'probes':>6}  prediction")
    for r in rows:
        wait = f"{r['wait_seconds']:.2f}s" if r.get("wait_seconds") is not None else "-"
        verdict = "agrees" if r["mismatches"] == 0 else f"DIFFERS in {r['mismatches']} cells"
        print(f"  {str(r['index']) + '. ' + r['title']:<40} {r['allowed']:>7} {r['denied']:>6} "
              f"{r['drops']:>7} {wait:>11} {r['probe_seconds']:>5.2f}s  {verdict}")


def cmd_wait_control(args):
    """Waits until the control server answers /ready with 200 (its first manifest load)."""
    deadline = time.monotonic() + args.timeout
    last = (0, "")
    while time.monotonic() < deadline:
        last = http_get(args.netns, args.admin, "/ready", timeout=0.5)
        if last[0] == 200:
            return
        time.sleep(0.02)
    sys.exit(f"control server not ready after {args.timeout}s: {last[0]} {last[1].strip()[:200]}")


def cmd_control_status(args):
    """One paragraph from the control server's /status (run in the node namespace)."""
    status, body = http_get(args.netns, args.admin, "/status")
    if status != 200:
        print(f"  control server: /status answered {status or 'nothing'}")
        return
    st = json.loads(body)
    stats = st.get("stats", {})
    man = st.get("manifests", {})
    res = st.get("resources", {})
    counts = ", ".join(f"{v.get('count', 0)} {k.rsplit('.', 1)[-1]}" for k, v in sorted(res.items()))
    errors = len(man.get("errors") or []) + len(man.get("cluster_errors") or [])
    print(f"  control server: {len(st.get('sidecars') or [])} sidecars connected; "
          f"{man.get('reloads', 0)} manifest loads, {errors} manifest errors; "
          f"{stats.get('responses_sent', 0)} responses sent, {stats.get('acks', 0)} ACKs, "
          f"{stats.get('nacks', 0)} NACKs; holds {counts}")


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
    p.add_argument("--protocols", default="TCP")
    p.add_argument("--ready", required=True)
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("probe")
    p.add_argument("--pods", required=True)
    p.add_argument("--ports", default="80,81")
    p.add_argument("--protocols", default="TCP")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--udp-timeout", type=float, default=1.5)
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

    p = sub.add_parser("wait-policy")
    p.add_argument("--pods", required=True)
    p.add_argument("--admin", default="127.0.0.1:15000")
    p.add_argument("--timeout", type=float, default=20)
    p.set_defaults(fn=cmd_wait_policy)

    p = sub.add_parser("step")
    p.add_argument("--pods", required=True)
    p.add_argument("--ports", default="80,81")
    p.add_argument("--protocols", default="TCP")
    p.add_argument("--udp-timeout", type=float, default=1.5)
    p.add_argument("--predicted", required=True)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--drops-timeout", type=float, default=3.0)
    p.add_argument("--wait-seconds", type=float)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--max-diffs", type=int, default=24)
    p.set_defaults(fn=cmd_step)

    p = sub.add_parser("wait-control")
    p.add_argument("--netns", required=True)
    p.add_argument("--admin", default="127.0.0.1:15013")
    p.add_argument("--timeout", type=float, default=20)
    p.set_defaults(fn=cmd_wait_control)

    p = sub.add_parser("control-status")
    p.add_argument("--netns", required=True)
    p.add_argument("--admin", default="127.0.0.1:15013")
    p.set_defaults(fn=cmd_control_status)

    p = sub.add_parser("summary")
    p.add_argument("results", nargs="+")
    p.set_defaults(fn=cmd_summary)

    args = ap.parse_args()
    # Ctrl-C reaches the whole process group: end at once, as a signalled process, so that the
    # quick start's own trap reports the interruption (no KeyboardInterrupt traceback).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    args.fn(args)


if __name__ == "__main__":
    main()
