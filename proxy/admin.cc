#include "proxy/admin.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "base/json.h"

namespace picket::proxy {
namespace {

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

net::HttpResponse Text(int status, std::string body) {
  return net::HttpResponse::Text(status, std::move(body));
}

using base::AppendJsonString;  // RFC 8259 strings: the one escaper (base/json.h)

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

std::string PolicyDumpJson(std::string_view version, std::string_view encoded) {
  base::JsonWriter w;
  w.BeginObject().Member("version", version).Key("content");
  auto doc = base::ParseJson(encoded);
  const std::optional<base::JsonValue> map = doc ? doc->root().Find("address_map") : std::nullopt;
  if (!map || !map->IsArray()) {
    w.Raw(encoded).EndObject();
    return w.Take();
  }
  const base::JsonValue root = doc->root();
  std::set<uint64_t> named;  // the identities the pod's rules can match
  if (auto policy = root.Find("pod_policy")) {
    if (auto sets = policy->Find("identity_sets")) {
      for (const base::JsonValue& set : sets->Elements()) {
        for (const base::JsonValue& id : set.Elements()) {
          if (auto v = id.AsUint64()) named.insert(*v);
        }
      }
    }
  }
  const auto ns = root.Find("namespace") ? root.Find("namespace")->AsString() : std::nullopt;
  const auto pod = root.Find("pod") ? root.Find("pod")->AsString() : std::nullopt;
  size_t omitted = 0;
  w.BeginObject();
  for (const base::JsonMember& m : root.Members()) {
    if (m.key != "address_map") {
      w.Key(m.key).Value(m.value);
      continue;
    }
    w.Key("address_map").BeginArray();
    for (const base::JsonValue& entry : m.value.Elements()) {
      const std::optional<base::JsonValue> id = entry.Find("identity");
      const bool own = entry.Find("namespace") && entry.Find("pod") &&
                       entry.Find("namespace")->AsString() == ns &&
                       entry.Find("pod")->AsString() == pod;
      const bool needed = id && id->AsUint64() && named.contains(id->AsUint64().value_or(0));
      if (own || needed) {
        w.Value(entry);
      } else {
        ++omitted;
      }
    }
    w.EndArray();
  }
  w.EndObject();
  if (omitted > 0) w.Member("address_entries_omitted", omitted);
  w.EndObject();
  return w.Take();
}

net::HttpResponse RouteAdmin(const net::HttpRequest& request, AdminHandler& handler,
                             AdminScope scope) {
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (request.path == "/drain") {
    // The app shares our network namespace: on TCP it could stop its own sidecar.
    if (scope != AdminScope::kFull) {
      return Text(403, "/drain: served only on the admin Unix socket (admin.socket)\n");
    }
    // Mutations must be POST (Envoy answers a GET on them with 400).
    if (request.method != "POST") return Text(400, "/drain: this endpoint requires POST\n");
    handler.Drain();
    return Text(200, "OK\n");
  }
  if (request.path == "/ready" || request.path == "/stats/prometheus" ||
      request.path == "/config_dump" || request.path == "/flows") {
    if (!get) {
      net::HttpResponse r = Text(405, request.path + ": this endpoint requires GET\n");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
  }
  if (request.path == "/ready") {
    std::string state = handler.ServerState();
    return Text(state == "LIVE" ? 200 : 503, state + "\n");
  }
  if (request.path == "/stats/prometheus") {
    net::HttpResponse r = Text(200, handler.PrometheusStats());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  if (request.path == "/config_dump") {
    net::HttpResponse r = Text(200, handler.ConfigDump());
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
    net::HttpResponse r = Text(200, std::move(body));
    r.content_type = "application/x-ndjson";
    return r;
  }
  return Text(404,
              "not found; endpoints: /ready /stats/prometheus /config_dump /flows "
              "POST /drain\n");
}

AdminServer::AdminServer(uv_loop_t* loop, AdminHandler& handler, AdminScope scope)
    : handler_(handler), scope_(scope) {
  net::HttpServerOptions options;
  options.keep_alive = false;  // one request per connection, as before: readers read to EOF
  options.limits.max_header_bytes = 8192;
  options.limits.max_body_bytes = 64 << 10;
  options.max_connections = 128;
  http_ = net::HttpServer::Create(loop, std::move(options));
  auto route = [this](const net::HttpRequest& request) {
    return RouteAdmin(request, handler_, scope_);
  };
  for (const char* path : {"/ready", "/stats/prometheus", "/config_dump", "/flows", "/drain"}) {
    http_->Handle(path, route);
  }
  http_->HandleNotFound(route);
}

AdminServer::~AdminServer() = default;

base::Result<void> AdminServer::Listen(const std::string& host, uint16_t port) {
  auto listening = http_->Listen(host, port);
  if (!listening) return std::unexpected(std::move(listening.error()).Context("admin"));
  return {};
}

base::Result<void> AdminServer::ListenUnix(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) {
    return std::unexpected(
        base::Error::Of("admin socket \"" + path + "\" must be in a directory of its own"));
  }
  const std::string dir = path.substr(0, slash);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(base::Error::Of("mkdir " + dir + ": " + std::strerror(errno)));
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return std::unexpected(base::Error::Of(dir + ": not a directory"));
  }
  // An emptyDir comes 0777: ours, so narrow it. Someone else's directory could be swapped.
  if (st.st_uid != geteuid()) {
    return std::unexpected(base::Error::Of(dir + ": owned by uid " + std::to_string(st.st_uid) +
                                           ", not ours (" + std::to_string(geteuid()) + ")"));
  }
  if ((st.st_mode & 077) != 0 && chmod(dir.c_str(), 0700) != 0) {
    return std::unexpected(base::Error::Of("chmod 0700 " + dir + ": " + std::strerror(errno)));
  }
  auto listening = http_->ListenUnix(path);
  if (!listening) return std::unexpected(std::move(listening.error()).Context("admin socket"));
  return {};
}

}  // namespace picket::proxy
