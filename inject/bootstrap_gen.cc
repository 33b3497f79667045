// inject/bootstrap_gen.cc — see bootstrap_gen.h.
#include "inject/bootstrap_gen.h"

#include <charconv>
#include <string_view>
#include <utility>

#include "base/ip.h"
#include "config/bootstrap.h"

namespace picket::inject {

using base::Error;
namespace {

using config::Node;

bool IsDns1123Label(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              ((c == '-' || (c == '.' && max > 63)) && i != 0 && i + 1 != s.size());
    if (!ok) return false;
  }
  return true;
}

bool IsIp(const std::string& s) { return base::IpAddress::ParseStrict(s).has_value(); }

// "host:port" or "[v6]:port", as config/bootstrap.cc reads xds.address.
bool IsHostPort(const std::string& s) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string_view host(s.data(), colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint32_t port = 0;
  std::string_view digits(s.data() + colon + 1, s.size() - colon - 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  return !host.empty() && ec == std::errc() && end == digits.data() + digits.size() && port >= 1 &&
         port <= 65535;
}

// The proxy refuses an xds section without all three TLS files (the control server requires
// mutual TLS), so the flags are checked together and every missing one is named.
base::Result<void> CheckXdsTls(const BootstrapParams& p) {
  const bool token = !p.xds_token_file.empty() || !p.xds_csr_address.empty();
  if (token) {
    if (!p.xds_cert.empty() || !p.xds_key.empty()) {
      return std::unexpected(Error::Of(
          "give --xds-cert and --xds-key, or --xds-token-file and --xds-csr-address, not both"));
    }
    const std::pair<const char*, const std::string*> token_flags[] = {
        {"--xds-token-file", &p.xds_token_file},
        {"--xds-csr-address", &p.xds_csr_address},
        {"--xds-ca", &p.xds_ca}};
    std::string missing;
    for (const auto& [flag, value] : token_flags) {
      if (value->empty()) missing += (missing.empty() ? "" : ", ") + std::string(flag);
    }
    if (p.xds_address.empty()) {
      return std::unexpected(
          Error::Of("--xds-token-file, --xds-csr-address: only meaningful with --xds-address"));
    }
    if (!missing.empty()) {
      return std::unexpected(Error::Of("an issued certificate needs " + missing +
                                       " (the token, the control server's certificate "
                                       "endpoint and its CA)"));
    }
    if (!IsHostPort(p.xds_csr_address)) {
      return std::unexpected(
          Error::At("--xds-csr-address", "\"" + p.xds_csr_address + "\" is not host:port"));
    }
    return {};
  }
  const std::pair<const char*, const std::string*> flags[] = {
      {"--xds-cert", &p.xds_cert}, {"--xds-key", &p.xds_key}, {"--xds-ca", &p.xds_ca}};
  std::string missing, given;
  for (const auto& [flag, value] : flags) {
    std::string& list = value->empty() ? missing : given;
    list += (list.empty() ? "" : ", ") + std::string(flag);
  }
  if (p.xds_address.empty()) {
    if (given.empty()) return {};
    return std::unexpected(
        Error::Of(given + ": only meaningful with --xds-address (give it, or drop them)"));
  }
  if (missing.empty()) return {};
  return std::unexpected(
      Error::Of("--xds-address needs mutual TLS: missing " + missing +
                " (picket-proxy requires the pod's certificate, its key and the CA of "
                "the control server)"));
}

}  // namespace

base::Result<Node> BuildBootstrap(const BootstrapParams& p) {
  if (!IsDns1123Label(p.ns, 63)) {
    return std::unexpected(
        Error::At("--namespace", "\"" + p.ns + "\" is not a valid namespace name"));
  }
  if (!IsDns1123Label(p.pod, 253)) {
    return std::unexpected(Error::At("--pod", "\"" + p.pod + "\" is not a valid pod name"));
  }
  if (!p.node_name.empty() && !IsDns1123Label(p.node_name, 253)) {
    return std::unexpected(
        Error::At("--node-name", "\"" + p.node_name + "\" is not a valid Kubernetes node name"));
  }
  Node ips = Node::Sequence();
  for (const std::string& entry : p.ips) {
    size_t start = 0;
    while (start <= entry.size()) {
      size_t comma = entry.find(',', start);
      std::string ip = entry.substr(start, comma == std::string::npos ? comma : comma - start);
      if (!ip.empty()) {
        if (!IsIp(ip))
          return std::unexpected(Error::At("--ip", "\"" + ip + "\" is not an IP address"));
        bool dup = false;
        for (const Node& n : ips.items()) dup = dup || n.AsString() == ip;
        if (!dup) ips.Append(Node::String(ip));
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (ips.items().empty())
    return std::unexpected(Error::At("--ip", "at least one pod IP is required"));
  if (p.policy_file.empty() && p.xds_address.empty()) {
    return std::unexpected(
        Error::Of("give --policy-file or --xds-address (where the policy comes from)"));
  }
  // As config/bootstrap.cc: one policy source per sidecar.
  if (!p.policy_file.empty() && !p.xds_address.empty()) {
    return std::unexpected(Error::Of("--policy-file and --xds-address are mutually exclusive"));
  }
  if (!p.xds_address.empty() && !IsHostPort(p.xds_address)) {
    return std::unexpected(Error::At(
        "--xds-address", "\"" + p.xds_address +
                             "\" is not host:port (e.g. picket-control.picket-system.svc:15012)"));
  }
  if (auto tls = CheckXdsTls(p); !tls) return std::unexpected(tls.error());
  for (const auto& [flag, port] : {std::pair{"--outbound-port", p.outbound_port},
                                   {"--inbound-port", p.inbound_port},
                                   {"--admin-port", p.admin_port}}) {
    if (port == 0) return std::unexpected(Error::At(flag, "must be 1..65535"));
  }
  if (!p.admin_socket.empty()) {
    const size_t slash = p.admin_socket.rfind('/');
    if (p.admin_socket[0] != '/' || slash == 0 || slash + 1 == p.admin_socket.size() ||
        p.admin_socket.size() > 107) {
      return std::unexpected(
          Error::At("--admin-socket",
                    "\"" + p.admin_socket +
                        "\" must be an absolute path of at most 107 bytes to a socket "
                        "in a directory of its own (e.g. /etc/picket/run/admin/admin.sock)"));
    }
  }
  if (p.outbound_port == p.inbound_port) {
    return std::unexpected(Error::Of("--outbound-port and --inbound-port must differ"));
  }
  if (!p.process_log.empty() && p.process_log != "stdout" && p.process_log != "stderr") {
    return std::unexpected(
        Error::At("--process-log", "\"" + p.process_log + "\" is not stdout or stderr"));
  }
  if (p.metrics_port != 0 &&
      (p.metrics_port == p.outbound_port || p.metrics_port == p.inbound_port)) {
    return std::unexpected(
        Error::At("--metrics-port", "must differ from --outbound-port and --inbound-port"));
  }

  Node b = Node::Mapping();
  Node& node = b.Set("node", Node::Mapping());
  node.Set("namespace", Node::String(p.ns));
  node.Set("name", Node::String(p.pod));
  node.Set("ips", std::move(ips));
  if (!p.node_name.empty()) node.Set("node_name", Node::String(p.node_name));
  Node& listeners = b.Set("listeners", Node::Mapping());
  listeners.Set("outbound_port", Node::Int(p.outbound_port));
  listeners.Set("inbound_port", Node::Int(p.inbound_port));
  Node& admin = b.Set("admin", Node::Mapping());
  admin.Set("address", Node::String("127.0.0.1:" + std::to_string(p.admin_port)));
  if (!p.admin_socket.empty()) admin.Set("socket", Node::String(p.admin_socket));
  if (p.metrics_port != 0) admin.Set("metrics_port", Node::Int(p.metrics_port));
  if (!p.flow_log.empty()) b.Set("flow_log", Node::Mapping()).Set("path", Node::String(p.flow_log));
  if (!p.process_log.empty()) b.Set("process_log", Node::String(p.process_log));
  // Written either way: the opt-out is explicit in the file the sidecar reads.
  Node& udp_sctp = b.Set("udp_sctp", Node::Mapping());
  udp_sctp.Set("enforce", Node::Bool(p.udp_sctp));
  udp_sctp.Set("queue", Node::Int(p.nfqueue));
  if (p.nfqueue_count > 1) udp_sctp.Set("queues", Node::Int(p.nfqueue_count));
  if (p.capture == config::CaptureMode::kVerdict) {
    b.Set("capture", Node::String(config::CaptureModeName(p.capture)));
  }
  if (!p.policy_file.empty()) b.Set("policy_file", Node::String(p.policy_file));
  if (!p.xds_address.empty()) {
    Node& xds = b.Set("xds", Node::Mapping());
    xds.Set("address", Node::String(p.xds_address));
    Node& tls = xds.Set("tls", Node::Mapping());
    if (!p.xds_token_file.empty()) {
      tls.Set("token_file", Node::String(p.xds_token_file));
      tls.Set("csr_address", Node::String(p.xds_csr_address));
    } else {
      tls.Set("cert", Node::String(p.xds_cert));
      tls.Set("key", Node::String(p.xds_key));
    }
    tls.Set("ca", Node::String(p.xds_ca));
  }
  // The proxy's own validator on exactly the text that will be written: whatever picket-proxy
  // would refuse at start-up is refused here, so the two cannot disagree.
  if (auto parsed = config::ParseBootstrap(config::EmitYaml(b), "<generated bootstrap>"); !parsed) {
    std::string message = "the generated bootstrap would be refused by picket-proxy:";
    for (const config::Error& e : parsed.error()) message += "\n  " + e.ToString();
    return std::unexpected(Error::Of(message));
  }
  return b;
}

}  // namespace picket::inject
