// config/manifest_cidr.cc — see manifest_cidr.h. Ports Go 1.16's net parsers (the version
// k8s.io/utils forked) line by line, so edge cases (leading zeros, `::ffff:1.2.3.4`, `/024`)
// behave as on a real API server.
#include "config/manifest_cidr.h"

namespace picket::config {
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

// Go's IP.To4() != nil.
bool IsV4Mapped(const IpBytes& ip) {
  for (int i = 0; i < 10; ++i) {
    if (ip[i] != 0) return false;
  }
  return ip[10] == 0xff && ip[11] == 0xff;
}

void Mask(IpBytes* ip, int bits16) {
  for (int i = 0; i < 16; ++i) {
    int keep = bits16 - 8 * i;
    if (keep >= 8) continue;
    (*ip)[i] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
}

// What netip.ParseAddr rejects but the sloppy parser accepts: a decimal octet with a leading
// zero ("010") or a hex group longer than four digits ("00001").
bool HasLeadingZeros(std::string_view addr) {
  size_t colon = addr.rfind(':');
  std::string_view hex =
      colon == std::string_view::npos ? std::string_view() : addr.substr(0, colon);
  std::string_view dec = colon == std::string_view::npos ? addr : addr.substr(colon + 1);
  if (dec.find('.') == std::string_view::npos) {
    hex = addr;  // pure IPv6: every group is hex
    dec = {};
  }
  auto any_part = [](std::string_view s, char sep, auto bad) {
    while (!s.empty()) {
      size_t end = s.find(sep);
      if (bad(s.substr(0, end))) return true;
      if (end == std::string_view::npos) break;
      s.remove_prefix(end + 1);
    }
    return false;
  };
  return any_part(hex, ':', [](std::string_view p) { return p.size() > 4; }) ||
         any_part(dec, '.', [](std::string_view p) { return p.size() > 1 && p[0] == '0'; });
}

}  // namespace

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
  Mask(&out.network, out.dotted ? 96 + n : n);
  return out;
}

std::vector<std::string> CidrErrors(std::string_view text, bool strict) {
  std::optional<ParsedCidr> cidr = ParseCidrSloppy(text);
  if (!cidr) return {"must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"};
  if (!strict) return {};
  size_t slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  std::string_view bits = text.substr(slash + 1);
  if (HasLeadingZeros(addr) || (bits.size() > 1 && bits[0] == '0')) {
    return {"must not have leading 0s in IP or prefix length"};
  }
  std::optional<ParsedIp> ip = ParseIpSloppy(addr);
  if (ip && !ip->dotted && IsV4Mapped(ip->bytes)) {
    return {"must not have an IPv4-mapped IPv6 address"};
  }
  if (ip && ip->bytes != cidr->network) return {"must not have bits set beyond the prefix length"};
  return {};
}

std::vector<std::string> IpErrors(std::string_view text, bool strict) {
  std::optional<ParsedIp> ip = ParseIpSloppy(text);
  if (!ip) return {"must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"};
  std::vector<std::string> errs;
  if (!strict) return errs;
  if (HasLeadingZeros(text)) errs.push_back("must not have leading 0s");
  if (!ip->dotted && IsV4Mapped(ip->bytes)) {
    errs.push_back("must not be an IPv4-mapped IPv6 address");
  }
  return errs;
}

bool IsStrictSubset(const ParsedCidr& cidr, const ParsedCidr& except) {
  // net.IPNet.Contains: both sides fold to 4 bytes when IPv4-mapped; lengths must then agree.
  if (IsV4Mapped(cidr.network) != IsV4Mapped(except.network)) return false;
  IpBytes masked = except.network;
  Mask(&masked, cidr.dotted ? 96 + cidr.prefix : cidr.prefix);
  if (masked != cidr.network) return false;
  return cidr.prefix < except.prefix;
}

}  // namespace picket::config
