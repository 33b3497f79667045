// Tests proxy/packet_headers.h: IPv4 (with options) and IPv6 (with extension headers) around
// UDP, SCTP and TCP, and every bound: truncation at each layer, IHL, fragments, too many extension
// headers, other transports, and bytes past kMaxHeaderBytes never read.
#include "proxy/packet_headers.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

namespace picket::proxy {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Ipv4(uint8_t protocol, const Bytes& l4, const Bytes& options = {}) {
  Bytes p(20, 0);
  p[0] = static_cast<uint8_t>(0x40 | ((20 + options.size()) / 4));
  p[9] = protocol;
  const uint8_t src[] = {10, 1, 2, 3}, dst[] = {10, 4, 5, 6};
  std::copy(src, src + 4, p.begin() + 12);
  std::copy(dst, dst + 4, p.begin() + 16);
  p.insert(p.end(), options.begin(), options.end());
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}

Bytes Ipv6(uint8_t next, const Bytes& rest) {
  Bytes p(40, 0);
  p[0] = 0x60;
  p[6] = next;
  p[8] = 0xfd;
  p[23] = 1;  // fd00::1
  p[24] = 0xfd;
  p[39] = 2;  // fd00::2
  p.insert(p.end(), rest.begin(), rest.end());
  return p;
}

const Bytes kUdp = {0x9c, 0x40, 0x00, 0x35, 0, 9, 0, 0, 'q'};                 // 40000 → 53
const Bytes kSctpInit = {0x1f, 0x40, 0x1c, 0x84, 0, 0, 0, 0, 0, 0, 0, 0, 1};  // 8000 → 7300

base::Result<PacketFlow> Parse(const Bytes& p) { return ParsePacketFlow(std::span(p)); }

TEST(PacketHeaders, Ipv4UdpAndSctpWithOptions) {
  auto udp = Parse(Ipv4(17, kUdp));
  ASSERT_TRUE(udp.has_value()) << udp.error().ToString();
  EXPECT_EQ(udp->protocol, config::Protocol::kUDP);
  EXPECT_EQ(udp->source.ToString(), "10.1.2.3");
  EXPECT_EQ(udp->destination.ToString(), "10.4.5.6");
  EXPECT_EQ(udp->source_port, 40000);
  EXPECT_EQ(udp->destination_port, 53);
  auto sctp = Parse(Ipv4(132, kSctpInit, {1, 1, 1, 0}));
  ASSERT_TRUE(sctp.has_value()) << sctp.error().ToString();
  EXPECT_EQ(sctp->protocol, config::Protocol::kSCTP);
  EXPECT_EQ(sctp->source_port, 8000);
  EXPECT_EQ(sctp->destination_port, 7300);
  EXPECT_EQ(sctp->sctp_first_chunk, 1);
}

TEST(PacketHeaders, Ipv6ThroughExtensionHeaders) {
  auto udp = Parse(Ipv6(17, kUdp));
  ASSERT_TRUE(udp.has_value());
  EXPECT_EQ(udp->source.ToString(), "fd00::1");
  EXPECT_EQ(udp->destination.ToString(), "fd00::2");
  EXPECT_EQ(udp->destination_port, 53);
  // Hop-by-hop (8 bytes) → first fragment (offset 0, more) → SCTP.
  Bytes ext = {44, 0, 1, 4, 0, 0, 0, 0, 132, 0, 0x00, 0x01, 0, 0, 0, 7};
  ext.insert(ext.end(), kSctpInit.begin(), kSctpInit.end());
  auto sctp = Parse(Ipv6(0, ext));
  ASSERT_TRUE(sctp.has_value()) << sctp.error().ToString();
  EXPECT_EQ(sctp->protocol, config::Protocol::kSCTP);
  EXPECT_EQ(sctp->destination_port, 7300);
}

TEST(PacketHeaders, TcpSynOnBothFamilies) {
  Bytes syn(20, 0);
  syn[0] = 0xc3;  // 50000
  syn[1] = 0x50;
  syn[3] = 80;
  syn[12] = 0x50;  // data offset 5
  syn[13] = 0x02;  // SYN
  for (const Bytes& packet : {Ipv4(6, syn), Ipv6(6, syn)}) {
    auto tcp = Parse(packet);
    ASSERT_TRUE(tcp.has_value()) << tcp.error().ToString();
    EXPECT_EQ(tcp->protocol, config::Protocol::kTCP);
    EXPECT_EQ(tcp->source_port, 50000);
    EXPECT_EQ(tcp->destination_port, 80);
    EXPECT_EQ(tcp->sctp_first_chunk, -1);
  }
  EXPECT_FALSE(Parse(Ipv4(6, Bytes(syn.begin(), syn.begin() + 19))).has_value());
}

TEST(PacketHeaders, RejectsWhatCannotBeJudged) {
  EXPECT_FALSE(Parse({}).has_value());
  EXPECT_FALSE(Parse({0x50, 0, 0}).has_value());    // version 5
  EXPECT_FALSE(Parse(Ipv4(6, kUdp)).has_value());   // TCP: 9 bytes, its header is 20
  EXPECT_FALSE(Parse(Ipv4(1, kUdp)).has_value());   // ICMP
  EXPECT_FALSE(Parse(Ipv6(58, kUdp)).has_value());  // ICMPv6
  Bytes p = Ipv4(17, kUdp);
  for (size_t cut : {size_t{0}, size_t{19}, size_t{20}, size_t{27}}) {
    EXPECT_FALSE(Parse(Bytes(p.begin(), p.begin() + static_cast<long>(cut))).has_value()) << cut;
  }
  EXPECT_TRUE(Parse(Bytes(p.begin(), p.begin() + 28)).has_value());  // the UDP header is enough
  Bytes s = Ipv4(132, kSctpInit);
  EXPECT_FALSE(Parse(Bytes(s.begin(), s.begin() + 31)).has_value());  // SCTP common header: 12
  Bytes bad_ihl = p;
  bad_ihl[0] = 0x44;  // 16 bytes
  EXPECT_FALSE(Parse(bad_ihl).has_value());
  bad_ihl[0] = 0x4f;  // 60 bytes, more than the packet
  EXPECT_FALSE(Parse(bad_ihl).has_value());
  Bytes fragment = p;
  fragment[7] = 1;  // offset 8: not the first fragment, no ports
  EXPECT_FALSE(Parse(fragment).has_value());
  Bytes v6_fragment = {17, 0, 0x00, 0x08, 0, 0, 0, 7};
  EXPECT_FALSE(Parse(Ipv6(44, v6_fragment)).has_value());
  EXPECT_FALSE(Parse(Ipv6(17, {1, 2, 3})).has_value());
  EXPECT_FALSE(Parse(Ipv6(60, {17, 200})).has_value());  // extension header past the end
}

TEST(PacketHeaders, BoundsExtensionHeadersAndBytesRead) {
  Bytes chain;
  for (int i = 0; i < kMaxIpv6ExtensionHeaders; ++i)
    chain.insert(chain.end(), {60, 0, 0, 0, 0, 0, 0, 0});
  Bytes ok = chain;
  ok[ok.size() - 8] = 17;
  ok.insert(ok.end(), kUdp.begin(), kUdp.end());
  EXPECT_TRUE(Parse(Ipv6(60, ok)).has_value());
  Bytes too_many = chain;
  too_many.insert(too_many.end(), {17, 0, 0, 0, 0, 0, 0, 0});
  too_many.insert(too_many.end(), kUdp.begin(), kUdp.end());
  auto r = Parse(Ipv6(60, too_many));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().ToString().find("too many extension headers"), std::string::npos);
  // Headers that end past kMaxHeaderBytes are not read: the packet is judged unparseable.
  Bytes options(40, 1);
  Bytes big = Ipv4(17, Bytes(kMaxHeaderBytes, 0), options);
  EXPECT_TRUE(Parse(big).has_value());
  Bytes padded;
  for (int i = 0; i < 7; ++i) {
    Bytes h(64, 0);
    h[0] = i == 6 ? 17 : 60;
    h[1] = 7;  // (7 + 1) * 8 = 64 bytes
    padded.insert(padded.end(), h.begin(), h.end());
  }
  padded.insert(padded.end(), kUdp.begin(), kUdp.end());  // UDP at 40 + 448 = 488: within
  EXPECT_TRUE(Parse(Ipv6(60, padded)).has_value());
  Bytes beyond = padded;
  beyond.insert(beyond.begin() + 448, 32, 0);  // the last header grows by 32 bytes,
  beyond[6 * 64 + 1] = 11;                     // (11 + 1) * 8 = 96: UDP at 520, past 512
  EXPECT_FALSE(Parse(Ipv6(60, beyond)).has_value());
}

}  // namespace
}  // namespace picket::proxy
