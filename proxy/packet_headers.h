// proxy/packet_headers.h — the network and transport headers of one queued packet.
//
// Owns: `PacketFlow` (family, protocol, addresses and ports of a packet's flow) and
// ParsePacketFlow, the one parser of packets the kernel hands the verdict queue
// (proxy/nfqueue_listener.h). Input is untrusted and bounded: at most `kMaxHeaderBytes` are
// read, IPv4 options are skipped by IHL (checked against the packet), IPv6 extension headers
// (hop-by-hop, routing, destination options, fragment) are walked at most
// `kMaxIpv6ExtensionHeaders` deep; a non-first fragment, a truncated header, or a transport
// that is not UDP, SCTP or TCP is an error (the caller drops: fail closed). RFC 791, RFC 8200
// section 4, RFC 768, RFC 9260 section 3.1 (the SCTP common header), RFC 9293 section 3.1 (TCP;
// verdict mode queues each new TCP flow's first packet).
//
// Pure functions; any thread. Fuzzed by test/fuzz/packet_fuzz.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/error.h"
#include "base/ip.h"
#include "config/model.h"

namespace picket::proxy {

inline constexpr size_t kMaxHeaderBytes = 512;
inline constexpr int kMaxIpv6ExtensionHeaders = 8;

struct PacketFlow {
  config::Protocol protocol = config::Protocol::kUDP;  // kUDP, kSCTP or kTCP
  base::IpAddress source;
  base::IpAddress destination;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  // SCTP: the type of the first chunk (1 = INIT), when present; else -1.
  int sctp_first_chunk = -1;
};

// Parses an IP packet (version from the first nibble). Reads at most kMaxHeaderBytes.
[[nodiscard]] base::Result<PacketFlow> ParsePacketFlow(std::span<const uint8_t> packet);

}  // namespace picket::proxy
