#include "config/bootstrap.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <tuple>

#include "base/ip.h"

namespace picket::config {
namespace {

// Collects every error of one parse; each helper reads one field and records what is wrong.
class Reader {
 public:
  explicit Reader(std::string_view file) : file_(file) {}

  void Fail(const YAML::Node& node, const std::string& field, const std::string& reason) {
    int line = node.IsDefined() ? node.Mark().line + 1 : 0;
    if (line <= 0) line = 0;
    errors_.push_back(Error{file_, line, "", field, reason});
  }

  // Rejects keys not in `allowed`; returns false if `node` is not a mapping.
  bool CheckMap(const YAML::Node& node, const std::string& path,
                std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) {
      Fail(node, path, "must be a mapping");
      return false;
    }
    for (const auto& kv : node) {
      std::string key = kv.first.Scalar();
      bool known = false;
      for (std::string_view a : allowed) known = known || a == key;
      if (!known) {
        std::string list;
        for (std::string_view a : allowed) {
          if (!list.empty()) list += ", ";
          list += a;
        }
        Fail(kv.first, Join(path, key), "unknown field (known: " + list + ")");
      }
    }
    return true;
  }

  static std::string Join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }

  bool String(const YAML::Node& parent, const std::string& path, const char* key,
              std::string* out) {
    YAML::Node n = parent[key];
    if (!n.IsDefined() || n.IsNull()) return false;
    if (!n.IsScalar()) {
      Fail(n, Join(path, key), "must be a string");
      return false;
    }
    *out = n.Scalar();
    return true;
  }

  void Bool(const YAML::Node& parent, const std::string& path, const char* key, bool* out) {
    YAML::Node n = parent[key];
    if (!n.IsDefined() || n.IsNull()) return;
    const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
    if (s == "true") {
      *out = true;
    } else if (s == "false") {
      *out = false;
    } else {
      Fail(n, Join(path, key), "must be true or false");
    }
  }

  template <typename T>
  void Uint(const YAML::Node& parent, const std::string& path, const char* key, T* out,
            uint64_t min, uint64_t max) {
    YAML::Node n = parent[key];
    if (!n.IsDefined() || n.IsNull()) return;
    uint64_t v = 0;
    if (!n.IsScalar() || !ParseUint(n.Scalar(), &v)) {
      Fail(n, Join(path, key), "must be a non-negative integer");
      return;
    }
    if (v < min || v > max) {
      Fail(n, Join(path, key),
           "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return;
    }
    *out = static_cast<T>(v);
  }

  // Sizes: bytes, or with a Ki/Mi/Gi suffix.
  template <typename T>
  void Size(const YAML::Node& parent, const std::string& path, const char* key, T* out,
            uint64_t min, uint64_t max) {
    YAML::Node n = parent[key];
    if (!n.IsDefined() || n.IsNull()) return;
    std::string s = n.IsScalar() ? n.Scalar() : std::string();
    uint64_t mult = 1;
    for (auto [suffix, m] : {std::pair{"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30}}) {
      if (s.size() > 2 && s.ends_with(suffix)) {
        mult = m;
        s.resize(s.size() - 2);
      }
    }
    uint64_t v = 0;
    if (!ParseUint(s, &v) || v > std::numeric_limits<uint64_t>::max() / mult) {
      Fail(n, Join(path, key), "must be a size in bytes, e.g. 65536 or 64Ki");
      return;
    }
    v *= mult;
    if (v < min || v > max) {
      Fail(n, Join(path, key),
           "must be between " + std::to_string(min) + " and " + std::to_string(max) + " bytes");
      return;
    }
    *out = static_cast<T>(v);
  }

  // Durations: an integer with a unit: ms, s, m, h (e.g. "250ms", "5s", "1h").
  void Duration(const YAML::Node& parent, const std::string& path, const char* key,
                std::chrono::milliseconds* out) {
    YAML::Node n = parent[key];
    if (!n.IsDefined() || n.IsNull()) return;
    std::string s = n.IsScalar() ? n.Scalar() : std::string();
    uint64_t mult = 0;
    for (auto [suffix, m] :
         {std::pair{"ms", 1ull}, {"s", 1000ull}, {"m", 60000ull}, {"h", 3600000ull}}) {
      std::string_view suf(suffix);
      if (s.size() > suf.size() && s.ends_with(suf)) {
        std::string digits = s.substr(0, s.size() - suf.size());
        uint64_t v = 0;
        if (ParseUint(digits, &v) && v <= 1000ull * 3600 * 24 * 365) {
          *out = std::chrono::milliseconds(v * m);
          mult = m;
        }
        break;
      }
    }
    if (mult == 0) {
      Fail(n, Join(path, key), "must be a duration such as 250ms, 5s, 10m or 1h");
    } else if (out->count() == 0) {
      Fail(n, Join(path, key), "must be greater than zero");
    }
  }

  static bool ParseUint(const std::string& s, uint64_t* v) {
    if (s.empty()) return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return ec == std::errc() && ptr == s.data() + s.size();
  }

  Errors& errors() { return errors_; }

 private:
  std::string file_;
  Errors errors_;
};

bool IsIp(const std::string& s, bool* v6) {
  std::optional<base::IpAddress> ip = base::IpAddress::ParseStrict(s);
  if (ip) *v6 = ip->v6;
  return ip.has_value();
}

bool IsLoopback(const std::string& host) {
  std::optional<base::IpAddress> ip = base::IpAddress::ParseStrict(host);
  return ip && ip->IsLoopback();
}

// "host:port" or "[v6]:port".
bool SplitHostPort(const std::string& s, std::string* host, uint64_t* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string h = s.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (!Reader::ParseUint(s.substr(colon + 1), port) || *port == 0 || *port > 65535) return false;
  *host = h;
  return !h.empty();
}

bool IsDnsLabelish(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

void ParseNode(Reader& r, const YAML::Node& n, Bootstrap::Node* out) {
  if (!r.CheckMap(n, "node", {"namespace", "name", "ips", "node_name"})) return;
  if (!r.String(n, "node", "namespace", &out->ns)) {
    r.Fail(n, "node.namespace", "Required value");
  } else if (!IsDnsLabelish(out->ns)) {
    r.Fail(n["namespace"], "node.namespace", "must be a lowercase RFC 1123 name");
  }
  if (!r.String(n, "node", "name", &out->name)) {
    r.Fail(n, "node.name", "Required value");
  } else if (!IsDnsLabelish(out->name)) {
    r.Fail(n["name"], "node.name", "must be a lowercase RFC 1123 name");
  }
  if (r.String(n, "node", "node_name", &out->node_name) && !IsDnsLabelish(out->node_name)) {
    r.Fail(n["node_name"], "node.node_name",
           "must be a Kubernetes node name (a lowercase RFC 1123 subdomain)");
  }
  YAML::Node ips = n["ips"];
  if (!ips.IsDefined() || ips.IsNull()) {
    r.Fail(n, "node.ips", "Required value: the pod's IP addresses");
    return;
  }
  if (!ips.IsSequence() || ips.size() == 0) {
    r.Fail(ips, "node.ips", "must be a non-empty list of IP addresses");
    return;
  }
  for (size_t i = 0; i < ips.size(); ++i) {
    std::string field = "node.ips[" + std::to_string(i) + "]";
    bool v6 = false;
    if (!ips[i].IsScalar() || !IsIp(ips[i].Scalar(), &v6)) {
      r.Fail(ips[i], field, "must be an IPv4 or IPv6 address");
      continue;
    }
    out->ips.push_back(ips[i].Scalar());
  }
}

void ParseFlowLog(Reader& r, const YAML::Node& n, Bootstrap::FlowLog* out) {
  const std::string p = "flow_log";
  if (!r.CheckMap(n, p,
                  {"path", "max_size", "max_files", "log_allowed", "rate_per_source", "recent",
                   "lines_per_second", "bytes_per_second", "recent_tuples"}))
    return;
  if (r.String(n, p, "path", &out->path) && out->path.empty()) {
    r.Fail(n["path"], "flow_log.path", "must be \"stdout\" or a file path");
  }
  r.Size(n, p, "max_size", &out->max_size_bytes, 4096, 1ull << 40);
  r.Uint(n, p, "max_files", &out->max_files, 0, 100);
  r.Bool(n, p, "log_allowed", &out->log_allowed);
  r.Uint(n, p, "rate_per_source", &out->rate_per_source, 1, 1000000);
  r.Uint(n, p, "recent", &out->recent, 0, 1000000);
  r.Uint(n, p, "lines_per_second", &out->lines_per_second, 1, 10000000);
  r.Size(n, p, "bytes_per_second", &out->bytes_per_second, 4096, 1ull << 34);
  r.Uint(n, p, "recent_tuples", &out->recent_tuples, 1, 1000000);
}

Bootstrap Parse(Reader& r, const YAML::Node& root) {
  Bootstrap b;
  if (!r.CheckMap(root, "",
                  {"node", "listeners", "admin", "flow_log", "limits", "timeouts",
                   "recheck_on_policy_change", "policy_file", "workers", "xds", "udp_sctp",
                   "capture", "verdict_cache", "process_log"})) {
    return b;
  }
  if (root["node"].IsDefined()) {
    ParseNode(r, root["node"], &b.node);
  } else {
    r.Fail(root, "node", "Required value: the pod's namespace, name and ips");
  }

  if (YAML::Node n = root["listeners"]; n.IsDefined() && !n.IsNull()) {
    if (r.CheckMap(n, "listeners",
                   {"outbound_port", "inbound_port", "ipv4", "ipv6", "inbound_passthrough_v4",
                    "inbound_passthrough_v6"})) {
      for (auto [key, out, want_v6] :
           {std::tuple{"inbound_passthrough_v4", &b.listeners.inbound_passthrough_v4, false},
            std::tuple{"inbound_passthrough_v6", &b.listeners.inbound_passthrough_v6, true}}) {
        bool v6 = false;
        if (r.String(n, "listeners", key, out) && !out->empty() &&
            (!IsIp(*out, &v6) || v6 != want_v6)) {
          r.Fail(n[key], std::string("listeners.") + key,
                 want_v6 ? "must be an IPv6 address (or empty)"
                         : "must be an IPv4 address (or empty)");
        }
      }
      r.Uint(n, "listeners", "outbound_port", &b.listeners.outbound_port, 1, 65535);
      r.Uint(n, "listeners", "inbound_port", &b.listeners.inbound_port, 1, 65535);
      r.Bool(n, "listeners", "ipv4", &b.listeners.ipv4);
      r.Bool(n, "listeners", "ipv6", &b.listeners.ipv6);
      if (b.listeners.outbound_port == b.listeners.inbound_port) {
        r.Fail(n, "listeners.inbound_port", "must differ from listeners.outbound_port");
      }
      if (!b.listeners.ipv4 && !b.listeners.ipv6) {
        r.Fail(n, "listeners", "at least one of ipv4 and ipv6 must be true");
      }
    }
  }

  if (YAML::Node n = root["admin"]; n.IsDefined() && !n.IsNull()) {
    if (r.CheckMap(n, "admin", {"address", "socket", "metrics_port"})) {
      if (n["metrics_port"].IsDefined() && !n["metrics_port"].IsNull()) {
        uint16_t port = 0;
        r.Uint(n, "admin", "metrics_port", &port, 1, 65535);
        if (port != 0) b.admin.metrics_port = port;
      }
      if (n["socket"].IsDefined() && r.String(n, "admin", "socket", &b.admin.socket) &&
          (b.admin.socket.empty() || b.admin.socket[0] != '/')) {
        r.Fail(n["socket"], "admin.socket",
               "must be an absolute path, e.g. /var/run/picket/admin.sock");
      }
      std::string address;
      if (r.String(n, "admin", "address", &address)) {
        uint64_t port = 0;
        std::string host;
        if (!SplitHostPort(address, &host, &port)) {
          r.Fail(n["address"], "admin.address", "must be host:port, e.g. 127.0.0.1:15000");
        } else if (!IsLoopback(host)) {
          r.Fail(n["address"], "admin.address",
                 "must be a loopback address (127.0.0.0/8 or ::1): the admin endpoint is "
                 "unauthenticated");
        } else {
          b.admin.host = host;
          b.admin.port = static_cast<uint16_t>(port);
        }
      }
    }
  }

  if (b.admin.metrics_port && (*b.admin.metrics_port == b.listeners.outbound_port ||
                               *b.admin.metrics_port == b.listeners.inbound_port)) {
    r.Fail(root["admin"]["metrics_port"], "admin.metrics_port",
           "must differ from listeners.outbound_port and listeners.inbound_port");
  }

  if (YAML::Node n = root["flow_log"]; n.IsDefined() && !n.IsNull()) {
    ParseFlowLog(r, n, &b.flow_log);
  }

  if (YAML::Node n = root["limits"]; n.IsDefined() && !n.IsNull()) {
    if (r.CheckMap(n, "limits", {"max_connections", "buffer_size", "pipe_size", "splice"})) {
      r.Uint(n, "limits", "max_connections", &b.limits.max_connections, 0, 10000000);
      r.Size(n, "limits", "buffer_size", &b.limits.buffer_size, 4096, 16u << 20);
      r.Size(n, "limits", "pipe_size", &b.limits.pipe_size, 4096, 1u << 20);
      r.Bool(n, "limits", "splice", &b.limits.splice);
    }
  }

  if (YAML::Node n = root["timeouts"]; n.IsDefined() && !n.IsNull()) {
    if (r.CheckMap(n, "timeouts", {"connect", "idle", "drain"})) {
      r.Duration(n, "timeouts", "connect", &b.timeouts.connect);
      r.Duration(n, "timeouts", "idle", &b.timeouts.idle);
      r.Duration(n, "timeouts", "drain", &b.timeouts.drain);
    }
  }

  if (YAML::Node n = root["udp_sctp"]; n.IsDefined() && !n.IsNull()) {
    if (r.CheckMap(n, "udp_sctp", {"enforce", "queue", "queues", "queue_max_len"})) {
      r.Bool(n, "udp_sctp", "enforce", &b.udp_sctp.enforce);
      r.Uint(n, "udp_sctp", "queue", &b.udp_sctp.queue, 0, 65535);
      r.Uint(n, "udp_sctp", "queues", &b.udp_sctp.queues, 1, 64);
      if (static_cast<uint32_t>(b.udp_sctp.queue) + b.udp_sctp.queues - 1 > 65535) {
        r.Fail(n["queues"], "udp_sctp.queues", "queues past 65535");
      }
      r.Uint(n, "udp_sctp", "queue_max_len", &b.udp_sctp.queue_max_len, 1, 1u << 20);
    }
  }

  if (std::string capture; r.String(root, "", "capture", &capture)) {
    if (capture == "relay") {
      b.capture = CaptureMode::kRelay;
    } else if (capture == "verdict") {
      b.capture = CaptureMode::kVerdict;
    } else {
      r.Fail(root["capture"], "capture",
             "Unsupported value: \"" + capture + "\": supported values: \"relay\", \"verdict\"");
    }
  }
  if (YAML::Node n = root["verdict_cache"]; n.IsDefined() && !n.IsNull()) {
    if (r.CheckMap(n, "verdict_cache", {"enabled", "max_entries", "ttl"})) {
      r.Bool(n, "verdict_cache", "enabled", &b.verdict_cache.enabled);
      r.Uint(n, "verdict_cache", "max_entries", &b.verdict_cache.max_entries, 1, 1u << 20);
      r.Duration(n, "verdict_cache", "ttl", &b.verdict_cache.ttl);
      if (b.verdict_cache.ttl < std::chrono::seconds(1) ||
          b.verdict_cache.ttl > std::chrono::hours(24)) {
        r.Fail(n["ttl"], "verdict_cache.ttl", "must be between 1s and 24h");
      }
    }
  }
  r.Bool(root, "", "recheck_on_policy_change", &b.recheck_on_policy_change);
  if (r.String(root, "", "process_log", &b.process_log) && b.process_log != "stderr" &&
      b.process_log != "stdout") {
    r.Fail(
        root["process_log"], "process_log",
        "Unsupported value: \"" + b.process_log + "\": supported values: \"stderr\", \"stdout\"");
  }
  r.String(root, "", "policy_file", &b.policy_file);
  r.Uint(root, "", "workers", &b.workers, 0, 256);

  if (YAML::Node n = root["xds"]; n.IsDefined() && !n.IsNull()) {
    Bootstrap::Xds xds;
    if (r.CheckMap(n, "xds", {"address", "fallback_addresses", "tls"})) {
      std::string host;
      uint64_t port = 0;
      if (!r.String(n, "xds", "address", &xds.address)) {
        r.Fail(n, "xds.address", "Required value: host:port of the control server");
      } else if (!SplitHostPort(xds.address, &host, &port)) {
        r.Fail(n["address"], "xds.address", "must be host:port");
      }
      if (YAML::Node f = n["fallback_addresses"]; f.IsDefined() && !f.IsNull()) {
        if (!f.IsSequence() || f.size() > Bootstrap::kMaxXdsFallbacks) {
          r.Fail(f, "xds.fallback_addresses",
                 "must be a list of at most " + std::to_string(Bootstrap::kMaxXdsFallbacks) +
                     " host:port");
        } else {
          for (size_t i = 0; i < f.size(); ++i) {
            const std::string field = "xds.fallback_addresses[" + std::to_string(i) + "]";
            if (!f[i].IsScalar() || !SplitHostPort(f[i].Scalar(), &host, &port)) {
              r.Fail(f[i], field, "must be host:port");
              continue;
            }
            xds.fallback_addresses.push_back(f[i].Scalar());
          }
        }
      }
      if (YAML::Node t = n["tls"]; t.IsDefined() && !t.IsNull()) {
        if (r.CheckMap(t, "xds.tls", {"cert", "key", "ca", "token_file", "csr_address"})) {
          r.String(t, "xds.tls", "cert", &xds.tls.cert);
          r.String(t, "xds.tls", "key", &xds.tls.key);
          r.String(t, "xds.tls", "ca", &xds.tls.ca);
          r.String(t, "xds.tls", "token_file", &xds.tls.token_file);
          r.String(t, "xds.tls", "csr_address", &xds.tls.csr_address);
          const bool token = !xds.tls.token_file.empty() || !xds.tls.csr_address.empty();
          if (token && (!xds.tls.cert.empty() || !xds.tls.key.empty())) {
            r.Fail(t, "xds.tls",
                   "give cert and key, or token_file and csr_address (an issued certificate), "
                   "not both");
          } else if (token && (xds.tls.token_file.empty() || xds.tls.csr_address.empty())) {
            r.Fail(t, "xds.tls", "token_file and csr_address must be given together");
          } else if (token && !SplitHostPort(xds.tls.csr_address, &host, &port)) {
            r.Fail(t["csr_address"], "xds.tls.csr_address", "must be host:port");
          } else if (xds.tls.cert.empty() != xds.tls.key.empty()) {
            r.Fail(t, "xds.tls", "cert and key must be given together");
          } else if ((!token && xds.tls.cert.empty()) || xds.tls.ca.empty()) {
            r.Fail(t, "xds.tls",
                   "Required value: ca, and cert and key or token_file and csr_address (the "
                   "control server requires mutual TLS)");
          }
        }
      } else {
        r.Fail(n, "xds.tls",
               "Required value: ca, and cert and key or token_file and csr_address (the "
               "control server requires mutual TLS)");
      }
    }
    b.xds = std::move(xds);
  }

  if (b.policy_file.empty() && !b.xds) {
    r.Fail(root, "policy_file", "Required value: give policy_file or an xds section");
  } else if (!b.policy_file.empty() && b.xds) {
    // Two sources would overwrite each other's snapshots; one policy source per sidecar.
    r.Fail(root["policy_file"], "policy_file",
           "Forbidden: policy_file and xds are mutually exclusive (give one policy source)");
  }
  return b;
}

}  // namespace

std::expected<Bootstrap, Errors> ParseBootstrap(std::string_view text, std::string_view file_name) {
  Reader reader(file_name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return std::unexpected(Errors{
        Error{std::string(file_name), e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "", e.msg}});
  }
  Bootstrap b;
  try {
    b = Parse(reader, root);
  } catch (const YAML::Exception& e) {
    reader.errors().push_back(
        Error{std::string(file_name), e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "", e.msg});
  }
  if (!reader.errors().empty()) return std::unexpected(std::move(reader.errors()));
  b.source_file = std::string(file_name);
  return b;
}

std::expected<Bootstrap, Errors> LoadBootstrap(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(Errors{Error{path, 0, "", "", "cannot open file"}});
  std::ostringstream text;
  text << in.rdbuf();
  return ParseBootstrap(text.str(), path);
}

}  // namespace picket::config
