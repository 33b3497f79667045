// config/manifest_cidr.h — IP and CIDR fields validated exactly as the API server validates them.
//
// Owns: the API server's messages for IP and CIDR fields (IsValidIPForLegacyField,
// IsValidCIDRForLegacyField, including the optional StrictIPCIDRValidation checks) and
// NetworkPolicy's "except must be a strict subset of cidr" test with Go's net.IPNet semantics.
// The parsing itself is base/ip.h's (Go's "sloppy" parsers as forked by k8s.io/utils); its
// parse results are re-exported here for the validators. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"

namespace picket::config {

using base::IpBytes;
using base::ParseCidrSloppy;
using base::ParsedCidr;
using base::ParsedIp;
using base::ParseIpSloppy;

// The API server's messages for a CIDR field (IsValidCIDRForLegacyField); empty when valid.
[[nodiscard]] std::vector<std::string> CidrErrors(std::string_view text, bool strict);

// The API server's messages for an IP field (IsValidIPForLegacyField); empty when valid.
[[nodiscard]] std::vector<std::string> IpErrors(std::string_view text, bool strict);

// ValidateIPBlock's test: `cidr.Contains(except.IP) && cidrMaskLen < exceptMaskLen`, with Go's
// IPv4/IPv4-mapped folding (an IPv6 /0 does not contain IPv4 addresses; mask lengths compare
// as written, whatever the family).
[[nodiscard]] bool IsStrictSubset(const ParsedCidr& cidr, const ParsedCidr& except);

}  // namespace picket::config
