// control/admin_client.h — one plain-HTTP GET to a control server's admin endpoint, blocking.
//
// Owns: `AdminGet`, the client side of control/serve_admin.h for `picket-control status`. The
// admin endpoint is plain HTTP/1.1 (no TLS) and answers one request per connection, so this is a
// socket, one request and a read to the end, with the response framed by the project's one HTTP
// response parser (net/http_parser.h). net/http_client is HTTPS-only and loop-driven; a
// one-shot command line tool needs neither, so this stays this small on purpose.
//
// Bounds: the whole exchange (resolve, connect, send, receive) within `timeout_ms`; the body at
// most `max_body_bytes`. Errors name the address and what failed. Any thread; blocks.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace picket::control {

struct AdminResponse {
  int status = 0;
  std::string body;
};

[[nodiscard]] base::Result<AdminResponse> AdminGet(const std::string& host, uint16_t port,
                                                   const std::string& path,
                                                   uint64_t timeout_ms = 5000,
                                                   size_t max_body_bytes = 64u << 20);

}  // namespace picket::control
