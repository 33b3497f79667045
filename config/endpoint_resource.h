// config/endpoint_resource.h — decoding the compiled per-pod resources a sidecar receives.
//
// Owns: the JSON → plain struct step for the two resources of policy/endpoint_policy.h (an
// address-map entry, a pod policy) and for the whole snapshot (the proxy's `policy_file`): one
// pass over a parsed base::JsonValue with base::JsonFields, so a pushed resource is read
// straight from the frame's parsed document and a local file takes the same path after one
// ParseJson. Only shape and scalar types are checked here, with precise `field.path: reason`
// errors (unknown and duplicate fields included); turning addresses, prefixes and indexes into
// the lookup structure (and checking them) is policy/'s job (policy/endpoint_codec.h).
// The text form is JSON only (what `picket-control compile` writes and the control server
// pushes); YAML is not accepted.
//
// Pure functions, any thread. Input is untrusted (fuzzed: test/fuzz/endpoint_resource_fuzz.cc).
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
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

// Each reads one value and reports every error it finds (file = `file_name`, field = the path
// inside the value).
[[nodiscard]] std::expected<AddressEntryResource, Errors> DecodeAddressEntryResource(
    const base::JsonValue& value, std::string_view file_name);
[[nodiscard]] std::expected<PodPolicyResource, Errors> DecodePodPolicyResource(
    const base::JsonValue& value, std::string_view file_name);
[[nodiscard]] std::expected<EndpointPolicyResource, Errors> DecodeEndpointPolicyResource(
    const base::JsonValue& value, std::string_view file_name);

// The same from JSON text (parsed once here; a syntax error is the one error).
[[nodiscard]] std::expected<AddressEntryResource, Errors> DecodeAddressEntryResource(
    std::string_view text, std::string_view file_name);
[[nodiscard]] std::expected<PodPolicyResource, Errors> DecodePodPolicyResource(
    std::string_view text, std::string_view file_name);
[[nodiscard]] std::expected<EndpointPolicyResource, Errors> DecodeEndpointPolicyResource(
    std::string_view text, std::string_view file_name);

}  // namespace picket::config
