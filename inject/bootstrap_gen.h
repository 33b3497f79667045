// inject/bootstrap_gen.h — the sidecar bootstrap for one pod, as the injected sidecar builds it.
//
// Owns: `BootstrapParams` and `BuildBootstrap`, which turn a pod's namespace, name, node and IPs
// (as the downward API gives them: `status.podIPs` arrives comma-separated) plus the control-plane
// settings into the bootstrap document of config/bootstrap.h (schema in proxy/README.md).
// `picket-inject bootstrap` prints it; the injected sidecar runs the same command at start, and
// the quick-start demo uses it to write each pod's bootstrap.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "base/error.h"
#include "config/bootstrap.h"
#include "config/document.h"

namespace picket::inject {

struct BootstrapParams {
  std::string ns;
  std::string pod;
  // The Kubernetes node (spec.nodeName; the injected sidecar gets it from the downward API as
  // NODE_NAME): bootstrap `node.node_name`, the flow records' `node_name`. "" leaves it out.
  std::string node_name;
  std::vector<std::string> ips;  // each entry may itself be a comma-separated list
  std::string policy_file;       // a local policy (demo); or
  std::string xds_address;       // host:port of picket-control
  std::string xds_cert, xds_key, xds_ca;
  // Instead of --xds-cert/--xds-key: the pod's projected service-account token and the control
  // server's certificate endpoint (the certificate is issued and renewed; PROTOCOL.md §7.1).
  std::string xds_token_file, xds_csr_address;
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;
  uint16_t admin_port = 15000;
  // The admin Unix socket (bootstrap `admin.socket`: POST /drain, and the probe's /ready); an
  // absolute path in a directory of its own, which the proxy creates 0700 — in the injected
  // sidecar /etc/picket/run/admin/admin.sock on the run emptyDir, mounted only into the sidecar.
  // "" leaves it out.
  std::string admin_socket;
  // The read-only metrics listener on the pod's IPs (bootstrap `admin.metrics_port`: GET
  // /stats/prometheus only); 0 leaves it out.
  uint16_t metrics_port = 0;
  std::string flow_log;  // "" keeps the proxy's default (stdout)
  // "stdout" or "stderr": the bootstrap's process_log; "" keeps the proxy's default (stderr).
  std::string process_log;
  // UDP and SCTP: a verdict per new flow from NFQUEUE `nfqueue` (picket-init's --nfqueue);
  // false is the explicit opt-out (picket-init --udp-sctp=false).
  bool udp_sctp = true;
  uint16_t nfqueue = 15000;
  // Queues from `nfqueue` on, by CPU (picket-init's --nfqueue-count; udp_sctp.queues).
  uint16_t nfqueue_count = 1;
  // TCP: kVerdict (picket-init --capture=verdict) is written as the top-level `capture: verdict`
  // (the sidecar judges new TCP flows from `nfqueue` too); kRelay, the parser's default, writes
  // nothing.
  config::CaptureMode capture = config::CaptureMode::kRelay;
};

// Validates and builds the document. Everything picket-proxy would refuse at start-up
// (config/bootstrap.h) is refused here first, naming the flag to fix: RFC 1123 names, IP
// literals, exactly one policy source, --xds-address as host:port together with --xds-ca and
// either --xds-cert and --xds-key or --xds-token-file and --xds-csr-address (host:port) (the
// proxy requires mutual TLS to the control server),
// ports, and --admin-socket as an absolute path below a directory other than "/".
// test/inject/bootstrap_gen_test.cc checks that whatever this accepts the proxy's own parser
// (config::ParseBootstrap) accepts too.
[[nodiscard]] base::Result<config::Node> BuildBootstrap(const BootstrapParams& p);

}  // namespace picket::inject
