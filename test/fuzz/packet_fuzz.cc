// libFuzzer target for the verdict queue's packet parser (proxy/packet_headers.h): any bytes
// give a flow or an error, never a read past the input or past kMaxHeaderBytes; a flow is UDP or
// SCTP with addresses of the packet's family. Build and run: test/fuzz/build_packet.sh run packet
// 60
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "proxy/packet_headers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so ASan sees any read past the end.
  std::vector<uint8_t> packet(data, data + size);
  auto flow = picket::proxy::ParsePacketFlow(std::span<const uint8_t>(packet));
  if (!flow) return 0;
  if (flow->protocol != picket::config::Protocol::kUDP &&
      flow->protocol != picket::config::Protocol::kSCTP) {
    abort();
  }
  const bool v6 = (packet[0] >> 4) == 6;
  if (flow->source.v6 != v6 || flow->destination.v6 != v6) abort();
  // The same bytes past kMaxHeaderBytes never change the answer.
  if (size > picket::proxy::kMaxHeaderBytes) {
    std::vector<uint8_t> head(packet.begin(), packet.begin() + picket::proxy::kMaxHeaderBytes);
    auto again = picket::proxy::ParsePacketFlow(std::span<const uint8_t>(head));
    if (!again || again->destination_port != flow->destination_port) abort();
  }
  return 0;
}
