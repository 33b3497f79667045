// inject/verdict_rules.cc — see verdict_rules.h.
#include "inject/verdict_rules.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace picket::inject {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// A new TCP flow's first packet — a SYN (no ACK, RST or FIN), whether conntrack tracks the flow
// or not (raw NOTRACK); the rest of an accepted flow is the kernel's.
constexpr char kNewTcp[] = " -p tcp --syn";

}  // namespace

std::string VerdictMarkMatch(uint32_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "%#x/%#x", static_cast<unsigned>(value),
                static_cast<unsigned>(config::kVerdictMarkMask));
  return text;
}

const std::vector<std::string>& PicketTcpVerdictChains() {
  static const std::vector<std::string> kChains{kTcpInChain, kTcpOutChain, kTcpJudgeChain};
  return kChains;
}

base::Result<std::string> TcpVerdictMangleLines(const RedirectConfig& c, Family family) {
  auto cidrs = OutboundCidrsOf(c, family);
  if (!cidrs) return std::unexpected(cidrs.error());
  const auto& [include_all, include, exclude] = *cidrs;
  const std::string judge = std::string(" -j ") + kTcpJudgeChain;

  std::ostringstream o;
  // A SYN the sidecar's kernel verdict cache already allowed (marked "judged" by its nftables
  // table, which exists only while the sidecar does) is not queued.
  o << "-A " << kTcpJudgeChain << " -m mark --mark " << VerdictMarkMatch(config::kVerdictMarkJudged)
    << " -j RETURN\n";
  // Marked "reject" first: whatever is not judged (no sidecar bound: --queue-bypass) is refused.
  o << "-A " << kTcpJudgeChain << " -j MARK --set-xmark "
    << VerdictMarkMatch(config::kVerdictMarkReject) << "\n";
  o << "-A " << kTcpJudgeChain << " -j NFQUEUE --queue-num " << c.datagram_queue
    << " --queue-bypass\n";

  // Inbound (PREROUTING): loopback is the pod talking to itself (never judged), then the ports
  // the nat capture of relay mode leaves alone.
  o << "-A " << kTcpInChain << " -i lo -j RETURN\n";
  for (const std::string& i : c.exclude_interfaces)
    o << "-A " << kTcpInChain << " -i " << i << " -j RETURN\n";
  if (c.all_inbound_ports) {
    std::vector<uint16_t> excluded{c.admin_port, c.readiness_port};
    if (c.metrics_port != 0) excluded.push_back(c.metrics_port);
    for (uint16_t p : c.exclude_inbound_ports) {
      if (std::find(excluded.begin(), excluded.end(), p) == excluded.end()) excluded.push_back(p);
    }
    for (uint16_t p : excluded)
      o << "-A " << kTcpInChain << " -p tcp --dport " << p << " -j RETURN\n";
    o << "-A " << kTcpInChain << judge << "\n";
  } else {
    for (uint16_t p : c.include_inbound_ports) {
      if (p == c.admin_port || p == c.readiness_port || p == c.metrics_port) continue;
      o << "-A " << kTcpInChain << " -p tcp --dport " << p << judge << "\n";
    }
  }

  // Outbound (OUTPUT): the sidecar's own connections, loopback and exclusions, then capture.
  for (uint32_t uid : c.proxy_uids)
    o << "-A " << kTcpOutChain << " -m owner --uid-owner " << uid << " -j RETURN\n";
  for (uint32_t gid : c.proxy_gids)
    o << "-A " << kTcpOutChain << " -m owner --gid-owner " << gid << " -j RETURN\n";
  o << "-A " << kTcpOutChain << " -o lo -j RETURN\n";
  for (const std::string& i : c.exclude_interfaces)
    o << "-A " << kTcpOutChain << " -o " << i << " -j RETURN\n";
  for (uint16_t p : c.exclude_outbound_ports)
    o << "-A " << kTcpOutChain << " -p tcp --dport " << p << " -j RETURN\n";
  for (const std::string& cidr : exclude)
    o << "-A " << kTcpOutChain << " -d " << cidr << " -j RETURN\n";
  for (uint16_t p : c.include_outbound_ports)
    o << "-A " << kTcpOutChain << " -p tcp --dport " << p << judge << "\n";
  if (include_all) {
    o << "-A " << kTcpOutChain << judge << "\n";
  } else {
    for (const std::string& cidr : include)
      o << "-A " << kTcpOutChain << " -d " << cidr << judge << "\n";
  }

  o << "-A PREROUTING" << kNewTcp << " -j " << kTcpInChain << "\n";
  // OUTPUT, not POSTROUTING: nat OUTPUT (after mangle OUTPUT) redirects relay-marked packets.
  o << "-A OUTPUT" << kNewTcp << " -j " << kTcpOutChain << "\n";
  return o.str();
}

NatState ParseRawState(std::string_view text) {
  NatState state;
  bool in_raw = false;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (StartsWith(line, "*")) {
      in_raw = line == "*raw";
      continue;
    }
    if (!in_raw) continue;
    if (StartsWith(line, ":PICKET_")) {
      state.picket_chains.push_back(line.substr(1, line.find(' ') - 1));
    } else if (StartsWith(line, "-A ") && !StartsWith(line, "-A PICKET_") &&
               line.find(" -j PICKET_") != std::string::npos) {
      state.jump_rules.push_back(line);
    }
  }
  return state;
}

base::Result<std::string> BuildRawTransaction(const RedirectConfig& c, Family family,
                                              const NatState& current) {
  // Untracking TCP pays only where something loads connection tracking: the UDP/SCTP capture.
  if (c.capture != config::CaptureMode::kVerdict || c.service_cidrs.empty() ||
      !c.capture_datagrams) {
    return BuildRawCleanupTransaction(current);
  }
  std::vector<std::string> services;
  for (const std::string& cidr : c.service_cidrs) {
    auto f = CidrFamily(cidr);
    if (!f) return std::unexpected(f.error());
    if (*f == family) services.push_back(cidr);
  }
  std::ostringstream o;
  o << "*raw\n:" << kTcpNotrackInChain << " - [0:0]\n:" << kTcpNotrackOutChain << " - [0:0]\n";
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  for (const std::string& chain : current.picket_chains) {
    if (chain != kTcpNotrackInChain && chain != kTcpNotrackOutChain) {
      o << "-F " << chain << "\n-X " << chain << "\n";
    }
  }
  // Loopback stays tracked: the relay's leg to a redirected app connection is reverse-translated.
  o << "-A " << kTcpNotrackInChain << " -i lo -j RETURN\n";
  o << "-A " << kTcpNotrackInChain << " -j CT --notrack\n";
  o << "-A " << kTcpNotrackOutChain << " -o lo -j RETURN\n";
  for (const std::string& cidr : services) {
    o << "-A " << kTcpNotrackOutChain << " -d " << cidr << " -j RETURN\n";
  }
  o << "-A " << kTcpNotrackOutChain << " -j CT --notrack\n";
  o << "-A PREROUTING -p tcp -j " << kTcpNotrackInChain << "\n";
  o << "-A OUTPUT -p tcp -j " << kTcpNotrackOutChain << "\n";
  o << "COMMIT\n";
  return o.str();
}

std::string BuildRawCleanupTransaction(const NatState& current) {
  if (current.picket_chains.empty() && current.jump_rules.empty()) return "";
  std::ostringstream o;
  o << "*raw\n";
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  for (const std::string& chain : current.picket_chains) o << "-F " << chain << "\n";
  for (const std::string& chain : current.picket_chains) o << "-X " << chain << "\n";
  o << "COMMIT\n";
  return o.str();
}

RejectState ParseRejectState(std::string_view text) {
  RejectState state;
  bool in_filter = false;
  const std::string declared = std::string(":") + kTcpRejectChain + " ";
  const std::string jump = std::string(" -j ") + kTcpRejectChain;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (StartsWith(line, "*")) {
      in_filter = line == "*filter";
      continue;
    }
    if (!in_filter) continue;
    if (StartsWith(line, declared)) state.chain = true;
    if (StartsWith(line, "-A ") && !StartsWith(line, std::string("-A ") + kTcpRejectChain + " ") &&
        EndsWith(line, jump)) {
      state.jump_rules.push_back(line);
    }
  }
  return state;
}

std::vector<std::string> TcpRejectChains(const RedirectConfig& c) {
  if (c.capture != config::CaptureMode::kVerdict) return {};
  return {kTcpRejectChain};
}

std::string TcpRejectFilterLines(const RedirectConfig& c, const RejectState& current) {
  if (c.capture != config::CaptureMode::kVerdict) return TcpRejectCleanupLines(current);
  std::ostringstream o;
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  o << "-A " << kTcpRejectChain << " -p tcp -m mark --mark "
    << VerdictMarkMatch(config::kVerdictMarkReject) << " -j REJECT --reject-with tcp-reset\n";
  // First in each chain, so no earlier ACCEPT lets an unjudged or denied flow through. Only a SYN
  // is ever marked (mangle queues SYNs only): every other packet passes on one flags compare.
  o << "-I INPUT 1 -p tcp --syn -j " << kTcpRejectChain << "\n";
  o << "-I OUTPUT 1 -p tcp --syn -j " << kTcpRejectChain << "\n";
  return o.str();
}

std::string TcpRejectCleanupLines(const RejectState& current) {
  std::ostringstream o;
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  if (current.chain) o << "-F " << kTcpRejectChain << "\n-X " << kTcpRejectChain << "\n";
  return o.str();
}

}  // namespace picket::inject
