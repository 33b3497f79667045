// net/host_port.cc — see host_port.h.
#include "net/host_port.h"

namespace picket::net {

std::expected<std::pair<std::string, uint16_t>, std::string> SplitHostPort(std::string_view address,
                                                                           bool allow_zero_port) {
  std::string_view host, port;
  if (address.starts_with('[')) {
    const size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return std::unexpected("\"" + std::string(address) + "\": expected [ipv6]:port");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return std::unexpected("\"" + std::string(address) + "\": expected host:port");
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return std::unexpected("\"" + std::string(address) + "\": write IPv6 as [addr]:port");
    }
  }
  int value = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || value > 65535) {
      return std::unexpected("\"" + std::string(address) + "\": invalid port");
    }
    value = value * 10 + (c - '0');
  }
  if (port.empty() || (value == 0 && !allow_zero_port) || value > 65535) {
    return std::unexpected("\"" + std::string(address) + "\": port must be 1..65535");
  }
  return std::make_pair(std::string(host), static_cast<uint16_t>(value));
}

}  // namespace picket::net
