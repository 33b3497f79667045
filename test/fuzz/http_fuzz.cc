// libFuzzer target for the HTTP/1.1 request parser (net/http_parser.h): bytes off the wire, fed
// whole and fed in fuzzer-chosen pieces, must yield the same requests and the same refusal.
// Every request handed out is well-formed (a token method, an origin-form path, field values
// without CR or LF, a body of the announced length within the limit). Small limits make the 413
// and 431 paths reachable. Build and run: test/fuzz/build_http.sh run http 60
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_parser.h"

namespace {

using picket::net::HttpParserLimits;
using picket::net::HttpRequest;
using picket::net::HttpRequestParser;

struct Outcome {
  std::vector<HttpRequest> requests;
  int error_status = 0;
};

void Check(bool ok) {
  if (!ok) abort();
}

void Drain(HttpRequestParser& parser, Outcome& out, const HttpParserLimits& limits) {
  while (out.error_status == 0) {
    auto r = parser.Next();
    Check(!(r.request && r.error));
    if (r.error) {
      Check(r.error->status >= 400 && r.error->status < 600);
      Check(parser.phase() == HttpRequestParser::Phase::kFailed);
      out.error_status = r.error->status;
      return;
    }
    if (!r.request) return;
    const HttpRequest& q = *r.request;
    Check(!q.method.empty() && q.method.find_first_of(" \r\n:") == std::string::npos);
    Check(!q.path.empty() && (q.path[0] == '/' || q.path == "*"));
    Check(q.body.size() <= limits.max_body_bytes);
    for (const auto& [name, value] : q.headers) {
      Check(!name.empty() && name.find_first_of("\r\n: ") == std::string::npos);
      Check(value.find_first_of("\r\n") == std::string::npos);
    }
    out.requests.push_back(*r.request);
  }
}

Outcome Parse(std::string_view input, size_t step, const HttpParserLimits& limits) {
  HttpRequestParser parser(limits);
  Outcome out;
  for (size_t i = 0; i < input.size() && out.error_status == 0; i += step) {
    parser.Feed(input.substr(i, step));
    Drain(parser, out, limits);
  }
  return out;
}

bool Same(const HttpRequest& a, const HttpRequest& b) {
  return a.method == b.method && a.path == b.path && a.query == b.query &&
         a.version_minor == b.version_minor && a.headers == b.headers && a.body == b.body &&
         a.keep_alive == b.keep_alive;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t step = 1 + data[0] % 16;
  const HttpParserLimits limits{.max_header_bytes = 512, .max_body_bytes = 256};
  const Outcome whole = Parse(input, input.size() + 1, limits);
  const Outcome pieces = Parse(input, step, limits);
  // A refusal may come earlier in pieces (a head past the bound before its end arrives) but
  // never differs otherwise: the requests before it and the status agree.
  if (whole.error_status == 0 && pieces.error_status == 0) {
    Check(whole.requests.size() == pieces.requests.size());
  }
  const size_t common = std::min(whole.requests.size(), pieces.requests.size());
  for (size_t i = 0; i < common; ++i) Check(Same(whole.requests[i], pieces.requests[i]));
  if (whole.error_status != 0 && pieces.error_status != 0 &&
      whole.requests.size() == pieces.requests.size()) {
    Check(whole.error_status == pieces.error_status);
  }
  return 0;
}
