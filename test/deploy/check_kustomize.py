#!/usr/bin/env python3
"""Checks what `kubectl kustomize examples/kubernetes` renders (issue 12, "Deploy").

Usage: check_kustomize.py RENDERED_YAML SERVE_HELP_TXT DOCKERFILE

Prints every failed check and exits 1 when there is one.
"""
import re
import sys

import yaml

NAMESPACE = "picket-system"
CONTROL = "picket-control"
XDS_PORT = 15012
# (apiGroup, resource): what the control server's reflector may list and watch, and nothing else.
CONTROL_RESOURCES = {
    ("", "namespaces"),
    ("", "pods"),
    ("", "services"),
    ("networking.k8s.io", "networkpolicies"),
    ("discovery.k8s.io", "endpointslices"),
}
# ... plus exactly one write: create on tokenreviews (certificate issuance, PROTOCOL.md 7.1).
CONTROL_CREATE = {("authentication.k8s.io", "tokenreviews")}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
BINARIES = ["picket-control", "picket-proxy", "picket-init", "picket-inject"]

failures = []


def fail(message):
    failures.append(message)


def find(objects, kind, name, namespace=None):
    found = [
        o for o in objects
        if o.get("kind") == kind and o["metadata"].get("name") == name and
        (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    if len(found) != 1:
        fail(f"expected one {kind} {namespace + '/' if namespace else ''}{name}, found "
             f"{len(found)}")
        return None
    return found[0]


def selects(selector, labels):
    """A label selector (matchLabels only, or a Service's plain map) selects these labels."""
    if not selector:
        return False
    match = selector.get("matchLabels", selector) if "matchExpressions" not in selector else None
    if match is None:
        return False
    return all(labels.get(k) == v for k, v in match.items())


def check_rbac(objects):
    role = find(objects, "ClusterRole", CONTROL)
    if role is None:
        return
    seen, created = set(), set()
    for rule in role.get("rules", []):
        verbs = rule.get("verbs", [])
        if verbs == ["create"]:
            created |= {(g, r) for g in rule.get("apiGroups", []) for r in rule.get("resources", [])}
            if created - CONTROL_CREATE:
                fail(f"ClusterRole {CONTROL}: rule {rule} creates {sorted(created - CONTROL_CREATE)}"
                     f"; only {sorted(CONTROL_CREATE)} may be created")
            continue
        if sorted(verbs) != ["list", "watch"]:
            fail(f"ClusterRole {CONTROL}: rule {rule} has verbs {verbs}, want exactly list, watch "
                 "(or create on tokenreviews)")
        for key in ("resourceNames", "nonResourceURLs"):
            if key in rule:
                fail(f"ClusterRole {CONTROL}: rule {rule} has {key}")
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                if (group, resource) in seen:
                    fail(f"ClusterRole {CONTROL}: {group or 'core'}/{resource} granted twice")
                seen.add((group, resource))
    if created != CONTROL_CREATE:
        fail(f"ClusterRole {CONTROL}: creates {sorted(created)}, want exactly "
             f"{sorted(CONTROL_CREATE)} (TokenReviews for certificate issuance)")
    if seen != CONTROL_RESOURCES:
        fail(f"ClusterRole {CONTROL}: grants {sorted(seen)}, want exactly "
             f"{sorted(CONTROL_RESOURCES)} (missing {sorted(CONTROL_RESOURCES - seen)}, extra "
             f"{sorted(seen - CONTROL_RESOURCES)})")
    binding = find(objects, "ClusterRoleBinding", CONTROL)
    if binding is not None:
        if binding.get("roleRef", {}).get("name") != CONTROL or binding["roleRef"].get(
                "kind") != "ClusterRole":
            fail(f"ClusterRoleBinding {CONTROL}: roleRef {binding.get('roleRef')}")
        want = {"kind": "ServiceAccount", "name": CONTROL, "namespace": NAMESPACE}
        if want not in binding.get("subjects", []):
            fail(f"ClusterRoleBinding {CONTROL}: subjects {binding.get('subjects')} miss {want}")
    find(objects, "ServiceAccount", CONTROL, NAMESPACE)


def flag_value(args, name):
    for a in args:
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    if name in args and args.index(name) + 1 < len(args):
        return args[args.index(name) + 1]
    return None


def resolve_port(port, container):
    """A probe's or Service's targetPort (number or name) → the container port number."""
    for p in container.get("ports", []):
        if port == p.get("name") or port == p.get("containerPort"):
            return p.get("containerPort")
    return None


def check_control(objects, serve_help):
    deployment = find(objects, "Deployment", CONTROL, NAMESPACE)
    if deployment is None:
        return None
    spec = deployment["spec"]
    if spec.get("replicas", 1) < 2:
        fail(f"Deployment {CONTROL}: replicas {spec.get('replicas', 1)}, want >= 2")
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    if not selects(spec.get("selector"), labels):
        fail(f"Deployment {CONTROL}: selector does not select its own pods")
    if pod.get("serviceAccountName") != CONTROL:
        fail(f"Deployment {CONTROL}: serviceAccountName {pod.get('serviceAccountName')}")
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            fail(f"Deployment {CONTROL}: mounts ConfigMap {volume['configMap'].get('name')}")
    containers = [c for c in pod.get("containers", []) if c.get("command") == [CONTROL]]
    if len(containers) != 1:
        fail(f"Deployment {CONTROL}: want one container with command [{CONTROL}], found "
             f"{len(containers)}")
        return labels
    c = containers[0]
    args = c.get("args", [])
    if not args or args[0] != "serve":
        fail(f"Deployment {CONTROL}: args {args} do not start with serve")
    if "--in-cluster" not in args:
        fail(f"Deployment {CONTROL}: args {args} lack --in-cluster")
    for other in ("--manifests", "--kubeconfig"):
        if flag_value(args, other) is not None or other in args:
            fail(f"Deployment {CONTROL}: args use {other} (the source is --in-cluster)")
    # Every flag is one `picket-control serve --help` lists.
    for a in args[1:]:
        if not a.startswith("--"):
            continue
        name = a.split("=", 1)[0]
        if not re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", serve_help):
            fail(f"Deployment {CONTROL}: flag {name} is not in `picket-control serve --help`")
    # xDS on 15012.
    listen = flag_value(args, "--listen")
    if listen is None or not listen.endswith(f":{XDS_PORT}"):
        fail(f"Deployment {CONTROL}: --listen {listen}, want port {XDS_PORT}")
    if resolve_port(XDS_PORT, c) != XDS_PORT:
        fail(f"Deployment {CONTROL}: no containerPort {XDS_PORT}")
    # The admin endpoint: reachable by kubelet, where the probes look.
    admin = flag_value(args, "--admin")
    admin_port = None
    if not admin or ":" not in admin:
        fail(f"Deployment {CONTROL}: --admin {admin!r}: the probes need the admin endpoint")
    else:
        host, _, port = admin.rpartition(":")
        if host.startswith("127.") or host in ("localhost", "[::1]"):
            fail(f"Deployment {CONTROL}: --admin {admin} is loopback; kubelet cannot probe it")
        admin_port = int(port)
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = c.get(probe_name)
        if not probe or "httpGet" not in probe:
            fail(f"Deployment {CONTROL}: {probe_name} {probe} is not an httpGet probe")
            continue
        get = probe["httpGet"]
        if get.get("scheme", "HTTP") != "HTTP":
            fail(f"Deployment {CONTROL}: {probe_name} scheme {get.get('scheme')}; admin is HTTP")
        if admin_port is not None and resolve_port(get.get("port"), c) != admin_port:
            fail(f"Deployment {CONTROL}: {probe_name} port {get.get('port')} is not the admin "
                 f"port {admin_port}")
        if probe_name == "readinessProbe" and get.get("path") != "/ready":
            fail(f"Deployment {CONTROL}: readinessProbe path {get.get('path')}, want /ready")
        if get.get("path") not in ("/ready", "/status"):
            fail(f"Deployment {CONTROL}: {probe_name} path {get.get('path')} is not served")
    requests = c.get("resources", {}).get("requests", {})
    if "cpu" not in requests or "memory" not in requests:
        fail(f"Deployment {CONTROL}: resource requests {requests} lack cpu or memory")
    return labels


def check_pdb_and_service(objects, control_labels):
    pdbs = [o for o in objects if o.get("kind") == "PodDisruptionBudget"]
    ok = [
        p for p in pdbs if p["metadata"].get("namespace") == NAMESPACE and
        selects(p["spec"].get("selector"), control_labels)
    ]
    if len(ok) != 1:
        fail(f"want one PodDisruptionBudget selecting the {CONTROL} pods, found {len(ok)}")
    elif ok[0]["spec"].get("minAvailable") != 1:
        fail(f"PodDisruptionBudget {ok[0]['metadata']['name']}: minAvailable "
             f"{ok[0]['spec'].get('minAvailable')}, want 1")
    service = find(objects, "Service", CONTROL, NAMESPACE)
    if service is not None:
        if not selects(service["spec"].get("selector"), control_labels):
            fail(f"Service {CONTROL}: selector {service['spec'].get('selector')} does not select "
                 f"the {CONTROL} pods")
        ports = [p for p in service["spec"].get("ports", []) if p.get("port") == XDS_PORT]
        if len(ports) != 1:
            fail(f"Service {CONTROL}: no port {XDS_PORT}")
        elif ports[0].get("targetPort", XDS_PORT) not in (XDS_PORT, "xds"):
            fail(f"Service {CONTROL}: port {XDS_PORT} targets {ports[0].get('targetPort')}")


def check_non_root(objects):
    workloads = [o for o in objects if o.get("kind") in WORKLOAD_KINDS]
    if not workloads:
        fail("no workloads rendered")
    for w in workloads:
        pod = w["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext", {})
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            sc = dict(pod_sc)
            sc.update({k: v for k, v in c.get("securityContext", {}).items()})
            where = f"{w['kind']} {w['metadata'].get('name')} container {c.get('name')}"
            if sc.get("runAsNonRoot") is not True:
                fail(f"{where}: runAsNonRoot is not true")
            if sc.get("runAsUser", 65532) == 0 or sc.get("runAsGroup", 65532) == 0:
                fail(f"{where}: runs as user or group 0")
            if sc.get("privileged") or sc.get("allowPrivilegeEscalation", True):
                fail(f"{where}: privileged or allowPrivilegeEscalation not false")


def check_dockerfile(text):
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    if not froms or froms[-1].split()[1] != "debian:12-slim":
        fail(f"Dockerfile: final stage {froms[-1:]} is not FROM debian:12-slim")
    copies = " ".join(l for l in lines if l.upper().startswith("COPY "))
    for b in BINARIES:
        if not re.search(r"bazel-bin/\S*/" + re.escape(b) + r"(?![\w-])", copies):
            fail(f"Dockerfile: no COPY of bazel-bin/.../{b}")
    users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] != "65532":
        fail(f"Dockerfile: last USER {users[-1:]} is not 65532")


def main():
    rendered, help_file, dockerfile = sys.argv[1:4]
    with open(rendered) as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    with open(help_file) as f:
        serve_help = f.read()
    if "--in-cluster" not in serve_help:
        fail(f"`picket-control serve --help` does not look like serve's help:\n{serve_help}")
    check_rbac(objects)
    labels = check_control(objects, serve_help) or {}
    check_pdb_and_service(objects, labels)
    for o in objects:
        if o.get("kind") == "ConfigMap" and o["metadata"].get("name") == "picket-manifests":
            fail("ConfigMap picket-manifests is still rendered (serve reads the API)")
        if o.get("kind") == "Namespace" and o["metadata"].get("name") != NAMESPACE:
            fail(f"Namespace {o['metadata'].get('name')} is rendered: the example app is applied "
                 f"on its own, not with the kustomization")
    check_non_root(objects)
    with open(dockerfile) as f:
        check_dockerfile(f.read())
    kinds = sorted({o.get("kind") for o in objects})
    if failures:
        for message in failures:
            print("FAIL:", message, file=sys.stderr)
        return 1
    print(f"ok: {len(objects)} objects ({', '.join(kinds)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
