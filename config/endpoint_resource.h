// config/endpoint_resource.h — decoding the compiled per-pod resources a sidecar receives.
//
// Owns: the text (JSON, or YAML) → plain struct step for the two resources of
// policy/endpoint_policy.h (an address-map entry, a pod policy) and for the whole snapshot
// (the proxy's `policy_file`). Only shape and scalar types are checked here, with precise
// `field.path: reason` errors; turning addresses, prefixes and indexes into the lookup structure
// (and checking them) is policy/'s job. yaml-cpp stays in this file's .cc; none of its exceptions
// escape. Pure functions, any thread. Input is untrusted (fuzzed: test/fuzz/).
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.h"
#include "config/model.h"

namespace picket::config {

struct NamedPortResource {
  std::string name;
  uint16_t port = 0;
  Protocol protocol = Protocol::kTCP;
};

struct AddressEntryResource {
  uint32_t identity = 0;
  std::string ns;
  std::string pod;
  std::vector<std::string> ips;
  Labels labels;
  std::vector<NamedPortResource> named_ports;
};

// Exactly one of identity_set / cidr when present; absent peer: any peer.
struct PeerResource {
  std::optional<uint32_t> identity_set;
  std::optional<std::string> cidr;
  std::vector<std::string> except;
  std::string description;  // optional, for explain and flow logs
};

// Absent port: all ports and protocols. `port` absent: every port of `protocol`.
struct PortResource {
  Protocol protocol = Protocol::kTCP;
  std::optional<uint16_t> port;
  std::optional<uint16_t> end_port;
  std::optional<std::string> name;
};

struct RuleEntryResource {
  uint32_t policy = 0;
  uint32_t rule = 0;
  std::optional<PeerResource> peer;
  std::optional<PortResource> port;
};

struct DirectionResource {
  bool isolated = false;
  std::vector<std::string> policies;
  std::vector<RuleEntryResource> rules;
};

struct PodPolicyResource {
  std::string ns;
  std::string pod;
  std::vector<std::string> host_ips;  // optional: absent (older resources) == none
  std::vector<std::vector<uint32_t>> identity_sets;
  DirectionResource ingress;
  DirectionResource egress;
};

struct EndpointPolicyResource {
  std::string version;
  std::string ns;
  std::string pod;
  std::vector<AddressEntryResource> address_map;
  PodPolicyResource pod_policy;
};

// Each reports every error it finds (file = `file_name`, field = the path inside the text).
[[nodiscard]] std::expected<AddressEntryResource, Errors> DecodeAddressEntryResource(
    std::string_view text, std::string_view file_name);
[[nodiscard]] std::expected<PodPolicyResource, Errors> DecodePodPolicyResource(
    std::string_view text, std::string_view file_name);
[[nodiscard]] std::expected<EndpointPolicyResource, Errors> DecodeEndpointPolicyResource(
    std::string_view text, std::string_view file_name);

}  // namespace picket::config
