// proxy/admin.h — the admin endpoint on 127.0.0.1: its routes, served by net::HttpServer.
//
// Owns: `AdminHandler` (what the routes need from the proxy: the seam for routing tests),
// `RouteAdmin` (pure: request → response) and `AdminServer` (a net::HttpServer on the main loop
// with every route registered; one request per connection, answered with `Connection: close`).
//
// Routes (Envoy's names, Envoy docs: admin interface): GET /ready (200 "LIVE" once a policy is
// loaded, else 503 with the state), GET /stats/prometheus, GET /config_dump, GET /flows
// (`?verdict=DROPPED|FORWARDED`), POST /drain (stop accepting; GET on it → 400, as Envoy).
// Scope: the TCP endpoint on 127.0.0.1 is reachable by the app (same network namespace), so it
// is read-only — POST /drain there gets 403. Mutations are served only on the Unix-domain socket
// (`admin.socket`: mode 0600 in a directory made 0700, both owned by the proxy's uid).
// `ServiceMapJson` renders the "service_map" part of /config_dump and `PolicyDumpJson` its
// "policy" part (the Proxy assembles the rest).
//
// Threads: the main loop's thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "net/http_server.h"

namespace picket::proxy {

class AdminHandler {
 public:
  virtual ~AdminHandler() = default;
  // "LIVE", "PRE_INITIALIZING" (no policy yet) or "DRAINING".
  virtual std::string ServerState() const = 0;
  virtual std::string PrometheusStats() const = 0;
  virtual std::string ConfigDump() const = 0;  // JSON
  virtual std::vector<std::string> Flows(const std::string& verdict) const = 0;
  virtual void Drain() = 0;
};

// The Service map the sidecar applied (proxy/xds/service_map.h), as /config_dump shows it under
// "service_map". Plain values, so that this target stays free of the xDS types and the JSON shape
// is tested on its own; the Proxy fills it from the map in force.
struct ServiceMapDump {
  struct Backend {
    std::string pod;               // name; the namespace is the Service's
    std::vector<std::string> ips;  // textual, both families
    uint16_t target_port = 0;      // the resolved port on that pod
  };
  struct Port {
    std::string name;
    uint16_t port = 0;
    std::string protocol;  // "TCP", "UDP" or "SCTP"
    std::vector<Backend> backends;
  };
  struct Service {
    std::string ns;
    std::string name;
    std::vector<std::string> cluster_ips;
    std::vector<Port> ports;
  };
  std::string version;       // version_info of the last accepted Service response
  size_t service_count = 0;  // Services indexed by the map
  size_t address_count = 0;  // (ClusterIP, port, protocol) keys indexed by the map
  // Each Service in resource-name order; nullopt when the map in force cannot list its entries
  // (rendered as null, so a reader never mistakes "not listed" for "no Services").
  std::optional<std::vector<Service>> services;
};

// {"version":…,"service_count":N,"address_count":N,"services":[{"namespace","name",
// "cluster_ips":[…],"ports":[{"name","port","protocol","backends":[{"pod","ips":[…],
// "target_port"}]}]}]} — one JSON object, no trailing newline.
std::string ServiceMapJson(const ServiceMapDump& dump);

// The "policy" part of /config_dump: {"version":V,"content":C} where C is the snapshot's text
// form (EndpointPolicy::Encode, the policy_file format) cut down to what this pod's policy needs:
// its own pod policy, its own address entry and the entries of the identities its rules name
// (pod_policy.identity_sets) — not the pod IPs, labels and named ports of the whole cluster, which
// the app (it can read this endpoint) has no business seeing. When entries were left out,
// "address_entries_omitted":N follows C. A C without an address_map is shown as it is.
std::string PolicyDumpJson(std::string_view version, std::string_view encoded);

// Every route: the one place that maps a request to the proxy's answer (method checks included:
// Envoy answers a GET on a mutation with 400, a mutation on a read-only endpoint with 405).
enum class AdminScope {
  kReadOnly,  // the TCP endpoint: mutations are refused with 403
  kFull,      // the Unix-domain socket only the proxy's uid can open
};
net::HttpResponse RouteAdmin(const net::HttpRequest& request, AdminHandler& handler,
                             AdminScope scope = AdminScope::kFull);

class AdminServer {
 public:
  AdminServer(uv_loop_t* loop, AdminHandler& handler, AdminScope scope);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  [[nodiscard]] base::Result<void> Listen(const std::string& host, uint16_t port);
  // Listens on a Unix-domain socket at `path`, creating its directory (mode 0700) if missing and
  // refusing a directory that others may enter or that another uid owns.
  [[nodiscard]] base::Result<void> ListenUnix(const std::string& path);
  uint16_t port() const { return http_->port(); }
  // Closes the listener and every open request; the loop finishes the close callbacks.
  void Close() { http_->Close(); }

 private:
  AdminHandler& handler_;
  const AdminScope scope_;
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace picket::proxy
