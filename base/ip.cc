// base/ip.cc — see ip.h. The sloppy parsers port Go 1.16's net parsers (the version
// k8s.io/utils forked) line by line, so edge cases (leading zeros, `::ffff:1.2.3.4`, `/024`)
// behave as on a real API server.
#include "base/ip.h"

#include <arpa/inet.h>

namespace picket::base {
namespace {

constexpr int kBig = 0xFFFFFF;

// Go's dtoi: decimal digits at the front of s; false when none or too big.
bool Dtoi(std::string_view s, int* n, size_t* used) {
  int v = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    v = v * 10 + (s[i] - '0');
    if (v >= kBig) return false;
  }
  if (i == 0) return false;
  *n = v;
  *used = i;
  return true;
}

// Go's xtoi: hex digits at the front of s.
bool Xtoi(std::string_view s, int* n, size_t* used) {
  int v = 0;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      v = v * 16 + (c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v = v * 16 + (c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v = v * 16 + (c - 'A' + 10);
    } else {
      break;
    }
    if (v >= kBig) return false;
  }
  if (i == 0) return false;
  *n = v;
  *used = i;
  return true;
}

std::optional<IpBytes> ParseIpv4(std::string_view s) {
  IpBytes ip{};
  ip[10] = 0xff;
  ip[11] = 0xff;
  for (int i = 0; i < 4; ++i) {
    if (s.empty()) return std::nullopt;
    if (i > 0) {
      if (s[0] != '.') return std::nullopt;
      s.remove_prefix(1);
    }
    int n = 0;
    size_t used = 0;
    if (!Dtoi(s, &n, &used) || n > 0xFF) return std::nullopt;
    s.remove_prefix(used);
    ip[12 + i] = static_cast<uint8_t>(n);
  }
  if (!s.empty()) return std::nullopt;
  return ip;
}

std::optional<IpBytes> ParseIpv6(std::string_view s) {
  IpBytes ip{};
  int ellipsis = -1;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    ellipsis = 0;
    s.remove_prefix(2);
    if (s.empty()) return ip;
  }
  int i = 0;
  while (i < 16) {
    int n = 0;
    size_t c = 0;
    if (!Xtoi(s, &n, &c) || n > 0xFFFF) return std::nullopt;
    if (c < s.size() && s[c] == '.') {
      if (ellipsis < 0 && i != 12) return std::nullopt;
      if (i + 4 > 16) return std::nullopt;
      std::optional<IpBytes> ip4 = ParseIpv4(s);
      if (!ip4) return std::nullopt;
      for (int k = 0; k < 4; ++k) ip[i + k] = (*ip4)[12 + k];
      s = {};
      i += 4;
      break;
    }
    ip[i] = static_cast<uint8_t>(n >> 8);
    ip[i + 1] = static_cast<uint8_t>(n);
    i += 2;
    s.remove_prefix(c);
    if (s.empty()) break;
    if (s[0] != ':' || s.size() == 1) return std::nullopt;
    s.remove_prefix(1);
    if (s[0] == ':') {
      if (ellipsis >= 0) return std::nullopt;
      ellipsis = i;
      s.remove_prefix(1);
      if (s.empty()) break;
    }
  }
  if (!s.empty()) return std::nullopt;
  if (i < 16) {
    if (ellipsis < 0) return std::nullopt;
    int n = 16 - i;
    for (int j = i - 1; j >= ellipsis; --j) ip[j + n] = ip[j];
    for (int j = ellipsis + n - 1; j >= ellipsis; --j) ip[j] = 0;
  } else if (ellipsis >= 0) {
    return std::nullopt;  // the ellipsis must stand for at least one group
  }
  return ip;
}

}  // namespace

bool IsV4Mapped(const IpBytes& ip) {
  for (int i = 0; i < 10; ++i) {
    if (ip[i] != 0) return false;
  }
  return ip[10] == 0xff && ip[11] == 0xff;
}

void ClearHostBits(IpBytes* ip, int bits) {
  for (int i = 0; i < 16; ++i) {
    int keep = bits - 8 * i;
    if (keep >= 8) continue;
    (*ip)[i] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
}

std::optional<ParsedIp> ParseIpSloppy(std::string_view text) {
  for (char c : text) {
    if (c == '.') {
      std::optional<IpBytes> ip = ParseIpv4(text);
      if (!ip) return std::nullopt;
      return ParsedIp{*ip, true};
    }
    if (c == ':') {
      std::optional<IpBytes> ip = ParseIpv6(text);
      if (!ip) return std::nullopt;
      return ParsedIp{*ip, false};
    }
  }
  return std::nullopt;
}

std::optional<ParsedCidr> ParseCidrSloppy(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view addr = text.substr(0, slash);
  std::string_view mask = text.substr(slash + 1);
  ParsedCidr out;
  int bits_max = 32;
  std::optional<IpBytes> ip = ParseIpv4(addr);
  out.dotted = ip.has_value();
  if (!ip) {
    bits_max = 128;
    ip = ParseIpv6(addr);
  }
  int n = 0;
  size_t used = 0;
  if (!ip || !Dtoi(mask, &n, &used) || used != mask.size() || n > bits_max) return std::nullopt;
  out.network = *ip;
  out.prefix = n;
  ClearHostBits(&out.network, out.dotted ? 96 + n : n);
  return out;
}

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  std::optional<ParsedIp> ip = ParseIpSloppy(text);
  if (!ip) return std::nullopt;
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address, as Go's net.IP treats it.
  if (IsV4Mapped(ip->bytes)) return V4(ip->bytes.data() + 12);
  return V6(ip->bytes.data());
}

std::optional<IpAddress> IpAddress::ParseStrict(std::string_view text) {
  const std::string z(text);  // inet_pton wants a terminated string
  uint8_t buf[16];
  if (inet_pton(AF_INET, z.c_str(), buf) == 1) return V4(buf);
  if (inet_pton(AF_INET6, z.c_str(), buf) == 1) return V6(buf);
  return std::nullopt;
}

bool IpAddress::IsLoopback() const {
  if (!v6) return bytes[0] == 127;
  IpBytes b;
  std::memcpy(b.data(), bytes.data(), 16);
  if (IsV4Mapped(b)) return bytes[12] == 127;
  static constexpr std::array<uint8_t, 16> kLoop = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return bytes == kLoop;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

std::optional<IpPrefix> IpPrefix::Parse(std::string_view text) {
  std::optional<ParsedCidr> cidr = ParseCidrSloppy(text);
  if (!cidr) return std::nullopt;
  IpPrefix prefix;
  // net.IPNet.Contains folds a network that is IPv4-mapped (after masking) to IPv4 and drops
  // the mask's first 96 bits: "::ffff:10.0.0.0/104" is 10.0.0.0/8, while "::ffff:0:0/80"
  // (the mask cleared the ffff) stays an IPv6 prefix that contains no IPv4 address.
  if (IsV4Mapped(cidr->network)) {
    prefix.address = IpAddress::V4(cidr->network.data() + 12);
    prefix.length = static_cast<uint8_t>(cidr->dotted ? cidr->prefix : cidr->prefix - 96);
  } else {
    prefix.address = IpAddress::V6(cidr->network.data());
    prefix.length = static_cast<uint8_t>(cidr->prefix);
  }
  return prefix;
}

std::string IpPrefix::ToString() const { return address.ToString() + "/" + std::to_string(length); }

}  // namespace picket::base
