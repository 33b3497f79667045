// policy/ip_address.h — IPv4/IPv6 addresses and CIDR prefixes as small values.  [CONTRACT]
//
// Owns: parsing and formatting of addresses and prefixes (Kubernetes "sloppy" CIDR rules for
// ipBlock: IPv4 octets may have leading zeros, host bits are cleared), containment tests, and a
// hash for address-keyed maps. IPv4 is stored as-is; an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) parses as the IPv4 address, as Go's net.IP does. Plain values, any thread.
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
  bool Contains(const IpPrefix& p) const;  // p is equal to or inside this prefix
  std::string ToString() const;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

struct IpAddressHash {
  size_t operator()(const IpAddress& a) const noexcept {
    // FNV-1a over the significant bytes: cheap and good enough for pod CIDR addresses.
    uint64_t h = a.v6 ? 0xcbf29ce484222325ull ^ 0x6b : 0xcbf29ce484222325ull;
    const size_t n = a.v6 ? 16 : 4;
    for (size_t i = 0; i < n; ++i) h = (h ^ a.bytes[i]) * 0x100000001b3ull;
    return static_cast<size_t>(h);
  }
};

}  // namespace picket::policy
