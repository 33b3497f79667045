#!/usr/bin/env bash
# test/bench/held_connections_rss.sh — picket-proxy's memory per held (idle) connection at
# `limits.max_connections: 10000` with 10,000 connections held (issue 11's figure).
#
# Drives the harness (test/bench/harness/, README.md there) with its `mem` metric only: the
# harness opens N connections through nat OUTPUT REDIRECT → picket-proxy (uid 1337) → its server,
# holds them, and reports (proxy RSS/PSS with N − with 0) / N, next to a direct run.
#
# Usage (root): test/bench/held_connections_rss.sh [N=9900] [rounds=3]
#   PICKET_PROXY_BIN, PICKET_CONTROL_BIN: built binaries (default: bazel build -c opt here)
# Output: the table on stdout and the report path (under $TMPDIR, not committed by default).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
n="${1:-9900}"
rounds="${2:-3}"
[[ "$(id -u)" -eq 0 ]] || { echo "held_connections_rss: must run as root" >&2; exit 1; }
proxy_bin="${PICKET_PROXY_BIN:-}"
control_bin="${PICKET_CONTROL_BIN:-}"
if [[ -z "$proxy_bin" || -z "$control_bin" ]]; then
  (cd "$repo" && bazel build -c opt //proxy:picket-proxy //control:picket-control >&2)
  bin="$(cd "$repo" && bazel info -c opt bazel-bin 2>/dev/null)"
  proxy_bin="${proxy_bin:-$bin/proxy/picket-proxy}"
  control_bin="${control_bin:-$bin/control/picket-control}"
fi
work="$(mktemp -d /tmp/picket-held.XXXXXX)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
install -m 755 "$proxy_bin" "$work/picket-proxy"
cat > "$work/manifests.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: v1
kind: Pod
metadata: {namespace: bench, name: client, labels: {app: client}}
spec:
  containers: [{name: c, image: x}]
status: {podIPs: [{ip: 10.99.0.1}]}
---
apiVersion: v1
kind: Pod
metadata: {namespace: bench, name: server, labels: {app: server}}
spec:
  containers: [{name: c, image: x}]
status: {podIPs: [{ip: 10.99.0.2}, {ip: 10.99.0.3}]}
YAML
"$control_bin" compile -f "$work/manifests.yaml" --pod bench/client -o "$work/policy.json"
chmod 644 "$work/policy.json"
cat > "$work/bootstrap.yaml" <<YAML
node: {namespace: bench, name: client, ips: [10.99.0.1]}
listeners: {outbound_port: 15001, inbound_port: 15006, ipv6: false}
admin: {address: "127.0.0.1:15000"}
flow_log: {path: stdout, log_allowed: false}
limits: {max_connections: 10000}
policy_file: $work/policy.json
workers: 1
YAML
# The proxy holds two descriptors per connection: N is bounded by the open-files limit (the
# harness refuses 2N + 200 over it; with `ulimit -n` 20000 that is N = 9,900).
"$repo/test/bench/harness/run.sh" --no-install --variants direct,picket-1w --metrics mem \
  --idle-conns "$n" --rounds "$rounds" \
  --proxy-name picket-1w --proxy-cmd "$work/picket-proxy --config $work/bootstrap.yaml --log-level warn" \
  --out "${TMPDIR:-/tmp}/picket-held-$(date +%Y-%m-%d-%H%M).md"
