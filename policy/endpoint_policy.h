// policy/endpoint_policy.h — the per-pod compiled policy a sidecar enforces.  [CONTRACT]
//
// Owns: the immutable snapshot one picket-proxy holds for its own pod: the address map
// (peer IP → identity: namespace, pod, labels, named ports) and the pod's compiled ingress and
// egress rules, each entry remembering the policies that produced it. Built by the compiler
// (policy/cluster_policy.h) from a config::Cluster, or decoded from its text form (the proxy's
// `policy_file`, and later the xDS push) through one path. Immutable after construction: share
// it as std::shared_ptr<const EndpointPolicy> and swap the pointer to update.
//
// Two resources (identities, not IP lists: docs/architecture.md), so a control server can push
// them separately and send address-map deltas:
//   - AddressEntry: one pod → its IPs, identity id, namespace, name, labels, named ports.
//     EncodeAddressEntry / DecodeAddressEntry; one JSON object per pod.
//   - PodPolicy: one pod's isolation per direction and its allowed (peer identity set or CIDR,
//     port, protocol) entries, which reference identity ids, never IPs; plus the addresses of
//     the pod's own node, always allowed in (Kubernetes docs: kubelet probes come from there).
//     EncodePodPolicy / DecodePodPolicy.
// A client assembles a snapshot from decoded parts with BuildEndpointPolicy(entries, policy).
// The whole snapshot's text form (Encode / DecodeEndpointPolicy, the `policy_file`) is
//   {"version":"…","namespace":"x","pod":"a","address_map":[<AddressEntry>…],
//    "pod_policy":<PodPolicy>}
// One codec (policy/endpoint_codec.cc): encoding writes straight from these values with
// base::JsonWriter, deterministic bytes whose base::HashVersion is the resource's version;
// decoding is one pass over a parsed base::JsonValue (a pushed resource is read in place from
// its frame's document) through config/endpoint_resource.h (precise errors, fuzzed).
//
// Any thread may call the const methods and the free functions concurrently.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "config/error.h"
#include "config/model.h"
#include "policy/ip_address.h"
#include "policy/rule_set.h"

namespace picket::policy {

// What is known about the remote side of a connection (for flow logs), if it is a known pod.
struct PeerInfo {
  std::string ns;
  std::string pod;
  config::Labels labels;
};

// A decision refers into the snapshot that made it (no copy of a name or a line per lookup):
// it is valid while that snapshot lives, so hold the EndpointPolicyPtr, or copy what you keep.
struct Decision {
  bool allowed = false;
  // Stable reason name when denied: "policy_denied" (the pod is isolated in this direction and
  // no rule matched). Empty when allowed.
  std::string_view reason;
  // The policies ("ns/name") that select this pod in the checked direction. For an allow by an
  // isolated pod: the policies whose rule matched. Empty when the pod is not isolated.
  std::span<const std::string> policies;
  // One human line: which rule allowed, or that none of the selecting policies' rules matched.
  std::string_view detail;
};

class EndpointPolicy {
 public:
  virtual ~EndpointPolicy() = default;

  // The snapshot's version (changes whenever its content changes).
  virtual const std::string& version() const = 0;
  virtual const std::string& pod_namespace() const = 0;
  virtual const std::string& pod_name() const = 0;

  // Outbound: may this pod open `protocol` to dst:port?
  virtual Decision CheckEgress(const IpAddress& dst, uint16_t port,
                               config::Protocol protocol) const = 0;
  // Inbound: may src open `protocol` to this pod's `port`? Always allowed from the pod itself
  // and from its own node (PodPolicy::host_ips), whatever the rules.
  virtual Decision CheckIngress(const IpAddress& src, uint16_t port,
                                config::Protocol protocol) const = 0;

  // The pod an address belongs to, or nullptr.
  virtual const PeerInfo* LookupPeer(const IpAddress& address) const = 0;

  // The snapshot in its text form (the `policy_file` format; also used by /config_dump).
  virtual std::string Encode() const = 0;
};

using EndpointPolicyPtr = std::shared_ptr<const EndpointPolicy>;

// Address-map resource: one pod. Pods sharing an identity share its namespace and labels.
struct AddressEntry {
  IdentityId identity = kNoIdentity;
  std::string ns;
  std::string pod;
  std::vector<IpAddress> ips;
  config::Labels labels;
  std::vector<NamedPort> named_ports;
  friend bool operator==(const AddressEntry&, const AddressEntry&) = default;
};

// Pod-policy resource: the pod's rules; PeerMatch::identity_set indexes `identity_sets`, each a
// sorted list of identity ids (ids that no address entry carries simply never match).
// `host_ips`: the addresses of the node the pod runs on (status.hostIPs); ingress from them is
// always allowed. Empty when unknown (not scheduled yet, or a resource from before the field),
// and then no source gets that exemption. Encoded only when non-empty.
struct PodPolicy {
  std::string ns;
  std::string pod;
  std::vector<IpAddress> host_ips;
  std::vector<std::vector<IdentityId>> identity_sets;
  DirectionRules ingress;
  DirectionRules egress;
  friend bool operator==(const PodPolicy&, const PodPolicy&) = default;
};

// Each writes one JSON value into `out` (e.g. into a larger document), or returns its text.
void EncodeAddressEntry(const AddressEntry& entry, base::JsonWriter& out);
void EncodePodPolicy(const PodPolicy& policy, base::JsonWriter& out);
[[nodiscard]] std::string EncodeAddressEntry(const AddressEntry& entry);
[[nodiscard]] std::string EncodePodPolicy(const PodPolicy& policy);

// Decode a resource from its parsed value (errors carry `file_name`, which for a pushed
// resource is its name) or from JSON text.
[[nodiscard]] std::expected<AddressEntry, config::Errors> DecodeAddressEntry(
    const base::JsonValue& value, std::string_view file_name);
[[nodiscard]] std::expected<PodPolicy, config::Errors> DecodePodPolicy(const base::JsonValue& value,
                                                                       std::string_view file_name);
[[nodiscard]] std::expected<AddressEntry, config::Errors> DecodeAddressEntry(
    std::string_view text, std::string_view file_name);
[[nodiscard]] std::expected<PodPolicy, config::Errors> DecodePodPolicy(std::string_view text,
                                                                       std::string_view file_name);

// Assembles a snapshot for policy.ns/policy.pod. `version` empty: a hash of the content.
// Errors: an IP claimed by two entries, an identity_set index out of range.
[[nodiscard]] std::expected<EndpointPolicyPtr, config::Errors> BuildEndpointPolicy(
    std::vector<AddressEntry> address_map, PodPolicy policy, std::string version = "");

// Compiles the snapshot for pod `ns`/`name` of `cluster`.
[[nodiscard]] std::expected<EndpointPolicyPtr, config::Errors> CompileEndpointPolicy(
    const config::Cluster& cluster, std::string_view ns, std::string_view name);

// Decodes the text form produced by Encode(), JSON only (untrusted: precise errors, never a
// crash).
[[nodiscard]] std::expected<EndpointPolicyPtr, config::Errors> DecodeEndpointPolicy(
    std::string_view text, std::string_view file_name);

}  // namespace picket::policy
