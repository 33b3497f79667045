// config/manifest_cidr.h — IP and CIDR parsing exactly as the API server validates them.
//
// Owns: Go's "sloppy" parsers (k8s.io/utils/net ParseIPSloppy / ParseCIDRSloppy: leading zeros,
// IPv4-mapped IPv6 and host bits are accepted), the optional StrictIPCIDRValidation checks, and
// NetworkPolicy's "except must be a strict subset of cidr" test with Go's net.IPNet semantics.
// //policy has its own address types; config cannot depend on //policy (layering), so this is a
// small validation-only copy. Pure functions; callable from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace picket::config {

// 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), as Go's net.IP does.
using IpBytes = std::array<uint8_t, 16>;

struct ParsedIp {
  IpBytes bytes{};
  bool dotted = false;  // written as IPv4 (not IPv6, even IPv4-mapped IPv6)
};

struct ParsedCidr {
  IpBytes network{};    // host bits cleared
  int prefix = 0;       // as written: 0..32 for IPv4 text, 0..128 for IPv6 text
  bool dotted = false;  // the address part was IPv4 text
};

// net.ParseIP as forked by k8s.io/utils (leading zeros allowed in IPv4 octets).
[[nodiscard]] std::optional<ParsedIp> ParseIpSloppy(std::string_view text);

// net.ParseCIDR as forked by k8s.io/utils.
[[nodiscard]] std::optional<ParsedCidr> ParseCidrSloppy(std::string_view text);

// The API server's messages for a CIDR field (IsValidCIDRForLegacyField); empty when valid.
[[nodiscard]] std::vector<std::string> CidrErrors(std::string_view text, bool strict);

// The API server's messages for an IP field (IsValidIPForLegacyField); empty when valid.
[[nodiscard]] std::vector<std::string> IpErrors(std::string_view text, bool strict);

// ValidateIPBlock's test: `cidr.Contains(except.IP) && cidrMaskLen < exceptMaskLen`, with Go's
// IPv4/IPv4-mapped folding (an IPv6 /0 does not contain IPv4 addresses; mask lengths compare
// as written, whatever the family).
[[nodiscard]] bool IsStrictSubset(const ParsedCidr& cidr, const ParsedCidr& except);

}  // namespace picket::config
