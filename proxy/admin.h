// proxy/admin.h — the admin endpoint: a tiny HTTP/1.1 server on 127.0.0.1 and its routes.
//
// Owns: `AdminHandler` (what the routes need from the proxy: the seam for routing tests),
// `RouteAdmin` (pure: request → response) and `AdminServer` (uv_tcp on the main loop; one
// request per connection, answered with `Connection: close`).
//
// Routes (Envoy's names, Envoy docs: admin interface): GET /ready (200 "LIVE" once a policy is
// loaded, else 503 with the state), GET /stats/prometheus, GET /config_dump, GET /flows
// (`?verdict=DROPPED|FORWARDED`), POST /drain (stop accepting; GET on it → 400, as Envoy).
// `ServiceMapJson` renders the "service_map" part of /config_dump (the Proxy assembles the rest).
//
// Threads: the main loop's thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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

struct AdminRequest {
  std::string method;
  std::string path;
  std::string query;  // without '?'
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Parses the request line of `head` (everything up to the blank line); nullopt if malformed.
std::optional<AdminRequest> ParseAdminRequest(std::string_view head);
AdminResponse RouteAdmin(const AdminRequest& request, AdminHandler& handler);
// Status line, headers and body.
std::string SerializeAdminResponse(const AdminResponse& response);

class AdminServer {
 public:
  AdminServer(uv_loop_t* loop, AdminHandler& handler);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  [[nodiscard]] std::expected<void, std::string> Listen(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }
  // Closes the listener and every open request; the loop finishes the close callbacks.
  void Close();

 private:
  struct Client;
  static void OnConnection(uv_stream_t* server, int status);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWritten(uv_write_t* req, int status);
  static void OnClientClosed(uv_handle_t* h);

  void Respond(Client& client, const AdminResponse& response);
  void CloseClient(Client& client);

  uv_loop_t* loop_;
  AdminHandler& handler_;
  uv_tcp_t server_;
  bool open_ = false;
  uint16_t port_ = 0;
  std::unordered_map<Client*, std::unique_ptr<Client>> clients_;
};

}  // namespace picket::proxy
