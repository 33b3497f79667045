// control/udp_sctp_unenforced.h — pods whose NetworkPolicies name UDP or SCTP ports while their
// sidecar does not enforce UDP and SCTP.
//
// Owns: the decision (`NamedUdpSctp`: which of UDP and SCTP a pod's published rules name, in
// either direction, and which NetworkPolicies name them) and the current list of pods with a
// connected sidecar that says `node.metadata.udp_sctp_enforced: false` (control/PROTOCOL.md
// §3.7: the sidecar opted out, or its verdict queue could not be bound for lack of
// CAP_NET_ADMIN) and whose rules name UDP or SCTP. For those pods the policy's UDP and SCTP
// rules are not applied: opted out, every UDP and SCTP flow passes; with the queue unbound, new
// ones are dropped (fail closed). A rule names a protocol when it lists a port of it (a number,
// an `endPort` range, a named port, or only the protocol); a rule without `ports` ("all ports")
// names none. A sidecar that says nothing (an older one) is not listed.
//
// Each pod entering the list, or whose policies or protocols change while listed, is logged once
// as a warning (one per pod per change, not per request) and counted in `warnings()`; a pod
// leaving it (policy changed, sidecar gone or now enforcing) is logged at info.
//
// Loop-thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/model.h"
#include "policy/endpoint_policy.h"

namespace picket::control {

struct UdpSctpUnenforcedPod {
  std::string pod;                          // "ns/name"
  std::vector<std::string> policies;        // "ns/name" of each policy naming them, sorted
  std::vector<config::Protocol> protocols;  // of UDP and SCTP, those named (UDP first)
  friend bool operator==(const UdpSctpUnenforcedPod&, const UdpSctpUnenforcedPod&) = default;
};

// What `rules` (ingress and egress) name of UDP and SCTP, as an entry for `pod`; nullopt when
// they name neither.
std::optional<UdpSctpUnenforcedPod> NamedUdpSctp(std::string pod, const policy::PodPolicy& rules);

class UdpSctpUnenforced {
 public:
  // The published rules of a pod ("ns/name"), or nullptr (no policy published for it).
  using RulesOf = std::function<const policy::PodPolicy*(const std::string& pod)>;

  // Recomputes the list: `unenforced` are the pods with a connected sidecar that says it does
  // not enforce UDP/SCTP. Logs what changed.
  void Update(const std::set<std::string>& unenforced, const RulesOf& rules_of);

  const std::vector<UdpSctpUnenforcedPod>& pods() const { return pods_; }  // sorted by pod
  uint64_t warnings() const { return warnings_; }

 private:
  std::vector<UdpSctpUnenforcedPod> pods_;
  uint64_t warnings_ = 0;
};

}  // namespace picket::control
