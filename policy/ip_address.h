// policy/ip_address.h — IPv4/IPv6 addresses and CIDR prefixes as small values.  [CONTRACT]
//
// Owns: parsing and formatting of addresses and prefixes (Kubernetes "sloppy" CIDR rules for
// ipBlock), containment tests. IPv4 is stored as-is (not IPv4-mapped). Plain values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace picket::policy {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses bytes[0..3]

  static std::optional<IpAddress> Parse(std::string_view text);
  static IpAddress V4(const uint8_t b[4]);
  static IpAddress V6(const uint8_t b[16]);
  std::string ToString() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

struct IpPrefix {
  IpAddress address;  // host bits cleared
  uint8_t length = 0;

  static std::optional<IpPrefix> Parse(std::string_view text);  // "10.0.0.0/8", "2001:db8::/64"
  bool Contains(const IpAddress& a) const;
  std::string ToString() const;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

}  // namespace picket::policy
