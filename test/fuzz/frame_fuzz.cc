// libFuzzer target for the control protocol's receive path: bytes off the wire → FrameDecoder
// (split at a fuzzer-chosen point, as a network would) → strict JSON → DecodeMessage. Whatever
// the input, each step returns a value or an error; a decoded message re-encodes and decodes to
// itself. Build and run: test/fuzz/build_xds.sh run frame 180
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/frame.h"
#include "net/xds_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = input.empty() ? 0 : data[0] % (input.size() + 1);

  picket::net::FrameDecoder decoder(1 << 16);
  decoder.Feed(input.substr(0, split));
  for (int pass = 0; pass < 2; ++pass) {
    while (true) {
      auto frame = decoder.Next();
      if (!frame || !frame->has_value()) break;
      auto message = picket::net::DecodeMessage(**frame);
      if (!message) continue;
      // Payloads are spliced back from the frame's own document, without re-parsing.
      const std::string again = picket::net::EncodeMessage(*message);
      auto round_trip = picket::net::DecodeMessage(again);
      if (!round_trip || !(*round_trip == *message)) abort();
      if (picket::net::EncodeMessage(*round_trip) != again) abort();
    }
    decoder.Feed(input.substr(split));
  }
  // The bare body path too: the input as one frame body.
  (void)picket::net::DecodeMessage(input);
  return 0;
}
