// base/ip.h — the one IP address and CIDR utility.  [CONTRACT]
//
// Owns: parsing IP addresses and CIDR prefixes exactly as Kubernetes reads them (Go 1.16's net
// parsers as forked by k8s.io/utils/net: ParseIPSloppy / ParseCIDRSloppy — IPv4 octets may have
// leading zeros and are decimal, IPv4-mapped IPv6 is accepted, host bits are cleared), and the
// small values the rest of Picket computes with: `IpAddress`, `IpPrefix` (containment), and
// `IpAddressHash`. The Kubernetes API server's validation messages built on these parsers
// (strict mode, `except` subset rules) live in config/manifest_cidr.h; this file only parses.
//
// Two layers:
// - `ParseIpSloppy` / `ParseCidrSloppy` keep what was written (IPv4 text or IPv6 text, the
//   prefix length as written) — validation needs that;
// - `IpAddress::Parse` / `IpPrefix::Parse` fold to what the address means, as Go's net.IP and
//   net.IPNet.Contains do: an IPv4-mapped IPv6 address is the IPv4 address, and a prefix whose
//   network is IPv4-mapped (`::ffff:10.0.0.0/104`) is the IPv4 prefix (`10.0.0.0/8`).
//
// Depends on nothing of ours. Plain values and pure functions; any thread. `Contains` and
// `IpAddressHash` are on the sidecar's per-connection lookup path: they stay inline.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace picket::base {

// 16 bytes, IPv4 stored IPv4-mapped (::ffff:a.b.c.d) as Go's net.IP does.
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
// net.ParseCIDR as forked by k8s.io/utils ("10.0.0.5/024" is 10.0.0.0/24).
[[nodiscard]] std::optional<ParsedCidr> ParseCidrSloppy(std::string_view text);
// Go's IP.To4() != nil: ::ffff:a.b.c.d.
[[nodiscard]] bool IsV4Mapped(const IpBytes& ip);
// Clears every bit of `ip` past the first `bits` (0..128).
void ClearHostBits(IpBytes* ip, int bits);

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses bytes[0..3]

  // ParseIpSloppy, folded: an IPv4-mapped IPv6 address is the IPv4 address.
  static std::optional<IpAddress> Parse(std::string_view text);
  // A literal exactly as inet_pton(3) reads it (no leading zeros, no zone, not folded): what our
  // own configuration fields accept (bootstrap addresses, flags), where sloppiness helps nobody.
  static std::optional<IpAddress> ParseStrict(std::string_view text);
  // 127.0.0.0/8, ::1, and the IPv4-mapped form of 127.0.0.0/8.
  bool IsLoopback() const;
  static IpAddress V4(const uint8_t b[4]) {
    IpAddress a;
    std::memcpy(a.bytes.data(), b, 4);
    return a;
  }
  static IpAddress V6(const uint8_t b[16]) {
    IpAddress a;
    a.v6 = true;
    std::memcpy(a.bytes.data(), b, 16);
    return a;
  }
  std::string ToString() const;  // "10.1.2.3", "2001:db8::1"
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

struct IpPrefix {
  IpAddress address;  // host bits cleared
  uint8_t length = 0;

  // ParseCidrSloppy, folded: a network that is IPv4-mapped is the IPv4 prefix (length - 96).
  static std::optional<IpPrefix> Parse(std::string_view text);  // "10.0.0.0/8", "2001:db8::/64"
  bool Contains(const IpAddress& a) const {
    if (a.v6 != address.v6) return false;
    const unsigned full = length / 8;
    if (std::memcmp(a.bytes.data(), address.bytes.data(), full) != 0) return false;
    const unsigned rest = length % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (a.bytes[full] & mask) == address.bytes[full];
  }
  // `p` is equal to or inside this prefix.
  bool Contains(const IpPrefix& p) const { return p.length >= length && Contains(p.address); }
  std::string ToString() const;  // "10.0.0.0/8"
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

}  // namespace picket::base
