// proxy/admin.h — the admin endpoint on 127.0.0.1: its routes, served by net::HttpServer.
//
// Owns: `AdminHandler` (what the routes need from the proxy: the seam for routing tests),
// `RouteAdmin` (pure: request → response) and `AdminServer` (a net::HttpServer on the main loop
// with every route registered; one request per connection, answered with `Connection: close`).
//
// Routes (Envoy's names, Envoy docs: admin interface; `kAdminEndpoints` lists them): GET /ready
// (200 "LIVE" once a policy is loaded, else 503 with the state), GET /stats/prometheus, GET
// /config_dump, GET /flows (`?verdict=DROPPED|FORWARDED`), GET /server_info (Envoy's JSON
// subset), GET /memory (glibc mallinfo2 and /proc/self/statm), GET /logging (levels of the named
// loggers, base/log.h); POST /logging (`?level=L` all, `?<logger>=L` one), POST /drain_listeners
// (`?inboundonly`, `?graceful`), POST /drain (Picket's older name: /drain_listeners), POST
// /quitquitquit (exit 0). A GET on a POST verb → 400, a POST on a GET verb → 405 (as Envoy); any
// other path → 404 with the listing of every endpoint, one line each (as Envoy's help).
// The metrics listener (AdminScope::kMetricsOnly, bootstrap admin.metrics_port) serves GET
// /stats/prometheus alone, on the pod's addresses; any other path there is 404.
// Scope: the TCP endpoint on 127.0.0.1 is reachable by the app (same network namespace), so it
// is read-only — every POST verb there gets 403. Mutations are served only on the Unix-domain
// socket (`admin.socket`: mode 0600 in a directory made 0700, both owned by the proxy's uid).
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
  // Stops accepting on every listener (POST /drain, /drain_listeners).
  virtual void Drain() = 0;
  // POST /drain_listeners: `inbound_only` stops only the inbound listeners; `graceful` first
  // reports DRAINING (/ready 503) for the drain time, still accepting, then stops accepting.
  // The default (test fakes) is Drain().
  virtual void DrainListeners(bool /*inbound_only*/, bool /*graceful*/) { Drain(); }
  // POST /quitquitquit: exit the process with status 0 soon after the answer is written.
  virtual void Quit() {}
  // GET /server_info: the values only the proxy knows (see ServerInfoJson).
  struct ServerInfo {
    uint64_t uptime_seconds = 0;  // since the process started (one epoch: no hot restart)
    uint32_t concurrency = 0;     // workers
    std::string config_path;
    std::string service_node;  // "namespace/name"
    uint64_t drain_time_seconds = 0;
  };
  virtual ServerInfo Info() const { return {}; }
};

// The GET /server_info body, Envoy's ServerInfo JSON reduced to what Picket has:
// {"version":"<commit>/<version>/Clean/RELEASE/BoringSSL","state":S,"uptime_current_epoch":"Ns",
// "uptime_all_epochs":"Ns","command_line_options":{"concurrency":N,"config_path":P,
// "log_level":L,"service_node":"ns/name","drain_time":"Ns","mode":"Serve"}}. Envoy's
// hot_restart_version and restart epochs do not exist here (uptime_all_epochs equals the
// current epoch); durations are protobuf JSON strings ("12s"), as Envoy writes them.
std::string ServerInfoJson(std::string_view state, const AdminHandler::ServerInfo& info);

// The GET /memory body, Envoy's field names with values as JSON strings (protobuf uint64), from
// glibc's mallinfo2() and /proc/self/statm: "allocated" (uordblks: bytes in use), "heap_size"
// (arena + hblkhd: bytes obtained from the OS), "pageheap_free" (fordblks: free in the heap),
// "pageheap_unmapped" ("0": glibc does not report it), "total_physical_bytes" (statm resident
// pages × page size).
std::string MemoryJson();

// One line per endpoint, "  /path: what it does" (the 404 body, after "admin commands are:").
struct AdminEndpoint {
  const char* path;
  const char* help;
  bool mutates;  // POST, served only on admin.socket
};
extern const std::vector<AdminEndpoint> kAdminEndpoints;

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
  // The metrics listener on the pod's addresses (bootstrap admin.metrics_port): GET
  // /stats/prometheus and nothing else — every other path is 404, the admin verbs included.
  kMetricsOnly,
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
