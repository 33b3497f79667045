#!/usr/bin/env bash
# test/bench/run_proxy_bench.sh — the whole-process benchmark of picket-proxy (issue 3).
#
# Measures, in ONE run and alternating round by round, a direct connection (no redirect),
# HAProxy in tcp mode with and without splice(), and picket-proxy with 1 and 2 worker threads,
# all in the same namespace setup: bulk throughput (1 and 8 streams), connections per second,
# request/response latency p50/p99 and memory per idle connection. It drives the benchmark harness
# in test/bench/harness/ (README.md there): `run.sh --proxy-cmd` runs picket-proxy as uid 1337 in
# the client namespace behind nat OUTPUT REDIRECT → 127.0.0.1:15001.
#
# Usage (root): test/bench/run_proxy_bench.sh [--quick] [extra pkbench options]
#   PICKET_BENCH_HARNESS  harness directory (default: <repo>/test/bench/harness)
#   PICKET_PROXY_BIN      a built picket-proxy (default: built here with bazel)
#   PICKET_CONTROL_BIN    a built picket-control (default: built here with bazel)
#   BAZEL_OUTPUT_BASE     bazel --output_base to build with (optional)
# Output: the table on stdout and test/bench/proxy_results/proxy-<date>[-quick].md (+ .json).
# Not part of the test suite (it takes minutes and needs a quiet machine).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
harness="${PICKET_BENCH_HARNESS:-$repo/test/bench/harness}"
if [[ "$(id -u)" -ne 0 ]]; then
  echo "run_proxy_bench: must run as root (network namespaces, iptables, setpriv)" >&2
  exit 1
fi
[[ -x "$harness/run.sh" ]] || { echo "run_proxy_bench: no harness at $harness" >&2; exit 1; }

proxy_bin="${PICKET_PROXY_BIN:-}"
control_bin="${PICKET_CONTROL_BIN:-}"
if [[ -z "$proxy_bin" || -z "$control_bin" ]]; then
  bazel_cmd=(bazel)
  [[ -n "${BAZEL_OUTPUT_BASE:-}" ]] && bazel_cmd+=(--output_base="$BAZEL_OUTPUT_BASE")
  (cd "$repo" && "${bazel_cmd[@]}" build -c opt //proxy:picket-proxy //control:picket-control)
  bin="$(cd "$repo" && "${bazel_cmd[@]}" info -c opt bazel-bin 2>/dev/null)"
  proxy_bin="${proxy_bin:-$bin/proxy/picket-proxy}"
  control_bin="${control_bin:-$bin/control/picket-control}"
fi

# uid 1337 cannot read under /root: everything the proxy needs goes to a world-readable dir.
work="$(mktemp -d /tmp/picket-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
install -m 755 "$proxy_bin" "$work/picket-proxy"

# The bench pod has no NetworkPolicy: not isolated, every connection is allowed — but each one
# still goes through the filter chain and a policy lookup, as in production.
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

for workers in 1 2; do
  cat > "$work/bootstrap-${workers}w.yaml" <<YAML
node: {namespace: bench, name: client, ips: [10.99.0.1]}
listeners: {outbound_port: 15001, inbound_port: 15006, ipv6: false}
admin: {address: "127.0.0.1:15000"}
flow_log: {path: stdout, log_allowed: false}
policy_file: $work/policy.json
workers: $workers
YAML
done

quick=""
for a in "$@"; do [[ "$a" == "--quick" ]] && quick="-quick"; done
mkdir -p "$repo/test/bench/proxy_results"
out="$repo/test/bench/proxy_results/proxy-$(date +%Y-%m-%d-%H%M)$quick.md"

"$harness/run.sh" --no-install \
  --variants "${PICKET_BENCH_VARIANTS:-direct,haproxy-1t,haproxy-2t,haproxy-splice-1t,haproxy-splice-2t},picket-1w,picket-2w" \
  --proxy-name picket-1w --proxy-cmd "$work/picket-proxy --config $work/bootstrap-1w.yaml --log-level warn" \
  --proxy-name picket-2w --proxy-cmd "$work/picket-proxy --config $work/bootstrap-2w.yaml --log-level warn" \
  --out "$out" "$@"
echo "report: $out"
