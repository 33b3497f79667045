#!/usr/bin/env bash
# test/bench/run_proxy_bench.sh — the whole-process benchmark of picket-proxy (issue 3).
#
# Measures, in ONE run and alternating round by round, a direct connection (no redirect),
# HAProxy in tcp mode with and without splice(), picket-proxy relaying with 1 and 2 worker threads
# (capture: relay) and picket-proxy judging each new flow's first packet without relaying it
# (capture: verdict; with its kernel verdict cache, and without it: picket-verdict-uncached), all in
# the same namespace setup: bulk throughput (1 and 8 streams),
# connections per second with the sidecar's CPU per 1,000 new connections, request/response
# latency p50/p99 and memory per idle connection. It drives the benchmark harness in
# test/bench/harness/ (README.md there): `run.sh --proxy-cmd` runs picket-proxy as uid 1337 in the
# client namespace; picket-1w/-2w sit behind the harness's nat OUTPUT REDIRECT → 127.0.0.1:15001,
# picket-verdict behind `picket-init --capture=verdict` (`--proxy-init`, run as root in the client
# namespace) with ambient CAP_NET_ADMIN (`--proxy-caps`) to read the verdict queue.
#
# Usage (root): test/bench/run_proxy_bench.sh [--quick] [--decompose] [extra pkbench options]
#   PICKET_BENCH_HARNESS  harness directory (default: <repo>/test/bench/harness)
#   PICKET_PROXY_BIN      a built picket-proxy (default: built here with bazel)
#   PICKET_CONTROL_BIN    a built picket-control (default: built here with bazel)
#   PICKET_INIT_BIN       a built picket-init (default: built here with bazel)
#   PICKET_BENCH_VARIANTS the harness's own variants before the picket ones
#                         (default: direct,haproxy-1t,haproxy-2t,haproxy-splice-1t,haproxy-splice-2t)
#   BAZEL_OUTPUT_BASE     bazel --output_base to build with (optional)
# Output: the table on stdout and test/bench/proxy_results/proxy-<date>[-quick][-decompose].md
# (+ .json).
#
# --decompose: instead of the peers, where verdict mode's per-packet cost is. Direct and
# picket-verdict, plus picket-verdict with tables of picket-init's rules deleted after it ran
# (`nft delete table`, package nftables): picket-verdict-no-filter (no reject, no listener
# guard), picket-verdict-no-conntrack (nat and raw: nothing loads connection tracking, so no
# Service redirect and no UDP capture), picket-verdict-mangle-only (the SYN judge and the cache
# alone) and picket-verdict-tproxy-not-nat (a TPROXY rule instead of nat, which loads
# IP defragmentation). Each is a measurement, not a configuration anyone can run: the bench only
# sends allowed traffic to pod addresses, so what the deleted rules do never happens.
#
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
init_bin="${PICKET_INIT_BIN:-}"
if [[ -z "$proxy_bin" || -z "$control_bin" || -z "$init_bin" ]]; then
  bazel_cmd=(bazel)
  [[ -n "${BAZEL_OUTPUT_BASE:-}" ]] && bazel_cmd+=(--output_base="$BAZEL_OUTPUT_BASE")
  (cd "$repo" && "${bazel_cmd[@]}" build -c opt //proxy:picket-proxy //control:picket-control //inject:picket-init)
  bin="$(cd "$repo" && "${bazel_cmd[@]}" info -c opt bazel-bin 2>/dev/null)"
  proxy_bin="${proxy_bin:-$bin/proxy/picket-proxy}"
  control_bin="${control_bin:-$bin/control/picket-control}"
  init_bin="${init_bin:-$bin/inject/picket-init}"
fi

# uid 1337 cannot read under /root: everything the proxy needs goes to a world-readable dir.
work="$(mktemp -d /tmp/picket-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
install -m 755 "$proxy_bin" "$work/picket-proxy"
# picket-init runs as root; a copy keeps a rebuild during the run from changing it mid-way.
install -m 755 "$init_bin" "$work/picket-init"

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
# Verdict mode: the kernel carries allowed flows, nothing is relayed. Only worker 0 binds the verdict
# queue and judges packets (other workers would only run outbound listeners for Service addresses,
# which this bench has none of), so one worker is the whole sidecar here.
cat > "$work/bootstrap-verdict.yaml" <<YAML
node: {namespace: bench, name: client, ips: [10.99.0.1]}
listeners: {outbound_port: 15001, inbound_port: 15006, ipv6: false}
admin: {address: "127.0.0.1:15000"}
flow_log: {path: stdout, log_allowed: false}
policy_file: $work/policy.json
capture: verdict
workers: 1
YAML
# The same without the kernel verdict cache (proxy/verdict_cache.h): every SYN goes to the sidecar,
# as it does for a peer and port not seen since the last policy change. The bench's connections all
# go to one server port, the cache's best case; this is its worst.
sed 's/^capture: verdict$/capture: verdict\nverdict_cache: {enabled: false}/' \
  "$work/bootstrap-verdict.yaml" > "$work/bootstrap-verdict-uncached.yaml"

quick=""
decompose=0
args=()
for a in "$@"; do
  [[ "$a" == "--quick" ]] && quick="-quick"
  if [[ "$a" == "--decompose" ]]; then decompose=1; else args+=("$a"); fi
done
set -- "${args[@]}"

# picket-verdict's capture: picket-init's verdict rules instead of the harness's nat REDIRECT, IPv4
# only like the bootstrap (ipv6: false), no UDP/SCTP capture (the bootstrap leaves udp_sctp
# unenforced; the bench has no UDP). The harness runs it as root in each fresh client namespace
# with $PKB_PROXY_UID / $PKB_LISTEN_PORT set (1337 / 15001, picket-init's defaults, passed anyway):
# the sidecar's uid stays exempt from capture. --service-cidrs as a cluster would give it (the
# bench has no Service): TCP to the server is then not connection-tracked.
verdict_init="$work/picket-init --capture=verdict --ipv6=false --udp-sctp=false"
verdict_init+=" --service-cidrs=10.96.0.0/12"
verdict_init+=' --proxy-uid="$PKB_PROXY_UID" --outbound-port="$PKB_LISTEN_PORT"'
variants="${PICKET_BENCH_VARIANTS:-direct,haproxy-1t,haproxy-2t,haproxy-splice-1t,haproxy-splice-2t},picket-1w,picket-2w,picket-verdict,picket-verdict-uncached"
decomposed=()
if ((decompose)); then
  command -v nft >/dev/null || { echo "run_proxy_bench: --decompose needs nft (apt-get install nftables)" >&2; exit 1; }
  variants="direct,picket-verdict"
  declare -A stripped=(
    [picket-verdict-no-filter]="nft delete table ip filter"
    [picket-verdict-no-conntrack]="nft delete table ip nat && nft delete table ip raw"
    [picket-verdict-mangle-only]="nft delete table ip nat && nft delete table ip raw && nft delete table ip filter"
    [picket-verdict-tproxy-not-nat]="nft delete table ip nat && nft delete table ip raw && iptables -t mangle -A PREROUTING -i lo -p tcp -m mark --mark 0x20000/0x30000 -j TPROXY --on-port \"\$PKB_LISTEN_PORT\" --on-ip 127.0.0.1"
  )
  for name in picket-verdict-no-filter picket-verdict-no-conntrack picket-verdict-mangle-only picket-verdict-tproxy-not-nat; do
    variants+=",$name"
    decomposed+=(--proxy-name "$name"
      --proxy-cmd "$work/picket-proxy --config $work/bootstrap-verdict.yaml --log-level warn"
      --proxy-init "$name=$verdict_init >/dev/null && ${stripped[$name]}"
      --proxy-caps "$name=net_admin")
  done
  quick="$quick-decompose"
fi
mkdir -p "$repo/test/bench/proxy_results"
out="$repo/test/bench/proxy_results/proxy-$(date +%Y-%m-%d-%H%M)$quick.md"
"$harness/run.sh" --no-install \
  --variants "$variants" \
  --proxy-name picket-1w --proxy-cmd "$work/picket-proxy --config $work/bootstrap-1w.yaml --log-level warn" \
  --proxy-name picket-2w --proxy-cmd "$work/picket-proxy --config $work/bootstrap-2w.yaml --log-level warn" \
  --proxy-name picket-verdict --proxy-cmd "$work/picket-proxy --config $work/bootstrap-verdict.yaml --log-level warn" \
  --proxy-init "picket-verdict=$verdict_init" \
  --proxy-caps picket-verdict=net_admin \
  --proxy-name picket-verdict-uncached --proxy-cmd "$work/picket-proxy --config $work/bootstrap-verdict-uncached.yaml --log-level warn" \
  --proxy-init "picket-verdict-uncached=$verdict_init" \
  --proxy-caps picket-verdict-uncached=net_admin \
  "${decomposed[@]}" \
  --cpu-ref picket-1w \
  --out "$out" "$@"
# an --out among the extra options replaces the default (the harness takes the last one)
prev=""
for a in "$@"; do
  [[ "$prev" == "--out" ]] && out="$a"
  [[ "$a" == --out=* ]] && out="${a#--out=}"
  prev="$a"
done
echo "report: $out"
