// policy/ip_address.h — IPv4/IPv6 addresses and CIDR prefixes as small values.  [CONTRACT]
//
// Owns: parsing and formatting of addresses and prefixes (Kubernetes "sloppy" CIDR rules for
// ipBlock: IPv4 octets may have leading zeros, host bits are cleared), containment tests, and a
// hash for address-keyed maps. IPv4 is stored as-is; an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) parses as the IPv4 address, as Go's net.IP does. Plain values, any thread.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
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
    // Two 64-bit words folded with a multiply-xorshift: a few cycles, unlike a per-byte hash.
    uint64_t lo, hi;
    std::memcpy(&lo, a.bytes.data(), 8);
    std::memcpy(&hi, a.bytes.data() + 8, 8);
    uint64_t h = (lo * 0x9e3779b97f4a7c15ull) ^ (hi + (a.v6 ? 0x632be59bd9b4e019ull : 0));
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

}  // namespace picket::policy
