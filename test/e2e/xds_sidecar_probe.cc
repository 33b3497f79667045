// test/e2e/xds_sidecar_probe.cc — a minimal sidecar for the xDS end-to-end test: it takes its
// policy from picket-control serve through proxy/xds's XdsAgent (exactly what picket-proxy wires
// in) and enforces the pod's ingress on one TCP port: a connection the policy allows gets
// "ok\n", any other is reset. Each applied snapshot is printed as
//   applied <CLOCK_REALTIME ns> <version>
// so the test can measure file write → enforcement. With --reject-peer IP it refuses (NACKs)
// any snapshot whose address map knows IP: a stand-in for a sidecar-side validation failure.
// --xds-fallback ADDR (repeatable) gives more control-server replicas; every change of the
// connection is printed as
//   xds <CLOCK_REALTIME ns> <state> <server address>
// (polled every millisecond) so the test can measure a failover. With --token-file F and
// --csr ADDR instead of --cert/--key, the certificate is issued for the pod's token by the
// control server (proxy/xds/cert_client.h) and renewed; each issuance is printed as
//   cert <CLOCK_REALTIME ns> <issued so far>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <string>

#include "policy/endpoint_policy.h"
#include "proxy/xds/xds_agent.h"

namespace {

using picket::policy::EndpointPolicyPtr;

struct Probe {
  uv_loop_t* loop;
  EndpointPolicyPtr policy;
  uint16_t port = 0;
  std::string reject_peer;
  uv_tcp_t listener;
  uv_timer_t watch;
  const picket::proxy::xds::XdsAgent* agent = nullptr;
  std::string last_connection;
  uint64_t certs_seen = 0;
};

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void OnWatch(uv_timer_t* timer) {
  auto* probe = static_cast<Probe*>(timer->data);
  if (const auto* certs = probe->agent->certs();
      certs != nullptr && certs->status().issued != probe->certs_seen) {
    probe->certs_seen = certs->status().issued;
    std::printf("cert %lld %llu\n", static_cast<long long>(RealtimeNs()),
                static_cast<unsigned long long>(probe->certs_seen));
    std::fflush(stdout);
  }
  const auto& status = probe->agent->status();
  const std::string now =
      std::string(picket::proxy::xds::XdsStateName(status.state)) + " " + status.server_address;
  if (now == probe->last_connection) return;
  probe->last_connection = now;
  std::printf("xds %lld %s\n", static_cast<long long>(RealtimeNs()), now.c_str());
  std::fflush(stdout);
}

void OnConnection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* probe = static_cast<Probe*>(server->data);
  auto* client = new uv_tcp_t;
  uv_tcp_init(probe->loop, client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  sockaddr_storage peer{};
  int len = sizeof peer;
  uv_tcp_getpeername(client, reinterpret_cast<sockaddr*>(&peer), &len);
  char host[64] = {};
  uv_ip4_name(reinterpret_cast<sockaddr_in*>(&peer), host, sizeof host);
  auto src = picket::policy::IpAddress::Parse(host);
  const bool allowed =
      probe->policy != nullptr && src &&
      probe->policy->CheckIngress(*src, probe->port, picket::config::Protocol::kTCP).allowed;
  if (!allowed) {
    uv_tcp_close_reset(client, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  static char ok[] = "ok\n";
  auto* req = new uv_write_t;
  uv_buf_t buf = uv_buf_init(ok, 3);
  req->data = client;
  uv_write(req, reinterpret_cast<uv_stream_t*>(client), &buf, 1, [](uv_write_t* r, int) {
    uv_close(reinterpret_cast<uv_handle_t*>(r->data),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    delete r;
  });
}

}  // namespace

int main(int argc, char** argv) {
  picket::proxy::xds::XdsAgentConfig config;
  Probe probe{};
  uint64_t initial_backoff_ms = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--xds") config.address = v;
    if (flag == "--cert") config.cert = v;
    if (flag == "--key") config.key = v;
    if (flag == "--token-file") config.token_file = v;
    if (flag == "--csr") config.csr_address = v;
    if (flag == "--ca") config.ca = v;
    if (flag == "--ns") config.ns = v;
    if (flag == "--pod") config.pod = v;
    if (flag == "--port") probe.port = static_cast<uint16_t>(std::stoi(v));
    if (flag == "--reject-peer") probe.reject_peer = v;
    if (flag == "--xds-fallback") config.fallback_addresses.push_back(v);
    if (flag == "--initial-backoff-ms") initial_backoff_ms = std::stoull(v);
  }
  config.initial_backoff_ms = initial_backoff_ms;
  config.max_backoff_ms = 500;
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  probe.loop = &loop;
  auto agent = picket::proxy::xds::XdsAgent::Create(
      &loop, config, [&probe](EndpointPolicyPtr p) -> std::expected<void, std::string> {
        if (!probe.reject_peer.empty()) {
          auto ip = picket::policy::IpAddress::Parse(probe.reject_peer);
          if (ip && p->LookupPeer(*ip) != nullptr) {
            return std::unexpected("address map names forbidden peer " + probe.reject_peer);
          }
        }
        probe.policy = std::move(p);
        std::printf("applied %lld %s\n", static_cast<long long>(RealtimeNs()),
                    probe.policy->version().c_str());
        std::fflush(stdout);
        return {};
      });
  if (!agent) {
    std::fprintf(stderr, "probe: %s\n", agent.error().ToString().c_str());
    return 1;
  }
  uv_tcp_init(&loop, &probe.listener);
  probe.listener.data = &probe;
  sockaddr_in addr{};
  uv_ip4_addr("0.0.0.0", probe.port, &addr);
  if (uv_tcp_bind(&probe.listener, reinterpret_cast<sockaddr*>(&addr), 0) != 0 ||
      uv_listen(reinterpret_cast<uv_stream_t*>(&probe.listener), 64, OnConnection) != 0) {
    std::fprintf(stderr, "probe: cannot listen on %u\n", probe.port);
    return 1;
  }
  probe.agent = agent->get();
  uv_timer_init(&loop, &probe.watch);
  probe.watch.data = &probe;
  uv_timer_start(&probe.watch, OnWatch, 1, 1);
  (*agent)->Start();
  uv_run(&loop, UV_RUN_DEFAULT);  // until killed (the test stops it by PID)
  return 0;
}
