#!/usr/bin/env python3
"""Writes the project's cases, test/conformance/cases/1*.yaml: more cases from upstream's
network_policy.go (Kubernetes e2e network-policy suite), in the format of the upstream cases
beside them (0*.yaml; same namespaces and pods, see cases/README.md). The expected tables encode
upstream's Reachability expectations for each test (default + ExpectPeer overrides), written by
hand from the upstream test bodies, not computed by our engine. The Namespaces and Pods are
copied from the upstream case given on the command line.

Usage (from the repository root):
  test/conformance/tools/make_cases.py test/conformance/cases/001-*.yaml
"""
import sys

PODS = [f"{ns}/{p}" for ns in "xyz" for p in "abc"]


def table(default, overrides):
    """overrides: list of (from_pred, to_pred, allowed), applied in order like ExpectPeer."""
    rows = {}
    for f in PODS:
        cells = []
        for t in PODS:
            if f == t:
                cells.append("-")
                continue
            v = default
            for fp, tp, allowed in overrides:
                if fp(f) and tp(t):
                    v = allowed
            cells.append("." if v else "X")
        rows[f] = " ".join(cells)
    return rows


ANY = lambda p: True
def ns(n): return lambda p: p.split("/")[0] == n
def pod(name): return lambda p: p == name


CASES = [
    {
        "file": "101-deny-egress-from-all-pods-in-a-namespace.yaml",
        "name": "should deny egress from all pods in a namespace",
        "probes": [(80, "TCP"), (81, "TCP")],
        "expected": lambda port, proto: table(True, [(ns("x"), ANY, False)]),
        "policies": """\
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: deny-egress-ns-x
    namespace: x
  spec:
    podSelector: {}
    policyTypes: [Egress]
""",
    },
    {
        "file": "102-enforce-policy-based-on-multiple-podselectors-and-namespaceselectors.yaml",
        "name": "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
        "probes": [(80, "TCP")],
        "expected": lambda port, proto: table(True, [
            (ANY, pod("x/a"), False),
            (lambda p: p in ("y/b", "y/c", "z/b", "z/c"), pod("x/a"), True)]),
        "policies": """\
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: allow-ns-x-pod-b-c
    namespace: x
  spec:
    podSelector:
      matchLabels: {pod: a}
    ingress:
    - from:
      - namespaceSelector:
          matchExpressions: [{key: ns, operator: NotIn, values: [x]}]
        podSelector:
          matchExpressions: [{key: pod, operator: In, values: [b, c]}]
""",
    },
    {
        "file": "103-enforce-policy-based-on-namespaceselector-with-matchexpressions.yaml",
        "name": "should enforce policy based on NamespaceSelector with MatchExpressions",
        "probes": [(80, "TCP")],
        "expected": lambda port, proto: table(True, [
            (ANY, pod("x/a"), False), (ns("y"), pod("x/a"), True)]),
        "policies": """\
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: allow-ns-y-match-selector
    namespace: x
  spec:
    podSelector:
      matchLabels: {pod: a}
    ingress:
    - from:
      - namespaceSelector:
          matchExpressions: [{key: ns, operator: In, values: [y]}]
""",
    },
    {
        "file": "104-enforce-ingress-policy-allowing-any-port-traffic-on-a-specific-protocol.yaml",
        "name": "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
        "probes": [(80, "TCP"), (81, "TCP"), (80, "UDP")],
        "expected": lambda port, proto: table(True, [] if proto == "TCP" else [(ANY, pod("x/a"), False)]),
        "policies": """\
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: allow-ingress-by-proto
    namespace: x
  spec:
    podSelector:
      matchLabels: {pod: a}
    ingress:
    - ports:
      - protocol: TCP
""",
    },
    {
        "file": "105-project-ingress-port-range-from-pods-notin.yaml",
        "name": "should allow ingress on a port range (endPort) from pods without a label (NotIn)",
        # Not a single upstream test: combines upstream's endPort and NotIn semantics
        # ("should enforce policy to allow ingress traffic from pods in all namespaces" family).
        "probes": [(80, "TCP"), (81, "TCP"), (81, "UDP")],
        "expected": lambda port, proto: table(True, [
            (ANY, ns("y"), False),
            (lambda p: p.split("/")[1] != "a", ns("y"), port == 81 and proto == "TCP")]),
        "policies": """\
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: allow-81-range-not-a
    namespace: y
  spec:
    podSelector: {}
    ingress:
    - from:
      - namespaceSelector: {}
        podSelector:
          matchExpressions: [{key: pod, operator: NotIn, values: [a]}]
      ports:
      - port: 81
        endPort: 85
""",
    },
]


def main():
    src = open(sys.argv[1]).read()
    manifests = src[src.index("manifests:\n"):]
    manifests = manifests[: manifests.index("- apiVersion: networking.k8s.io/v1")]
    for case in CASES:
        out = ["# GENERATED by test/conformance/tools/make_cases.py -- do not edit by hand.",
               "# Upstream: kubernetes/kubernetes test/e2e/network/netpol/network_policy.go",
               f"name: {case['name']}",
               "source: test/e2e/network/netpol/network_policy.go",
               "pods: [" + ", ".join(PODS) + "]",
               "probes:"]
        for port, proto in case["probes"]:
            out += [f"- port: {port}", f"  protocol: {proto}"]
        out.append("expected:")
        for port, proto in case["probes"]:
            out.append(f"  {port}/{proto}:")
            for f, row in case["expected"](port, proto).items():
                out.append(f"    {f}: '{row}'")
        text = "\n".join(out) + "\n" + manifests + case["policies"]
        with open(f"test/conformance/cases/{case['file']}", "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
