#include "proxy/admin.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "base/json.h"
#include "base/log.h"
#include "base/version.h"

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
          if (!id.IsArray()) continue;
          // [first, last] (policy/endpoint_codec.cc); the policy was decoded, so it is bounded.
          std::vector<uint64_t> ends;
          for (const base::JsonValue& e : id.Elements()) ends.push_back(e.AsUint64().value_or(0));
          if (ends.size() == 2) {
            for (uint64_t n = ends[0]; n <= ends[1]; ++n) named.insert(n);
          }
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

const std::vector<AdminEndpoint> kAdminEndpoints = {
    {"/config_dump", "dump the bootstrap, the policy and the Service map in force (JSON)", false},
    {"/drain", "stop accepting on every listener (Picket's name for /drain_listeners)", true},
    {"/drain_listeners",
     "stop accepting on the listeners; ?inboundonly: only inbound ones; ?graceful: report "
     "DRAINING for the drain time first",
     true},
    {"/flows", "recent flow records (NDJSON); ?verdict=DROPPED|FORWARDED", false},
    {"/logging", "GET: logger levels; POST ?level=L: every logger, ?<logger>=L: one logger", false},
    {"/memory", "memory use (JSON): glibc mallinfo2 and /proc/self/statm", false},
    {"/quitquitquit", "exit the proxy (status 0)", true},
    {"/ready", "200 LIVE once a policy is in force, else 503 and the state", false},
    {"/server_info", "version, state, uptime and command line options (JSON)", false},
    {"/stats/prometheus", "metrics, Prometheus text format 0.0.4", false},
};

namespace {

std::string Seconds(uint64_t s) { return std::to_string(s) + "s"; }

std::string HelpText() {
  std::string out = "admin commands are:\n";
  for (const AdminEndpoint& e : kAdminEndpoints) {
    out += "  ";
    out += e.path;
    out += ": ";
    out += e.help;
    if (e.mutates) out += " (POST, admin.socket only)";
    out += '\n';
  }
  return out;
}

// The named loggers that exist in this process (base/log.h), in kLoggerNames order.
std::vector<std::shared_ptr<spdlog::logger>> Loggers() {
  std::vector<std::shared_ptr<spdlog::logger>> out;
  for (const char* name : base::kLoggerNames) {
    if (auto logger = spdlog::get(name)) out.push_back(std::move(logger));
  }
  return out;
}

std::string LoggingText() {
  std::string out = "active loggers:\n";
  for (const auto& logger : Loggers()) {
    const auto level = spdlog::level::to_string_view(logger->level());
    out += "  " + logger->name() + ": " + std::string(level.data(), level.size()) + "\n";
  }
  return out;
}

// POST /logging: `level=L` sets every logger, `<logger>=L` one; all are checked before any is
// set, so a bad request changes nothing.
net::HttpResponse SetLogging(std::string_view query) {
  std::vector<std::pair<std::shared_ptr<spdlog::logger>, spdlog::level::level_enum>> changes;
  const auto loggers = Loggers();
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    auto level = base::ParseLogLevel(value);
    if (!level) {
      return Text(400, "/logging: " + std::string(key) + ": " + level.error().ToString() + "\n");
    }
    bool found = false;
    for (const auto& logger : loggers) {
      if (key == "level" || logger->name() == key) {
        changes.emplace_back(logger, *level);
        found = true;
      }
    }
    if (!found) {
      std::string names;
      for (const auto& logger : loggers) names += " " + logger->name();
      return Text(400, "/logging: unknown logger \"" + std::string(key) +
                           "\" (use level=L for all, or one of:" + names + ")\n");
    }
  }
  for (auto& [logger, level] : changes) logger->set_level(level);
  return Text(200, LoggingText());
}

uint64_t StatmResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

std::string ServerInfoJson(std::string_view state, const AdminHandler::ServerInfo& info) {
  const auto level =
      spdlog::get("admin") ? spdlog::get("admin")->level() : spdlog::default_logger_raw()->level();
  const auto level_name = spdlog::level::to_string_view(level);
  base::JsonWriter w;
  w.BeginObject()
      .Member("version", std::string(base::GitCommit()) + "/" + std::string(base::Version()) +
                             "/Clean/RELEASE/BoringSSL")
      .Member("state", state)
      .Member("uptime_current_epoch", Seconds(info.uptime_seconds))
      .Member("uptime_all_epochs", Seconds(info.uptime_seconds))
      .Key("command_line_options")
      .BeginObject()
      .Member("concurrency", static_cast<uint64_t>(info.concurrency))
      .Member("config_path", info.config_path)
      .Member("log_level", std::string_view(level_name.data(), level_name.size()))
      .Member("service_node", info.service_node)
      .Member("drain_time", Seconds(info.drain_time_seconds))
      .Member("mode", "Serve")
      .EndObject()
      .EndObject();
  return w.Take();
}

std::string MemoryJson() {
  const struct mallinfo2 m = mallinfo2();
  base::JsonWriter w;
  w.BeginObject()
      .Member("allocated", std::to_string(m.uordblks))
      .Member("heap_size", std::to_string(m.arena + m.hblkhd))
      .Member("pageheap_unmapped", "0")
      .Member("pageheap_free", std::to_string(m.fordblks))
      .Member("total_physical_bytes", std::to_string(StatmResidentBytes()))
      .EndObject();
  return w.Take();
}

net::HttpResponse RouteAdmin(const net::HttpRequest& request, AdminHandler& handler,
                             AdminScope scope) {
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (scope == AdminScope::kMetricsOnly && request.path != "/stats/prometheus") {
    // Reachable from the network: no admin verb, no dump, not even the listing of them.
    return Text(404, "only /stats/prometheus is served on the metrics port\n");
  }
  const AdminEndpoint* endpoint = nullptr;
  for (const AdminEndpoint& e : kAdminEndpoints) {
    if (request.path == e.path) endpoint = &e;
  }
  if (endpoint == nullptr) return Text(404, HelpText());
  // POST /logging changes levels: a mutation, though GET /logging is a read.
  const bool mutation = endpoint->mutates || (request.path == "/logging" && !get);
  if (mutation) {
    // The app shares our network namespace: on TCP it could stop its own sidecar.
    if (scope != AdminScope::kFull) {
      return Text(403, request.path +
                           ": mutating admin verbs are served only on the admin Unix socket "
                           "(admin.socket), not on the TCP endpoint\n");
    }
    // Mutations must be POST (Envoy answers a GET on them with 400).
    if (request.method != "POST") {
      return Text(400, request.path + ": this endpoint requires POST\n");
    }
  } else if (!get) {
    net::HttpResponse r = Text(405, request.path + ": this endpoint requires GET\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  auto json = [](std::string body) {
    net::HttpResponse r = Text(200, std::move(body) + "\n");
    r.content_type = "application/json";
    return r;
  };
  if (request.path == "/drain") {
    handler.Drain();
    return Text(200, "OK\n");
  }
  if (request.path == "/drain_listeners") {
    handler.DrainListeners(QueryParam(request.query, "inboundonly").has_value(),
                           QueryParam(request.query, "graceful").has_value());
    return Text(200, "OK\n");
  }
  if (request.path == "/quitquitquit") {
    handler.Quit();
    return Text(200, "OK\n");
  }
  if (request.path == "/logging") return get ? Text(200, LoggingText()) : SetLogging(request.query);
  if (request.path == "/server_info")
    return json(ServerInfoJson(handler.ServerState(), handler.Info()));
  if (request.path == "/memory") return json(MemoryJson());
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
  // /flows
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
  if (scope_ == AdminScope::kMetricsOnly) {
    http_->Handle("/stats/prometheus", route);
  } else {
    for (const AdminEndpoint& e : kAdminEndpoints) http_->Handle(e.path, route);
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
