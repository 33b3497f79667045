// proxy/packet_headers.cc — see packet_headers.h.
#include "proxy/packet_headers.h"

#include <string>

namespace picket::proxy {
namespace {

using base::Error;

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kHopByHop = 0;
constexpr uint8_t kRouting = 43;
constexpr uint8_t kFragment = 44;
constexpr uint8_t kDestinationOptions = 60;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

base::Result<PacketFlow> Transport(uint8_t protocol, std::span<const uint8_t> l4, PacketFlow flow) {
  if (protocol == kProtoUdp) {
    if (l4.size() < 8) return std::unexpected(Error::At("udp", "header truncated"));
    flow.protocol = config::Protocol::kUDP;
  } else if (protocol == kProtoSctp) {
    if (l4.size() < 12) return std::unexpected(Error::At("sctp", "common header truncated"));
    flow.protocol = config::Protocol::kSCTP;
    if (l4.size() >= 13) flow.sctp_first_chunk = l4[12];
  } else if (protocol == kProtoTcp) {
    if (l4.size() < 20) return std::unexpected(Error::At("tcp", "header truncated"));
    flow.protocol = config::Protocol::kTCP;
  } else {
    return std::unexpected(Error::At(
        "protocol", "transport " + std::to_string(protocol) + " is not UDP, SCTP or TCP"));
  }
  flow.source_port = Be16(l4.data());
  flow.destination_port = Be16(l4.data() + 2);
  return flow;
}

base::Result<PacketFlow> Ipv4(std::span<const uint8_t> p) {
  if (p.size() < 20) return std::unexpected(Error::At("ipv4", "header truncated"));
  const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  if (ihl < 20 || ihl > p.size()) return std::unexpected(Error::At("ipv4.ihl", "out of bounds"));
  const uint16_t fragment = Be16(p.data() + 6) & 0x1fff;
  if (fragment != 0) return std::unexpected(Error::At("ipv4", "not the first fragment"));
  PacketFlow flow;
  flow.source = base::IpAddress::V4(p.data() + 12);
  flow.destination = base::IpAddress::V4(p.data() + 16);
  auto r = Transport(p[9], p.subspan(ihl), flow);
  if (!r) return std::unexpected(std::move(r.error()).Under("ipv4"));
  return r;
}

base::Result<PacketFlow> Ipv6(std::span<const uint8_t> p) {
  if (p.size() < 40) return std::unexpected(Error::At("ipv6", "header truncated"));
  PacketFlow flow;
  flow.source = base::IpAddress::V6(p.data() + 8);
  flow.destination = base::IpAddress::V6(p.data() + 24);
  uint8_t next = p[6];
  size_t offset = 40;
  for (int i = 0;; ++i) {
    if (next != kHopByHop && next != kRouting && next != kFragment && next != kDestinationOptions) {
      break;
    }
    if (i == kMaxIpv6ExtensionHeaders) {
      return std::unexpected(Error::At("ipv6", "too many extension headers"));
    }
    if (offset + 8 > p.size()) {
      return std::unexpected(Error::At("ipv6.extension", "header truncated"));
    }
    const uint8_t* h = p.data() + offset;
    size_t length = (static_cast<size_t>(h[1]) + 1) * 8;
    if (next == kFragment) {
      length = 8;
      if ((Be16(h + 2) & 0xfff8) != 0) {
        return std::unexpected(Error::At("ipv6", "not the first fragment"));
      }
    }
    next = h[0];
    offset += length;
    if (offset > p.size()) return std::unexpected(Error::At("ipv6.extension", "out of bounds"));
  }
  auto r = Transport(next, p.subspan(offset), flow);
  if (!r) return std::unexpected(std::move(r.error()).Under("ipv6"));
  return r;
}

}  // namespace

base::Result<PacketFlow> ParsePacketFlow(std::span<const uint8_t> packet) {
  if (packet.size() > kMaxHeaderBytes) packet = packet.first(kMaxHeaderBytes);
  if (packet.empty()) return std::unexpected(Error::At("packet", "empty"));
  switch (packet[0] >> 4) {
    case 4:
      return Ipv4(packet);
    case 6:
      return Ipv6(packet);
    default:
      return std::unexpected(Error::At("packet", "not IPv4 or IPv6"));
  }
}

}  // namespace picket::proxy
