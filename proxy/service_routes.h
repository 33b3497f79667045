// proxy/service_routes.h — steering the app's TCP to Service addresses to the relay by routing,
// without nat (verdict mode; docs/architecture.md, "What verdict mode costs per packet").
//
// Owns: ServiceRoutes, the sidecar's routing table. Two policy rules per family put it in front
// of `main`: the proxy uid looks up `main` (the relay's own connections leave normally), then
// `ipproto tcp` looks up `table` (UDP to a Service, DNS among it, is the node's). The table holds
// one `local` route via `lo` per Service address (source: the pod's address of that family), so
// an app's SYN to a ClusterIP is delivered in the pod, to the relay's transparent listener on
// that address and port. Nothing here needs connection tracking.
//
// Fail closed: the routes outlive the sidecar (they are plain routes). With no listener the SYN
// finds nothing and the app's connect fails; nothing reaches the Service unjudged. Open() empties
// the table (a restarted sidecar's first Sync() sets it again).
//
// Bounded: Sync() refuses more than `max_routes` addresses (its error says so; the table keeps
// what it held). Blocking: one rtnetlink round trip per rule, route added or deleted; run it off
// the packet path. Needs CAP_NET_ADMIN in the pod's network namespace.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <vector>

#include "base/ip.h"
#include "proxy/socket_util.h"

struct mnl_socket;

namespace picket::proxy {

class ServiceRoutes {
 public:
  struct Options {
    uint32_t table = 15001;          // the routing table id
    uint32_t rule_priority = 15000;  // the proxy-uid rule; the table's rule is the next one
    uint32_t proxy_uid = 1337;
    std::optional<base::IpAddress> source_v4;  // the pod's addresses: the app's source address
    std::optional<base::IpAddress> source_v6;  //   (no family without one gets routes or rules)
    size_t max_routes = 4096;
  };

  // Opens an rtnetlink socket, adds the two rules per family (present already: kept as they
  // are) and empties the table.
  static std::expected<ServiceRoutes, SysError> Open(const Options& options);

  // Makes the table hold exactly `addresses` (duplicates ignored; a family without a source
  // address is an error): new ones are added first, then the ones no longer named deleted.
  std::expected<void, SysError> Sync(const std::vector<base::IpAddress>& addresses);

  const std::vector<base::IpAddress>& routed() const { return routed_; }

 private:
  ServiceRoutes(const Options& options, mnl_socket* socket);
  std::expected<void, SysError> Request(void* message, const char* what);
  std::expected<void, SysError> AddRules(bool v6);
  std::expected<void, SysError> Flush();
  std::expected<void, SysError> Route(bool add, const base::IpAddress& address);

  struct CloseSocket {
    void operator()(mnl_socket* socket) const;
  };

  Options options_;
  std::unique_ptr<mnl_socket, CloseSocket> socket_;
  uint32_t seq_ = 1;
  int loopback_index_ = 0;
  std::vector<base::IpAddress> routed_;  // sorted
};

}  // namespace picket::proxy
