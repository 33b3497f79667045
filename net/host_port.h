// net/host_port.h — "host:port" / "[v6]:port" text, as flags and bootstrap files write it.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace picket::net {

// Splits "host:port" or "[v6]:port". `allow_zero_port` accepts port 0 (listen on any port).
[[nodiscard]] std::expected<std::pair<std::string, uint16_t>, std::string> SplitHostPort(
    std::string_view address, bool allow_zero_port = false);

}  // namespace picket::net
