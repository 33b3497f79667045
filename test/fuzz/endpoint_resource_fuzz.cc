// libFuzzer target: the sidecar's policy text (config/endpoint_resource + policy decoding).
// Built by test/fuzz/build_endpoint.sh (clang++-16), not by Bazel.
//
// The first byte picks the entry point (whole snapshot from text, as a policy_file is read; one
// address entry or one pod policy from a parsed value, as a pushed resource is read from its
// frame's document).
// Invariants: no crash, no exception, no sanitizer report; a snapshot that decodes re-encodes
// to text that decodes to the same text (Encode is a fixed point), and lookups on it work; a
// pod policy round-trips, and ingress from each of its host IPs (the pod's own node) is allowed
// in the snapshot built from it, with that node named in the decision.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "policy/endpoint_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  using picket::policy::IpAddress;
  switch (data[0] % 3) {
    case 0: {
      auto snapshot = picket::policy::DecodeEndpointPolicy(text, "fuzz");
      if (!snapshot) return 0;
      const std::string encoded = (*snapshot)->Encode();
      auto again = picket::policy::DecodeEndpointPolicy(encoded, "fuzz");
      if (!again || (*again)->Encode() != encoded) std::abort();
      for (const char* ip : {"10.0.0.1", "10.1.1.1", "fd00::1", "0.0.0.0", "192.168.0.1"}) {
        const IpAddress a = *IpAddress::Parse(ip);
        (void)(*again)->CheckEgress(a, 80, picket::config::Protocol::kTCP);
        (void)(*again)->CheckIngress(a, 53, picket::config::Protocol::kUDP);
        (void)(*again)->LookupPeer(a);
      }
      break;
    }
    case 1: {
      auto doc = picket::base::ParseJson(text);
      if (!doc) return 0;
      auto entry = picket::policy::DecodeAddressEntry(doc->root(), "fuzz");
      if (!entry) return 0;
      auto again = picket::policy::DecodeAddressEntry(EncodeAddressEntry(*entry), "fuzz");
      if (!again || !(*again == *entry)) std::abort();
      break;
    }
    default: {
      auto doc = picket::base::ParseJson(text);
      if (!doc) return 0;
      auto policy = picket::policy::DecodePodPolicy(doc->root(), "fuzz");
      if (!policy) return 0;
      auto again = picket::policy::DecodePodPolicy(EncodePodPolicy(*policy), "fuzz");
      if (!again || EncodePodPolicy(*again) != EncodePodPolicy(*policy)) std::abort();
      if (!(*again == *policy)) std::abort();
      const std::vector<IpAddress> host_ips = policy->host_ips;
      const bool isolated = policy->ingress.isolated;
      auto snapshot = picket::policy::BuildEndpointPolicy({}, std::move(*policy));
      if (!snapshot) return 0;
      for (const IpAddress& node : host_ips) {
        const picket::policy::Decision d =
            (*snapshot)->CheckIngress(node, 8080, picket::config::Protocol::kTCP);
        if (!d.allowed) std::abort();
        // Not isolated: allowed for that reason; isolated: because it is the pod's node.
        if (isolated && d.detail.find("own node " + node.ToString()) == std::string::npos)
          std::abort();
      }
      break;
    }
  }
  return 0;
}
