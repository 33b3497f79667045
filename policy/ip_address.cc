// policy/ip_address.cc — address and prefix parsing with Kubernetes' "sloppy" rules.
#include "policy/ip_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace picket::policy {
namespace {

// Go's legacy ParseIPSloppy: IPv4 octets may carry leading zeros and are read as decimal
// ("010" is 10), unlike glibc's inet_pton which rejects them.
std::optional<IpAddress> ParseV4Sloppy(std::string_view text) {
  uint8_t b[4];
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != '.') return std::nullopt;
      ++pos;
    }
    size_t start = pos;
    unsigned value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < 3) {
      value = value * 10 + static_cast<unsigned>(text[pos] - '0');
      ++pos;
    }
    if (pos == start || value > 255) return std::nullopt;
    b[i] = static_cast<uint8_t>(value);
  }
  if (pos != text.size()) return std::nullopt;
  return IpAddress::V4(b);
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.find(':') == std::string_view::npos) return ParseV4Sloppy(text);
  if (text.size() >= INET6_ADDRSTRLEN + 8) return std::nullopt;
  char buf[INET6_ADDRSTRLEN + 8];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  uint8_t b[16];
  if (inet_pton(AF_INET6, buf, b) != 1) return std::nullopt;
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address, as Go's net.IP treats it.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, kMapped, 12) == 0) return V4(b + 12);
  return V6(b);
}

IpAddress IpAddress::V4(const uint8_t b[4]) {
  IpAddress a;
  std::memcpy(a.bytes.data(), b, 4);
  return a;
}

IpAddress IpAddress::V6(const uint8_t b[16]) {
  IpAddress a;
  a.v6 = true;
  std::memcpy(a.bytes.data(), b, 16);
  return a;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

std::optional<IpPrefix> IpPrefix::Parse(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::optional<IpAddress> address = IpAddress::Parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  std::string_view len_text = text.substr(slash + 1);
  if (len_text.empty() || len_text.size() > 3) return std::nullopt;
  unsigned length = 0;
  auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), length);
  if (ec != std::errc() || end != len_text.data() + len_text.size()) return std::nullopt;
  bool mapped = !address->v6 && text.substr(0, slash).find(':') != std::string_view::npos;
  if (mapped) {
    // "::ffff:10.0.0.0/104" is the IPv4 prefix 10.0.0.0/8.
    if (length < 96 || length > 128) return std::nullopt;
    length -= 96;
  }
  unsigned max = address->v6 ? 128 : 32;
  if (length > max) return std::nullopt;
  IpPrefix prefix;
  prefix.address = *address;
  prefix.length = static_cast<uint8_t>(length);
  // Sloppy parsing keeps the network: host bits are cleared ("10.0.0.5/24" is 10.0.0.0/24).
  for (unsigned i = 0; i < 16; ++i) {
    unsigned bit = i * 8;
    if (bit >= length) {
      prefix.address.bytes[i] = 0;
    } else if (bit + 8 > length) {
      prefix.address.bytes[i] &= static_cast<uint8_t>(0xff << (8 - (length - bit)));
    }
  }
  return prefix;
}

bool IpPrefix::Contains(const IpAddress& a) const {
  if (a.v6 != address.v6) return false;
  unsigned full = length / 8;
  if (std::memcmp(a.bytes.data(), address.bytes.data(), full) != 0) return false;
  unsigned rest = length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == address.bytes[full];
}

bool IpPrefix::Contains(const IpPrefix& p) const {
  return p.length >= length && Contains(p.address);
}

std::string IpPrefix::ToString() const { return address.ToString() + "/" + std::to_string(length); }

}  // namespace picket::policy
