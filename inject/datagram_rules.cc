// inject/datagram_rules.cc — see datagram_rules.h.
#include "inject/datagram_rules.h"

#include <algorithm>
#include <initializer_list>
#include <sstream>

#include "inject/verdict_rules.h"

namespace picket::inject {
namespace {

constexpr char kOut[] = "PICKET_DGRAM_OUT";
constexpr char kIn[] = "PICKET_DGRAM_IN";
constexpr const char* kProtocols[] = {"udp", "sctp"};
// An SCTP packet conntrack could not place: a chunk that opens nothing, such as the next DATA of
// an association whose entry a policy change deleted. It has no conntrack entry, so the nat
// table never sees it; filter judges it. (A UDP packet is INVALID only when malformed —
// truncated, bad length or checksum — and the UDP stack drops those itself.)
constexpr char kSctpUnplaced[] = " -p sctp -m conntrack --ctstate INVALID";

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Drops our stale jumps (re-added by the caller, if at all) and our chains not in `keep`.
void RemoveStale(std::ostringstream& o, const NatState& current,
                 const std::vector<std::string>& keep) {
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  std::vector<std::string> stale;
  for (const std::string& chain : current.picket_chains) {
    if (std::find(keep.begin(), keep.end(), chain) == keep.end()) stale.push_back(chain);
  }
  for (const std::string& chain : stale) o << "-F " << chain << "\n";
  for (const std::string& chain : stale) o << "-X " << chain << "\n";
}

}  // namespace

const std::vector<std::string>& PicketDatagramChains() {
  static const std::vector<std::string> kChains{kIn, kOut};
  return kChains;
}

namespace {

// Our chains (by prefix) in one table of `iptables-save` output, and the jumps into them.
NatState ParseTable(std::string_view text, std::string_view table,
                    std::initializer_list<const char*> prefixes) {
  auto ours = [&](std::string_view chain) {
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&](const char* p) { return StartsWith(chain, p); });
  };
  auto jumps_to_ours = [&](std::string_view line) {
    return std::any_of(prefixes.begin(), prefixes.end(), [&](const char* p) {
      return line.find(std::string(" -j ") + p) != std::string_view::npos;
    });
  };
  NatState state;
  bool in_table = false;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (StartsWith(line, "*")) {
      in_table = std::string_view(line).substr(1) == table;
      continue;
    }
    if (!in_table) continue;
    if (StartsWith(line, ":")) {
      std::string chain = line.substr(1, line.find(' ') - 1);
      if (ours(chain)) state.picket_chains.push_back(chain);
    } else if (StartsWith(line, "-A ")) {
      std::string chain = line.substr(3, line.find(' ', 3) - 3);
      if (!ours(chain) && jumps_to_ours(line)) state.jump_rules.push_back(line);
    }
  }
  return state;
}

}  // namespace

NatState ParseMangleState(std::string_view text) {
  return ParseTable(text, "mangle", {"PICKET_DGRAM_", "PICKET_TCP_"});
}

NatState ParseDatagramFilterState(std::string_view text) {
  return ParseTable(text, "filter", {"PICKET_DGRAM_"});
}

namespace {

// The `-A` lines of the UDP/SCTP chains and the jumps into them, for the nat table (every new
// UDP/SCTP flow: nat rules run for a connection's first packet only) or the filter table
// (kSctpUnplaced, first in INPUT and OUTPUT). Both chains first return on a packet the sidecar
// judged and sent back through the hook (NF_REPEAT, config::kVerdictMarkJudged).
base::Result<std::string> DatagramLines(const RedirectConfig& c, Family family, bool nat) {
  auto cidrs = OutboundCidrsOf(c, family);
  if (!cidrs) return std::unexpected(cidrs.error());
  const auto& [include_all, include, exclude] = *cidrs;
  // One queue, or one per CPU (modulo the count): the sidecar's worker for that queue can run on
  // the CPU that queued the packet.
  const std::string queue =
      c.datagram_queue_count > 1
          ? " -j NFQUEUE --queue-balance " + std::to_string(c.datagram_queue) + ":" +
                std::to_string(c.datagram_queue + c.datagram_queue_count - 1) +
                " --queue-cpu-fanout"
          : " -j NFQUEUE --queue-num " + std::to_string(c.datagram_queue);

  std::ostringstream o;
  const std::string judged =
      " -m mark --mark " + VerdictMarkMatch(config::kVerdictMarkJudged) + " -j RETURN\n";
  o << "-A " << kIn << judged << "-A " << kOut << judged;
  // Inbound (PREROUTING): loopback is the pod talking to itself (its OUTPUT side decided).
  o << "-A " << kIn << " -i lo -j RETURN\n";
  for (const std::string& i : c.exclude_interfaces)
    o << "-A " << kIn << " -i " << i << " -j RETURN\n";
  if (c.all_inbound_ports) {
    for (uint16_t p : c.exclude_inbound_ports) {
      for (const char* proto : kProtocols) {
        o << "-A " << kIn << " -p " << proto << " -m " << proto << " --dport " << p
          << " -j RETURN\n";
      }
    }
    o << "-A " << kIn << queue << "\n";
  } else {
    for (uint16_t p : c.include_inbound_ports) {
      for (const char* proto : kProtocols) {
        o << "-A " << kIn << " -p " << proto << " -m " << proto << " --dport " << p << queue
          << "\n";
      }
    }
  }

  // Outbound (POSTROUTING of locally sent packets): the sidecar's own packets, loopback and
  // exclusions, then capture.
  for (uint32_t uid : c.proxy_uids)
    o << "-A " << kOut << " -m owner --uid-owner " << uid << " -j RETURN\n";
  for (uint32_t gid : c.proxy_gids)
    o << "-A " << kOut << " -m owner --gid-owner " << gid << " -j RETURN\n";
  o << "-A " << kOut << " -o lo -j RETURN\n";
  for (const std::string& i : c.exclude_interfaces)
    o << "-A " << kOut << " -o " << i << " -j RETURN\n";
  for (uint16_t p : c.exclude_outbound_ports) {
    for (const char* proto : kProtocols) {
      o << "-A " << kOut << " -p " << proto << " -m " << proto << " --dport " << p
        << " -j RETURN\n";
    }
  }
  for (const std::string& cidr : exclude) o << "-A " << kOut << " -d " << cidr << " -j RETURN\n";
  for (uint16_t p : c.include_outbound_ports) {
    for (const char* proto : kProtocols) {
      o << "-A " << kOut << " -p " << proto << " -m " << proto << " --dport " << p << queue << "\n";
    }
  }
  if (include_all) {
    o << "-A " << kOut << queue << "\n";
  } else {
    for (const std::string& cidr : include) o << "-A " << kOut << " -d " << cidr << queue << "\n";
  }

  // POSTROUTING, not OUTPUT: after the nat table's DNAT of a Service address (kube-proxy), so
  // egress is judged against the backend, as for TCP.
  if (nat) {
    for (const char* proto : kProtocols) {
      o << "-A PREROUTING -p " << proto << " -j " << kIn << "\n";
      o << "-A POSTROUTING -p " << proto << " -j " << kOut << "\n";
    }
  } else {
    o << "-I INPUT 1" << kSctpUnplaced << " -j " << kIn << "\n";
    o << "-I OUTPUT 1" << kSctpUnplaced << " -j " << kOut << "\n";
  }
  return o.str();
}

// The mangle transaction: verdict mode's TCP chains when `tcp_verdict`; every other chain of
// ours in `current` is removed (PICKET_DGRAM_* there are an older picket-init's).
base::Result<std::string> MangleTransaction(const RedirectConfig& c, Family family,
                                            const NatState& current, bool tcp_verdict) {
  if (!tcp_verdict) return BuildMangleCleanupTransaction(current);
  auto lines = TcpVerdictMangleLines(c, family);
  if (!lines) return std::unexpected(lines.error());
  const auto& chains = PicketTcpVerdictChains();
  std::ostringstream o;
  o << "*mangle\n";
  for (const std::string& chain : chains) o << ":" << chain << " - [0:0]\n";
  RemoveStale(o, current, chains);
  o << *lines << "COMMIT\n";
  return o.str();
}

}  // namespace

base::Result<std::string> DatagramNatLines(const RedirectConfig& c, Family family) {
  if (!c.capture_datagrams) return std::string();
  return DatagramLines(c, family, /*nat=*/true);
}

std::vector<std::string> DatagramFilterChains(const RedirectConfig& c) {
  if (!c.capture_datagrams) return {};
  return PicketDatagramChains();
}

base::Result<std::string> DatagramFilterLines(const RedirectConfig& c, Family family,
                                              const NatState& current) {
  std::ostringstream o;
  RemoveStale(o, current, DatagramFilterChains(c));
  if (c.capture_datagrams) {
    auto lines = DatagramLines(c, family, /*nat=*/false);
    if (!lines) return std::unexpected(lines.error());
    o << *lines;
  }
  return o.str();
}

std::string DatagramFilterCleanupLines(const NatState& current) {
  std::ostringstream o;
  RemoveStale(o, current, /*keep=*/{});
  return o.str();
}

base::Result<std::string> BuildMangleTransaction(const RedirectConfig& c, Family family,
                                                 const NatState& current) {
  return MangleTransaction(c, family, current, c.capture == config::CaptureMode::kVerdict);
}

std::string BuildMangleCleanupTransaction(const NatState& current) {
  if (current.picket_chains.empty() && current.jump_rules.empty()) return "";
  std::ostringstream o;
  o << "*mangle\n";
  RemoveStale(o, current, /*keep=*/{});
  o << "COMMIT\n";
  return o.str();
}

}  // namespace picket::inject
