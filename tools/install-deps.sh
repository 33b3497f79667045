#!/usr/bin/env bash
# Installs, from Debian's archive, everything Picket needs to build, test and run the demo.
# Safe to run repeatedly: it only calls apt-get when something is missing.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap g++ libuv1-dev libc-ares-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev android-libboringssl-dev libsimdjson-dev libcli11-dev
  iptables iproute2 procps python3 openssl
  libnetfilter-queue-dev libmnl-dev libnetfilter-conntrack-dev libnftnl-dev python3-scapy
  conntrack
)
if [[ "${PICKET_WITH_BENCH:-0}" == 1 ]]; then
  # nlohmann-json3-dev: only the JSON benchmark's comparison point (the benchmarks are `manual`
  # targets, outside `bazel build //...`); nftables: only run_proxy_bench.sh --decompose.
  # test/bench/harness/run.sh checks its own packages.
  PACKAGES+=(haproxy hyperfine time iperf3 nginx libnginx-mod-stream socat nlohmann-json3-dev nftables)
fi
if [[ "${PICKET_WITH_FUZZ:-0}" == 1 ]]; then
  PACKAGES+=(clang-16 libclang-rt-16-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "picket: installing ${missing[*]}" >&2
  if [[ $(id -u) != 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Kubernetes API test server's fidelity tests (test/k8s/apiserver/): Debian's Python client,
# and Debian's kubectl 1.20 (package kubernetes-client) unpacked into /opt/kubectl-1.20 beside any
# other kubectl on the machine, not over it (the tests take KUBECTL=... to use another one).
if [[ $(id -u) != 0 ]]; then SUDO=sudo; else SUDO=; fi
if ! dpkg-query -W -f='${Status}' python3-kubernetes 2>/dev/null | grep -q "install ok installed"; then
  echo "picket: installing python3-kubernetes" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    python3-kubernetes >/dev/null
fi
KUBECTL_DIR=/opt/kubectl-1.20
if [[ ! -x $KUBECTL_DIR/usr/bin/kubectl ]]; then
  echo "picket: unpacking Debian's kubernetes-client into $KUBECTL_DIR" >&2
  deb_dir=$(mktemp -d)
  if ! (cd "$deb_dir" && apt-get download -qq kubernetes-client 2>/dev/null); then
    $SUDO apt-get update -qq
    (cd "$deb_dir" && apt-get download -qq kubernetes-client 2>/dev/null)
  fi
  $SUDO mkdir -p "$KUBECTL_DIR"
  $SUDO dpkg -x "$deb_dir"/kubernetes-client_*.deb "$KUBECTL_DIR"
  rm -rf "$deb_dir"
fi

# promtool (the metrics tests, test/base/promtool.h): Debian's prometheus 2.42 package unpacked
# into /opt/prometheus-2.42, never installed — that would start a Prometheus daemon. The tests
# take PROMTOOL=... to use another one.
PROMETHEUS_DIR=/opt/prometheus-2.42
if [[ ! -x $PROMETHEUS_DIR/usr/bin/promtool ]]; then
  echo "picket: unpacking Debian's prometheus (for promtool) into $PROMETHEUS_DIR" >&2
  deb_dir=$(mktemp -d)
  if ! (cd "$deb_dir" && apt-get download -qq prometheus 2>/dev/null); then
    $SUDO apt-get update -qq
    (cd "$deb_dir" && apt-get download -qq prometheus 2>/dev/null)
  fi
  $SUDO mkdir -p "$PROMETHEUS_DIR"
  $SUDO dpkg -x "$deb_dir"/prometheus_*.deb "$PROMETHEUS_DIR"
  rm -rf "$deb_dir"
fi
