// inject/redirect_rules.cc — see redirect_rules.h.
#include "inject/redirect_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <sstream>
#include <utility>

#include "inject/datagram_rules.h"
#include "inject/verdict_rules.h"

namespace picket::inject {
namespace {

using base::Error;

constexpr char kInbound[] = "PICKET_INBOUND";
constexpr char kInRedirect[] = "PICKET_IN_REDIRECT";
constexpr char kOutput[] = "PICKET_OUTPUT";
constexpr char kRedirect[] = "PICKET_REDIRECT";

std::vector<std::string> SplitList(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string_view item =
        s.substr(start, comma == std::string_view::npos ? s.npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

template <typename T>
base::Result<T> ParseNumber(std::string_view flag, std::string_view s, T min, T max) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < min || v > max) {
    return std::unexpected(Error::At("--" + std::string(flag),
                                     "\"" + std::string(s) + "\" is not a number between " +
                                         std::to_string(min) + " and " + std::to_string(max)));
  }
  return static_cast<T>(v);
}

template <typename T>
base::Result<std::vector<T>> ParseNumberList(std::string_view flag, std::string_view s, T min,
                                             T max) {
  std::vector<T> out;
  for (const std::string& item : SplitList(s)) {
    auto v = ParseNumber<T>(flag, item, min, max);
    if (!v) return std::unexpected(v.error());
    out.push_back(*v);
  }
  return out;
}

base::Result<bool> ParseBool(std::string_view flag, std::string_view s) {
  if (s == "true" || s == "1" || s == "yes") return true;
  if (s == "false" || s == "0" || s == "no") return false;
  return std::unexpected(
      Error::At("--" + std::string(flag), "\"" + std::string(s) + "\" is not true or false"));
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

base::Result<Family> CidrFamily(const std::string& cidr) {
  std::string addr = cidr;
  int max_prefix = 128;
  size_t slash = cidr.find('/');
  std::string prefix;
  if (slash != std::string::npos) {
    addr = cidr.substr(0, slash);
    prefix = cidr.substr(slash + 1);
  }
  unsigned char buf[16];
  Family family;
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    family = Family::kIPv4;
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    family = Family::kIPv6;
  } else {
    return std::unexpected(Error::Of("\"" + cidr + "\" is not an IPv4 or IPv6 CIDR"));
  }
  if (slash != std::string::npos) {
    int p = -1;
    auto [ptr, ec] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), p);
    if (ec != std::errc() || ptr != prefix.data() + prefix.size() || p < 0 || p > max_prefix) {
      return std::unexpected(Error::Of("\"" + cidr + "\" has an invalid prefix length"));
    }
  }
  return family;
}

base::Result<OutboundCidrs> OutboundCidrsOf(const RedirectConfig& c, Family family) {
  OutboundCidrs out;
  for (const std::string& cidr : c.include_outbound_cidrs) {
    if (cidr == "*") {
      out.include_all = true;
      continue;
    }
    auto f = CidrFamily(cidr);
    if (!f) return std::unexpected(f.error());
    if (*f == family) out.include.push_back(cidr);
  }
  for (const std::string& cidr : c.exclude_outbound_cidrs) {
    auto f = CidrFamily(cidr);
    if (!f) return std::unexpected(f.error());
    if (*f == family) out.exclude.push_back(cidr);
  }
  return out;
}

const std::vector<std::string>& PicketChains() {
  static const std::vector<std::string> kChains{kInbound, kRedirect, kInRedirect, kOutput};
  return kChains;
}

std::string InitUsage() {
  return R"(picket-init: install Picket's traffic capture rules in this network namespace.

usage: picket-init [flags]            install (or refresh) the rules, IPv4 and IPv6
       picket-init --cleanup          remove every PICKET_* chain and rule
       picket-init --dry-run          print the iptables-restore input and run nothing

flags (lists are comma-separated):
  --outbound-port=15001               outbound listener (REDIRECT target for app traffic)
  --inbound-port=15006                inbound listener (REDIRECT target for inbound traffic)
  --admin-port=15000                  never captured inbound
  --readiness-port=15021              never captured inbound
  --metrics-port=0                    the sidecar's metrics listener: never captured inbound,
                                      only the proxy uid may answer on it (0: none)
  --proxy-uid=1337                    uids whose traffic is never captured
  --proxy-gid=<proxy-uid>             gids whose traffic is never captured
  --include-outbound-cidrs=*          '*' or CIDRs to capture outbound
  --exclude-outbound-cidrs=           CIDRs never captured outbound
  --include-outbound-ports=           ports always captured outbound
  --exclude-outbound-ports=           ports never captured outbound
  --include-inbound-ports=*           '*' or ports captured inbound
  --exclude-inbound-ports=            ports never captured inbound (with '*')
  --exclude-interfaces=               interfaces never captured either way
  --inbound-passthrough-source=127.0.0.7,::7
                                      source the sidecar binds to reach the local app
  --ipv6=true                         false: leave ip6tables alone (explicit opt-out)
  --udp-sctp=true                     false: do not capture (nor enforce) UDP and SCTP
  --nfqueue=15000                     the queue new UDP/SCTP flows wait in for a verdict
  --nfqueue-count=1                   UDP/SCTP over this many queues from --nfqueue on, by CPU
  --service-cidrs=                    with --capture=verdict and --udp-sctp: the Service
                                      ClusterIP ranges; TCP elsewhere is then not
                                      connection-tracked (cheaper)
  --capture=relay                     TCP: relay (redirect to the sidecar's listeners) or
                                      verdict (new flows judged from --nfqueue, then carried
                                      by the kernel; the sidecar routes TCP to Services to
                                      itself and relays it)
  --iptables-restore=PATH, --iptables-save=PATH,
  --ip6tables-restore=PATH, --ip6tables-save=PATH
                                      binaries (e.g. iptables-legacy-restore)
)";
}

base::Result<InitCommand> ParseInitArgs(const std::vector<std::string>& args) {
  InitCommand cmd;
  RedirectConfig& c = cmd.config;
  bool gid_given = false;
  for (const std::string& arg : args) {
    if (arg == "--dry-run") {
      cmd.dry_run = true;
      continue;
    }
    if (arg == "--cleanup") {
      cmd.action = InitCommand::Action::kCleanup;
      continue;
    }
    if (!StartsWith(arg, "--") || arg.find('=') == std::string::npos) {
      return std::unexpected(
          Error::Of("unknown argument \"" + arg + "\" (flags are --name=value)"));
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq - 2);
    const std::string value = arg.substr(eq + 1);
    base::Result<void> ok;
    auto port = [&](uint16_t* out) -> base::Result<void> {
      auto v = ParseNumber<uint16_t>(name, value, 1, 65535);
      if (!v) return std::unexpected(v.error());
      *out = *v;
      return {};
    };
    auto ports = [&](std::vector<uint16_t>* out) -> base::Result<void> {
      auto v = ParseNumberList<uint16_t>(name, value, 1, 65535);
      if (!v) return std::unexpected(v.error());
      *out = *v;
      return {};
    };
    auto ids = [&](std::vector<uint32_t>* out) -> base::Result<void> {
      auto v = ParseNumberList<uint32_t>(name, value, 0, 0xFFFFFFFEu);
      if (!v) return std::unexpected(v.error());
      if (v->empty()) return std::unexpected(Error::At("--" + name, "needs at least one id"));
      *out = *v;
      return {};
    };
    if (name == "outbound-port") {
      ok = port(&c.outbound_port);
    } else if (name == "inbound-port") {
      ok = port(&c.inbound_port);
    } else if (name == "admin-port") {
      ok = port(&c.admin_port);
    } else if (name == "readiness-port") {
      ok = port(&c.readiness_port);
    } else if (name == "metrics-port") {
      auto v = ParseNumber<uint16_t>(name, value, 0, 65535);
      if (!v) return std::unexpected(v.error());
      c.metrics_port = *v;
    } else if (name == "proxy-uid") {
      ok = ids(&c.proxy_uids);
    } else if (name == "proxy-gid") {
      ok = ids(&c.proxy_gids);
      gid_given = true;
    } else if (name == "include-outbound-cidrs" || name == "exclude-outbound-cidrs") {
      std::vector<std::string> list = SplitList(value);
      const bool include = name == "include-outbound-cidrs";
      for (const std::string& cidr : list) {
        if (cidr == "*" && include) continue;
        if (cidr == "*") return std::unexpected(Error::At("--" + name, "'*' is not allowed here"));
        if (auto f = CidrFamily(cidr); !f)
          return std::unexpected(std::move(f.error()).Under("--" + name));
      }
      if (include && std::count(list.begin(), list.end(), "*") > 0 && list.size() > 1) {
        return std::unexpected(Error::At("--" + name, "'*' cannot be combined with CIDRs"));
      }
      (include ? c.include_outbound_cidrs : c.exclude_outbound_cidrs) = list;
    } else if (name == "include-outbound-ports") {
      ok = ports(&c.include_outbound_ports);
    } else if (name == "exclude-outbound-ports") {
      ok = ports(&c.exclude_outbound_ports);
    } else if (name == "include-inbound-ports") {
      if (value == "*") {
        c.all_inbound_ports = true;
        c.include_inbound_ports.clear();
      } else {
        c.all_inbound_ports = false;
        ok = ports(&c.include_inbound_ports);
      }
    } else if (name == "exclude-inbound-ports") {
      ok = ports(&c.exclude_inbound_ports);
    } else if (name == "exclude-interfaces") {
      c.exclude_interfaces = SplitList(value);
      for (const std::string& i : c.exclude_interfaces) {
        if (i.size() > 15 || i.find_first_of(" /") != std::string::npos) {
          return std::unexpected(Error::At("--" + name, "\"" + i + "\" is not an interface name"));
        }
      }
    } else if (name == "inbound-passthrough-source") {
      for (const std::string& a : SplitList(value)) {
        auto f = CidrFamily(a);
        if (!f || a.find('/') != std::string::npos) {
          return std::unexpected(Error::At("--" + name, "\"" + a + "\" is not an address"));
        }
        (*f == Family::kIPv4 ? c.inbound_passthrough_v4 : c.inbound_passthrough_v6) = a;
      }
    } else if (name == "ipv6") {
      auto b = ParseBool(name, value);
      if (!b) return std::unexpected(b.error());
      c.ipv6 = *b;
    } else if (name == "udp-sctp") {
      auto b = ParseBool(name, value);
      if (!b) return std::unexpected(b.error());
      c.capture_datagrams = *b;
    } else if (name == "service-cidrs") {
      c.service_cidrs = SplitList(value);
      for (const std::string& cidr : c.service_cidrs) {
        if (auto f = CidrFamily(cidr); !f)
          return std::unexpected(std::move(f.error()).Under("--" + name));
      }
    } else if (name == "nfqueue") {
      auto v = ParseNumber<uint16_t>(name, value, 0, 65535);
      if (!v) return std::unexpected(v.error());
      c.datagram_queue = *v;
    } else if (name == "nfqueue-count") {
      auto v = ParseNumber<uint16_t>(name, value, 1, 64);
      if (!v) return std::unexpected(v.error());
      c.datagram_queue_count = *v;
    } else if (name == "capture") {
      if (value == config::CaptureModeName(config::CaptureMode::kRelay)) {
        c.capture = config::CaptureMode::kRelay;
      } else if (value == config::CaptureModeName(config::CaptureMode::kVerdict)) {
        c.capture = config::CaptureMode::kVerdict;
      } else {
        return std::unexpected(
            Error::At("--capture",
                      "\"" + value + "\" is not a capture mode: supported values: relay, verdict"));
      }
    } else if (name == "iptables-restore") {
      cmd.iptables_restore = value;
    } else if (name == "iptables-save") {
      cmd.iptables_save = value;
    } else if (name == "ip6tables-restore") {
      cmd.ip6tables_restore = value;
    } else if (name == "ip6tables-save") {
      cmd.ip6tables_save = value;
    } else {
      return std::unexpected(Error::Of("unknown flag --" + name + " (see --help)"));
    }
    if (!ok) return std::unexpected(ok.error());
  }
  if (!gid_given) c.proxy_gids = c.proxy_uids;
  if (static_cast<uint32_t>(c.datagram_queue) + c.datagram_queue_count - 1 > 65535) {
    return std::unexpected(Error::At("--nfqueue-count", "queues past 65535"));
  }
  if (!c.service_cidrs.empty() && c.capture != config::CaptureMode::kVerdict) {
    return std::unexpected(
        Error::At("--service-cidrs", "only has a meaning with --capture=verdict"));
  }
  if (c.outbound_port == c.inbound_port) {
    return std::unexpected(Error::Of("--outbound-port and --inbound-port must differ"));
  }
  if (c.metrics_port != 0 &&
      (c.metrics_port == c.outbound_port || c.metrics_port == c.inbound_port)) {
    return std::unexpected(
        Error::At("--metrics-port", "must differ from --outbound-port and --inbound-port"));
  }
  return cmd;
}

NatState ParseNatState(std::string_view text) {
  NatState state;
  bool in_nat = false;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (StartsWith(line, "*")) {
      in_nat = line == "*nat";
      continue;
    }
    if (!in_nat) continue;
    if (StartsWith(line, ":")) {
      std::string chain = line.substr(1, line.find(' ') - 1);
      if (StartsWith(chain, "PICKET_")) state.picket_chains.push_back(chain);
      if (StartsWith(chain, "ISTIO_") || StartsWith(chain, "PROXY_INIT_")) {
        state.foreign_chains.push_back(chain);
      }
    } else if (StartsWith(line, "-A ")) {
      std::string chain = line.substr(3, line.find(' ', 3) - 3);
      if (!StartsWith(chain, "PICKET_") && line.find(" -j PICKET_") != std::string::npos) {
        state.jump_rules.push_back(line);
      }
    }
  }
  return state;
}

base::Result<std::string> BuildInstallTransaction(const RedirectConfig& c, Family family,
                                                  const NatState& current) {
  const bool v4 = family == Family::kIPv4;
  const std::string localhost = v4 ? "127.0.0.1/32" : "::1/128";
  const std::string passthrough =
      (v4 ? c.inbound_passthrough_v4 : c.inbound_passthrough_v6) + (v4 ? "/32" : "/128");

  auto cidrs = OutboundCidrsOf(c, family);
  if (!cidrs) return std::unexpected(cidrs.error());
  const auto& [include_all, include, exclude] = *cidrs;

  // The UDP/SCTP capture's chains (inject/datagram_rules.h) live in this table too.
  auto datagrams = DatagramNatLines(c, family);
  if (!datagrams) return std::unexpected(datagrams.error());
  const bool verdict = c.capture == config::CaptureMode::kVerdict;
  // Verdict mode has no TCP here: the sidecar routes TCP to Service addresses to itself
  // (proxy/service_routes.h). Without UDP/SCTP capture it has no nat table at all: a table of
  // ours, even empty, would load connection tracking for every packet of the pod.
  if (verdict && datagrams->empty()) return BuildCleanupTransaction(current);
  std::vector<std::string> ours = verdict ? std::vector<std::string>{} : PicketChains();
  if (!datagrams->empty()) {
    const auto& d = PicketDatagramChains();
    ours.insert(ours.end(), d.begin(), d.end());
  }

  std::ostringstream o;
  o << "*nat\n";
  for (const std::string& chain : ours) o << ":" << chain << " - [0:0]\n";
  // Re-run: drop our old jumps (re-added below) and chains we no longer create.
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  std::vector<std::string> stale;
  for (const std::string& chain : current.picket_chains) {
    if (std::find(ours.begin(), ours.end(), chain) == ours.end()) stale.push_back(chain);
  }
  for (const std::string& chain : stale) o << "-F " << chain << "\n";
  for (const std::string& chain : stale) o << "-X " << chain << "\n";

  if (verdict) {
    o << *datagrams << "COMMIT\n";
    return o.str();
  }
  o << "-A " << kRedirect << " -p tcp -j REDIRECT --to-ports " << c.outbound_port << "\n";
  o << "-A " << kInRedirect << " -p tcp -j REDIRECT --to-ports " << c.inbound_port << "\n";

  // Inbound (PREROUTING): interfaces we ignore, then our own ports, then capture.
  for (const std::string& i : c.exclude_interfaces)
    o << "-A " << kInbound << " -i " << i << " -j RETURN\n";
  if (c.all_inbound_ports) {
    std::vector<uint16_t> excluded{c.admin_port, c.readiness_port};
    if (c.metrics_port != 0) excluded.push_back(c.metrics_port);
    for (uint16_t p : c.exclude_inbound_ports) {
      if (std::find(excluded.begin(), excluded.end(), p) == excluded.end()) excluded.push_back(p);
    }
    for (uint16_t p : excluded) o << "-A " << kInbound << " -p tcp --dport " << p << " -j RETURN\n";
    o << "-A " << kInbound << " -p tcp -j " << kInRedirect << "\n";
  } else {
    for (uint16_t p : c.include_inbound_ports) {
      if (p == c.admin_port || p == c.readiness_port || p == c.metrics_port) continue;
      o << "-A " << kInbound << " -p tcp --dport " << p << " -j " << kInRedirect << "\n";
    }
  }

  // Outbound (OUTPUT). Order matters: exclusions, loopback and owner cases, then capture.
  for (const std::string& i : c.exclude_interfaces)
    o << "-A " << kOutput << " -o " << i << " -j RETURN\n";
  for (uint16_t p : c.exclude_outbound_ports)
    o << "-A " << kOutput << " -p tcp --dport " << p << " -j RETURN\n";
  // The sidecar's inbound passthrough connections to the app: never capture again.
  o << "-A " << kOutput << " -o lo -s " << passthrough << " -j RETURN\n";
  bool capture_loopback = false;
  for (const std::string& cidr : include) {
    capture_loopback |= v4 ? StartsWith(cidr, "127.") : (cidr == "::1" || StartsWith(cidr, "::1/"));
  }
  auto owner_rules = [&](const char* match, uint32_t id) {
    // The sidecar calling the pod's own address over lo (e.g. its own Service): send it through
    // the inbound listener so ingress policy applies.
    o << "-A " << kOutput << " -o lo ! -d " << localhost << " -p tcp -m owner --" << match
      << "-owner " << id << " -j " << kInRedirect << "\n";
    // App-to-app over lo is not captured (unless loopback is explicitly included).
    if (!capture_loopback) {
      o << "-A " << kOutput << " -o lo -m owner ! --" << match << "-owner " << id << " -j RETURN\n";
    }
    // Everything else the sidecar sends goes out as is (loop avoidance).
    o << "-A " << kOutput << " -m owner --" << match << "-owner " << id << " -j RETURN\n";
  };
  for (uint32_t uid : c.proxy_uids) owner_rules("uid", uid);
  for (uint32_t gid : c.proxy_gids) owner_rules("gid", gid);
  o << "-A " << kOutput << " -d " << localhost << " -j RETURN\n";
  for (const std::string& cidr : exclude) o << "-A " << kOutput << " -d " << cidr << " -j RETURN\n";
  for (uint16_t p : c.include_outbound_ports) {
    o << "-A " << kOutput << " -p tcp --dport " << p << " -j " << kRedirect << "\n";
  }
  if (include_all) {
    o << "-A " << kOutput << " -p tcp -j " << kRedirect << "\n";
  } else {
    for (const std::string& cidr : include) {
      o << "-A " << kOutput << " -d " << cidr << " -p tcp -j " << kRedirect << "\n";
    }
  }

  o << "-A PREROUTING -p tcp -j " << kInbound << "\n";
  o << "-A OUTPUT -p tcp -j " << kOutput << "\n";
  o << *datagrams << "COMMIT\n";
  return o.str();
}

std::string BuildCleanupTransaction(const NatState& current) {
  if (current.picket_chains.empty() && current.jump_rules.empty()) return "";
  std::ostringstream o;
  o << "*nat\n";
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  for (const std::string& chain : current.picket_chains) o << "-F " << chain << "\n";
  for (const std::string& chain : current.picket_chains) o << "-X " << chain << "\n";
  o << "COMMIT\n";
  return o.str();
}

}  // namespace picket::inject
