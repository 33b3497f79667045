// libFuzzer target for the HTTP/1.1 response parser (net/http_parser.h, HttpResponseParser):
// bytes from a server, fed whole and fed in fuzzer-chosen pieces, must yield the same statuses and
// bodies (or a refusal, possibly earlier in pieces), never a crash. Small limits make the header,
// chunk-line and trailer bounds reachable.
// Build and run: test/fuzz/build_http.sh run http_response 60
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_parser.h"

namespace {

using picket::net::HttpResponseLimits;
using picket::net::HttpResponseParser;
using Type = HttpResponseParser::Event::Type;

struct Outcome {
  std::vector<int> statuses;
  std::vector<std::string> bodies;
  bool failed = false;
};

void Check(bool ok) {
  if (!ok) abort();
}

Outcome Parse(std::string_view input, size_t step, bool head_request) {
  const HttpResponseLimits limits{.max_header_bytes = 256, .max_chunk_line_bytes = 16};
  HttpResponseParser parser(limits);
  parser.Begin(head_request);
  Outcome out;
  auto drain = [&](HttpResponseParser::Event e) {
    for (int guard = 0; guard < 100000; ++guard) {
      switch (e.type) {
        case Type::kNeedMore:
          return;
        case Type::kError:
          Check(!e.error.empty() && parser.failed());
          out.failed = true;
          return;
        case Type::kHead:
          Check(parser.head().status >= 200 && parser.head().status <= 999);
          out.statuses.push_back(parser.head().status);
          out.bodies.emplace_back();
          break;
        case Type::kData:
          Check(!e.data.empty() && !out.bodies.empty());
          out.bodies.back().append(e.data);
          break;
        case Type::kDone:
          parser.Begin(head_request);
          if (parser.buffered_bytes() == 0) return;
          break;
      }
      e = parser.Next();
    }
    abort();  // an event loop that never ends
  };
  for (size_t i = 0; i < input.size() && !out.failed; i += step) {
    parser.Feed(input.substr(i, step));
    drain(parser.Next());
  }
  if (!out.failed) drain(parser.Eof());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t step = 1 + data[0] % 16;
  const bool head_request = (data[0] & 0x80) != 0;
  const Outcome whole = Parse(input, input.size() + 1, head_request);
  const Outcome pieces = Parse(input, step, head_request);
  if (!whole.failed && !pieces.failed) {
    Check(whole.statuses == pieces.statuses);
    Check(whole.bodies == pieces.bodies);
  }
  const size_t common = std::min(whole.statuses.size(), pieces.statuses.size());
  for (size_t i = 0; i + 1 < common; ++i) Check(whole.bodies[i] == pieces.bodies[i]);
  return 0;
}
