#include "proxy/admin.h"

#include <netinet/in.h>

#include <cstring>

#include "policy/json_writer.h"

namespace picket::proxy {
namespace {

constexpr size_t kMaxRequestHead = 8192;

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
  }
  return "Error";
}

// The value of `key` in a query string like "a=1&verdict=DROPPED", or nullopt.
std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

AdminResponse Text(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

using policy::AppendJsonString;  // RFC 8259 strings: the one escaper (policy/json_writer.h)

void AppendStringArray(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(out, items[i]);
  }
  out += ']';
}

void AppendPort(std::string& out, const ServiceMapDump::Port& port) {
  out += "{\"name\":";
  AppendJsonString(out, port.name);
  out += ",\"port\":" + std::to_string(port.port) + ",\"protocol\":";
  AppendJsonString(out, port.protocol);
  out += ",\"backends\":[";
  for (size_t i = 0; i < port.backends.size(); ++i) {
    const ServiceMapDump::Backend& b = port.backends[i];
    out += i > 0 ? ",{\"pod\":" : "{\"pod\":";
    AppendJsonString(out, b.pod);
    out += ",\"ips\":";
    AppendStringArray(out, b.ips);
    out += ",\"target_port\":" + std::to_string(b.target_port) + "}";
  }
  out += "]}";
}

}  // namespace

std::string ServiceMapJson(const ServiceMapDump& dump) {
  std::string out = "{\"version\":";
  AppendJsonString(out, dump.version);
  out += ",\"service_count\":" + std::to_string(dump.service_count) +
         ",\"address_count\":" + std::to_string(dump.address_count) + ",\"services\":";
  if (!dump.services) {
    out += "null}";
    return out;
  }
  out += '[';
  for (size_t i = 0; i < dump.services->size(); ++i) {
    const ServiceMapDump::Service& s = (*dump.services)[i];
    out += i > 0 ? ",{\"namespace\":" : "{\"namespace\":";
    AppendJsonString(out, s.ns);
    out += ",\"name\":";
    AppendJsonString(out, s.name);
    out += ",\"cluster_ips\":";
    AppendStringArray(out, s.cluster_ips);
    out += ",\"ports\":[";
    for (size_t j = 0; j < s.ports.size(); ++j) {
      if (j > 0) out += ',';
      AppendPort(out, s.ports[j]);
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

std::optional<AdminRequest> ParseAdminRequest(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  std::string_view version = line.substr(sp2 + 1);
  if (!version.starts_with("HTTP/1.")) return std::nullopt;
  AdminRequest r;
  r.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty() || target.front() != '/') return std::nullopt;
  size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  return r;
}

AdminResponse RouteAdmin(const AdminRequest& request, AdminHandler& handler) {
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (request.path == "/drain") {
    // Mutations must be POST (Envoy answers a GET on them with 400).
    if (request.method != "POST") return Text(400, "/drain: this endpoint requires POST\n");
    handler.Drain();
    return Text(200, "OK\n");
  }
  if (request.path == "/ready" || request.path == "/stats/prometheus" ||
      request.path == "/config_dump" || request.path == "/flows") {
    if (!get) return Text(405, request.path + ": this endpoint requires GET\n");
  }
  if (request.path == "/ready") {
    std::string state = handler.ServerState();
    return Text(state == "LIVE" ? 200 : 503, state + "\n");
  }
  if (request.path == "/stats/prometheus") {
    AdminResponse r = Text(200, handler.PrometheusStats());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  if (request.path == "/config_dump") {
    AdminResponse r = Text(200, handler.ConfigDump());
    r.content_type = "application/json";
    return r;
  }
  if (request.path == "/flows") {
    std::string verdict = QueryParam(request.query, "verdict").value_or("");
    if (!verdict.empty() && verdict != "DROPPED" && verdict != "FORWARDED") {
      return Text(400, "/flows: verdict must be DROPPED or FORWARDED\n");
    }
    std::string body;
    for (const std::string& line : handler.Flows(verdict)) {
      body += line;
      body += '\n';
    }
    AdminResponse r = Text(200, std::move(body));
    r.content_type = "application/x-ndjson";
    return r;
  }
  return Text(404,
              "not found; endpoints: /ready /stats/prometheus /config_dump /flows "
              "POST /drain\n");
}

std::string SerializeAdminResponse(const AdminResponse& response) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    StatusText(response.status) + "\r\nContent-Type: " + response.content_type +
                    "\r\nContent-Length: " + std::to_string(response.body.size()) +
                    "\r\nConnection: close\r\n\r\n";
  out += response.body;
  return out;
}

struct AdminServer::Client {
  AdminServer* server;
  uv_tcp_t tcp;
  uv_write_t write;
  std::string in;
  std::string out;
  char buffer[2048];
  bool closing = false;
};

AdminServer::AdminServer(uv_loop_t* loop, AdminHandler& handler) : loop_(loop), handler_(handler) {}

AdminServer::~AdminServer() = default;

std::expected<void, std::string> AdminServer::Listen(const std::string& host, uint16_t port) {
  sockaddr_storage addr{};
  int rc = host.find(':') == std::string::npos
               ? uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr))
               : uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr));
  if (rc != 0) return std::unexpected("admin address " + host + ": " + uv_strerror(rc));
  uv_tcp_init(loop_, &server_);
  server_.data = this;
  open_ = true;
  rc = uv_tcp_bind(&server_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 128, &OnConnection);
  if (rc != 0) {
    return std::unexpected("admin listen on " + host + ":" + std::to_string(port) + ": " +
                           uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return {};
}

void AdminServer::Close() {
  if (open_) {
    open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
  }
  for (auto& [raw, client] : clients_) CloseClient(*client);
}

void AdminServer::OnConnection(uv_stream_t* stream, int status) {
  auto* self = static_cast<AdminServer*>(stream->data);
  if (status < 0) return;
  auto client = std::make_unique<Client>();
  client->server = self;
  uv_tcp_init(self->loop_, &client->tcp);
  client->tcp.data = client.get();
  Client* raw = client.get();
  self->clients_.emplace(raw, std::move(client));
  if (uv_accept(stream, reinterpret_cast<uv_stream_t*>(&raw->tcp)) != 0) {
    self->CloseClient(*raw);
    return;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&raw->tcp), &OnAlloc, &OnRead);
}

void AdminServer::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* client = static_cast<Client*>(h->data);
  *buf = uv_buf_init(client->buffer, sizeof(client->buffer));
}

void AdminServer::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* client = static_cast<Client*>(stream->data);
  AdminServer* self = client->server;
  if (nread < 0) {
    self->CloseClient(*client);
    return;
  }
  client->in.append(buf->base, static_cast<size_t>(nread));
  size_t end = client->in.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (client->in.size() > kMaxRequestHead)
      self->Respond(*client, Text(400, "request too large\n"));
    return;
  }
  uv_read_stop(stream);
  std::optional<AdminRequest> request =
      ParseAdminRequest(std::string_view(client->in).substr(0, end));
  self->Respond(*client,
                request ? RouteAdmin(*request, self->handler_) : Text(400, "malformed request\n"));
}

void AdminServer::Respond(Client& client, const AdminResponse& response) {
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&client.tcp));
  client.out = SerializeAdminResponse(response);
  uv_buf_t buf = uv_buf_init(client.out.data(), static_cast<unsigned>(client.out.size()));
  client.write.data = &client;
  if (uv_write(&client.write, reinterpret_cast<uv_stream_t*>(&client.tcp), &buf, 1, &OnWritten) !=
      0) {
    CloseClient(client);
  }
}

void AdminServer::OnWritten(uv_write_t* req, int) {
  auto* client = static_cast<Client*>(req->data);
  client->server->CloseClient(*client);
}

void AdminServer::CloseClient(Client& client) {
  if (client.closing) return;
  client.closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&client.tcp), &OnClientClosed);
}

void AdminServer::OnClientClosed(uv_handle_t* h) {
  auto* client = static_cast<Client*>(h->data);
  client->server->clients_.erase(client);  // frees the client: nothing touches it after
}

}  // namespace picket::proxy
