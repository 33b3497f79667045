// filters/filter.h — the one narrow interface every network filter implements.
//
// Owns: `ConnectionInfo` (what a filter may know about a new connection), `FilterResult` (what
// it may answer) and `Filter`. A filter never touches a socket: the proxy accepts, builds an
// immutable ConnectionInfo, runs the chain (filters/chain.h) before any byte flows and before any
// upstream connect, and acts on the result (relay, or reset with the typed reason).
//
// Threads: a Filter is built once per worker loop and called only on that loop's thread; the
// const config objects filters hold may be shared by all workers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/model.h"
#include "filters/close_reason.h"
#include "policy/ip_address.h"

namespace picket::filters {

// Traffic direction from the pod's point of view.
enum class Direction : uint8_t { kInbound, kOutbound };

constexpr const char* DirectionName(Direction d) {
  return d == Direction::kInbound ? "inbound" : "outbound";
}

struct Endpoint {
  policy::IpAddress address;
  uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// A Service address (ClusterIP:port) an outbound connection was sent to.
struct ServiceAddress {
  std::string name;  // "ns/name"
  Endpoint address;  // the ClusterIP and the Service port
};

// Immutable facts about one accepted connection.
struct ConnectionInfo {
  Direction direction = Direction::kOutbound;
  Endpoint source;  // the downstream peer
  // From SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST — except for egress to a Service address, where
  // the proxy has already replaced it with the backend it picked (`service` says which Service):
  // policy is always decided against, and the upstream connect goes to, this endpoint.
  Endpoint original_destination;
  std::shared_ptr<const ServiceAddress> service;  // null unless sent to a Service address
  config::Protocol protocol = config::Protocol::kTCP;
};

struct FilterResult {
  enum class Action : uint8_t {
    kContinue,  // this filter has no objection; run the next one
    kDeny,      // reset the connection with `reason`
    kPause,     // the filter needs more than ConnectionInfo (e.g. first bytes); reserved
  };
  Action action = Action::kContinue;
  CloseReason reason = CloseReason::kNormal;  // meaningful for kDeny
  // Why, for the flow record: the policies that decided ("ns/name") and one human line.
  std::vector<std::string> policies;
  std::string detail;

  static FilterResult Continue() { return {}; }
  static FilterResult Deny(CloseReason reason, std::string detail = {}) {
    FilterResult r;
    r.action = Action::kDeny;
    r.reason = reason;
    r.detail = std::move(detail);
    return r;
  }
};

class Filter {
 public:
  virtual ~Filter() = default;
  // Called once per new connection, on the worker's thread.
  virtual FilterResult OnNewConnection(const ConnectionInfo& info) = 0;
};

}  // namespace picket::filters
