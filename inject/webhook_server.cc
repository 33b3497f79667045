// inject/webhook_server.cc — see webhook_server.h.
#include "inject/webhook_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <future>

#include "inject/admission.h"
#include "net/tls.h"

namespace picket::inject {
namespace {

// host:port, [v6]:port, :port. An empty host, 0.0.0.0 and :: listen on both families.
base::Result<sockaddr_storage> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return std::unexpected(base::Error::At("--listen", "expected host:port"));
  }
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  uint16_t port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size()) {
    return std::unexpected(base::Error::At("--listen", "invalid port \"" + port_text + "\""));
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0") host = "::";
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return std::unexpected(base::Error::At("--listen", "\"" + host + "\" is not an IP address"));
  }
  return addr;
}

base::Result<std::shared_ptr<net::TlsContext>> LoadTls(const WebhookConfig& config) {
  auto cert = net::ReadPemFile(config.tls_cert_file);
  if (!cert) return std::unexpected(std::move(cert.error()).Context("--tls-cert"));
  auto key = net::ReadPemFile(config.tls_key_file);
  if (!key) return std::unexpected(std::move(key.error()).Context("--tls-key"));
  auto tls = net::TlsContext::CreateServerOnly(*cert, *key);
  if (!tls) return std::unexpected(std::move(tls.error()).Context("--tls-cert/--tls-key"));
  return tls;
}

}  // namespace

base::Result<std::unique_ptr<WebhookServer>> WebhookServer::Start(WebhookConfig config) {
  auto addr = ParseListen(config.listen);
  if (!addr) return std::unexpected(addr.error());
  auto tls = LoadTls(config);
  if (!tls) return std::unexpected(tls.error());

  std::unique_ptr<WebhookServer> s(new WebhookServer(std::move(config)));
  uv_loop_init(&s->loop_);
  uv_async_init(&s->loop_, &s->wake_,
                [](uv_async_t* a) { static_cast<WebhookServer*>(a->data)->OnWake(); });
  s->wake_.data = s.get();

  net::HttpServerOptions options;
  options.tls = *tls;
  options.limits.max_header_bytes = s->config_.max_header_bytes;
  options.limits.max_body_bytes = s->config_.max_body_bytes;
  options.max_connections = s->config_.max_connections;
  options.header_timeout_ms = static_cast<uint64_t>(s->config_.header_timeout.count());
  options.body_timeout_ms = static_cast<uint64_t>(s->config_.body_timeout.count());
  options.idle_timeout_ms = static_cast<uint64_t>(s->config_.idle_timeout.count());
  // Nothing runs the loop yet: setting the server up from this thread is safe.
  s->http_ = net::HttpServer::Create(&s->loop_, std::move(options));
  WebhookServer* self = s.get();
  s->http_->Handle("/healthz", {"GET"},
                   [](const net::HttpRequest&) { return net::HttpResponse::Text(200, "ok\n"); });
  s->strict_ = s->config_.inject;
  s->strict_.enforcement = Enforcement::kStrict;
  s->http_->Handle("/inject", {"POST"}, [self](const net::HttpRequest& request) {
    return self->Review(request, self->config_.inject);
  });
  s->http_->Handle("/inject-strict", {"POST"}, [self](const net::HttpRequest& request) {
    return self->Review(request, self->strict_);
  });
  auto listening = s->http_->Listen(reinterpret_cast<const sockaddr*>(&*addr));
  if (!listening) {
    base::Error error = std::move(listening.error()).Context("--listen " + s->config_.listen);
    s->stopped_ = true;
    s->http_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&s->wake_), nullptr);
    uv_run(&s->loop_, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop_);
    return std::unexpected(std::move(error));
  }
  s->port_ = s->http_->port();
  s->thread_ = std::thread([self] { uv_run(&self->loop_, UV_RUN_DEFAULT); });
  return s;
}

WebhookServer::~WebhookServer() { Stop(); }

net::HttpResponse WebhookServer::Review(const net::HttpRequest& request,
                                        const InjectOptions& options) {
  AdmissionReply a = HandleAdmissionReview(request.body, options);
  net::HttpResponse r = net::HttpResponse::Text(a.status, std::move(a.body));
  if (a.status == 200) r.content_type = "application/json";
  if (config_.log) {
    std::string line = request.method + " " + request.path + " -> " + std::to_string(r.status);
    if (r.status != 200) line += ": " + r.body.substr(0, r.body.find('\n'));
    if (!a.denial.empty()) line += " denied: " + a.denial;
    config_.log(line);
    for (const std::string& w : a.warnings) config_.log("warning: " + w);
  }
  return r;
}

void WebhookServer::OnWake() {
  std::vector<std::function<void()>> run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    run.swap(calls_);
  }
  for (auto& fn : run) fn();
}

void WebhookServer::Call(std::function<void()> fn) {
  std::promise<void> done;
  auto future = done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back([&] {
      fn();
      done.set_value();
    });
  }
  uv_async_send(&wake_);
  future.wait();
}

net::HttpServerCounters WebhookServer::Counters() {
  if (stopped_) return final_counters_;
  net::HttpServerCounters counters;
  Call([&] { counters = http_->counters(); });
  return counters;
}

void WebhookServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Closing the server and the wake handle leaves the loop with nothing to run: uv_run returns.
  Call([this] {
    final_counters_ = http_->counters();
    http_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
  });
  thread_.join();
  uv_loop_close(&loop_);
}

}  // namespace picket::inject
