// config/manifest_cidr.cc — see manifest_cidr.h.
#include "config/manifest_cidr.h"

namespace picket::config {
namespace {

using base::IsV4Mapped;

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
  base::ClearHostBits(&masked, cidr.dotted ? 96 + cidr.prefix : cidr.prefix);
  if (masked != cidr.network) return false;
  return cidr.prefix < except.prefix;
}

}  // namespace picket::config
