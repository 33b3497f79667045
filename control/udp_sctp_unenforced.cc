// control/udp_sctp_unenforced.cc — see udp_sctp_unenforced.h.
#include "control/udp_sctp_unenforced.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace picket::control {
namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string ProtocolsText(const std::vector<config::Protocol>& protocols) {
  std::string out;
  for (config::Protocol p : protocols) {
    out += std::string(out.empty() ? "" : " and ") + config::ProtocolName(p);
  }
  return out;
}

}  // namespace

std::optional<UdpSctpUnenforcedPod> NamedUdpSctp(std::string pod, const policy::PodPolicy& rules) {
  bool udp = false;
  bool sctp = false;
  std::set<std::string> policies;
  for (const policy::DirectionRules* direction : {&rules.ingress, &rules.egress}) {
    for (const policy::RuleEntry& entry : direction->entries) {
      // A rule without ports allows every port of every protocol: it names no protocol.
      if (entry.port.kind == policy::PortMatch::Kind::kAll) continue;
      if (entry.port.protocol == config::Protocol::kUDP) {
        udp = true;
      } else if (entry.port.protocol == config::Protocol::kSCTP) {
        sctp = true;
      } else {
        continue;
      }
      if (entry.policy < direction->policies.size()) {
        policies.insert(direction->policies[entry.policy]);
      }
    }
  }
  if (!udp && !sctp) return std::nullopt;
  UdpSctpUnenforcedPod out{std::move(pod), {policies.begin(), policies.end()}, {}};
  if (udp) out.protocols.push_back(config::Protocol::kUDP);
  if (sctp) out.protocols.push_back(config::Protocol::kSCTP);
  return out;
}

void UdpSctpUnenforced::Update(const std::set<std::string>& unenforced, const RulesOf& rules_of) {
  std::vector<UdpSctpUnenforcedPod> next;
  for (const std::string& pod : unenforced) {
    const policy::PodPolicy* rules = rules_of(pod);
    if (rules == nullptr) continue;
    if (auto named = NamedUdpSctp(pod, *rules)) next.push_back(std::move(*named));
  }
  // Both lists are sorted by pod: walk them together.
  auto before = pods_.begin();
  for (const UdpSctpUnenforcedPod& now : next) {
    for (; before != pods_.end() && before->pod < now.pod; ++before) {
      spdlog::info("pod {}: no longer listed as UDP/SCTP-unenforced", before->pod);
    }
    const bool same = before != pods_.end() && *before == now;
    if (before != pods_.end() && before->pod == now.pod) ++before;
    if (same) continue;
    ++warnings_;
    spdlog::warn(
        "pod {}: NetworkPolicy {} names {} ports, but its sidecar does not enforce UDP or SCTP, "
        "so those rules are not applied (opted out: every {} flow passes; verdict queue not "
        "bound, e.g. no CAP_NET_ADMIN: new ones are dropped)",
        now.pod, Join(now.policies), ProtocolsText(now.protocols), ProtocolsText(now.protocols));
  }
  for (; before != pods_.end(); ++before) {
    spdlog::info("pod {}: no longer listed as UDP/SCTP-unenforced", before->pod);
  }
  pods_ = std::move(next);
}

}  // namespace picket::control
