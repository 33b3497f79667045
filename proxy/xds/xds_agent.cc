// proxy/xds/xds_agent.cc — see xds_agent.h.
#include "proxy/xds/xds_agent.h"

#include <chrono>

#include "base/prometheus_text.h"
#include "net/tls.h"

namespace picket::proxy::xds {

base::Result<std::unique_ptr<XdsAgent>> XdsAgent::Create(uv_loop_t* loop,
                                                         const XdsAgentConfig& config,
                                                         ApplyPolicyFn apply,
                                                         ServiceMapFn on_service_map) {
  if (config.ns.empty() || config.pod.empty()) {
    return std::unexpected(base::Error::Of("xds: the pod's namespace and name are required"));
  }
  const bool token_mode = !config.token_file.empty();
  std::shared_ptr<net::TlsContext> tls;
  std::string ca_pem;
  if (token_mode) {
    if (config.csr_address.empty()) {
      return std::unexpected(base::Error::Of("xds: a token file needs the CSR address"));
    }
    auto ca = net::ReadPemFile(config.ca);
    if (!ca) return std::unexpected(std::move(ca.error()).Context("xds.tls.ca"));
    ca_pem = std::move(*ca);
    // Until the first certificate arrives the client is not started; this one is never used.
    auto placeholder = net::TlsContext::CreateClient(ca_pem);
    if (!placeholder) return std::unexpected(std::move(placeholder.error()).Context("xds.tls.ca"));
    tls = std::move(*placeholder);
  } else {
    auto credentials = net::LoadTlsCredentials(config.cert, config.key, config.ca);
    if (!credentials) return std::unexpected(std::move(credentials.error()).Context("xds.tls"));
    auto made = net::TlsContext::Create(net::TlsRole::kClient, *credentials);
    if (!made) return std::unexpected(std::move(made.error()).Context("xds.tls"));
    tls = std::move(*made);
  }

  std::unique_ptr<XdsAgent> agent(new XdsAgent());
  agent->source_ = std::make_unique<PolicySource>(config.ns, config.pod, std::move(apply),
                                                  std::move(on_service_map));
  XdsClientOptions options;
  options.server = config.address;
  options.fallback_servers = config.fallback_addresses;
  options.server_name = config.server_name;
  options.tls = std::move(tls);
  options.node = {"picket-proxy~" + config.ns + "/" + config.pod, config.ns, config.pod,
                  "picket-proxy", config.udp_sctp_enforced};
  options.subscriptions = agent->source_->Subscriptions();
  options.initial_backoff_ms = config.initial_backoff_ms;
  options.max_backoff_ms = config.max_backoff_ms;
  auto client = XdsClient::Create(loop, std::move(options), agent->source_.get());
  if (!client) return std::unexpected(client.error());
  agent->client_ = std::move(*client);
  if (token_mode) {
    XdsAgent* self = agent.get();
    auto certs =
        CertClient::Create(loop,
                           {.address = config.csr_address,
                            .server_name = config.server_name,
                            .ca_pem = ca_pem,
                            .token_file = config.token_file},
                           [self, ca_pem](const IssuedIdentity& id) {
                             auto ctx = net::TlsContext::Create(net::TlsRole::kClient,
                                                                {id.chain_pem, id.key_pem, ca_pem});
                             if (!ctx) return;  // CertClient checked it already
                             self->client_->SetTls(std::move(*ctx));
                             if (!self->started_) {
                               self->started_ = true;
                               self->client_->Start();
                             }
                           });
    if (!certs) return std::unexpected(std::move(certs.error()).Context("xds"));
    agent->certs_ = std::move(*certs);
  }
  return agent;
}

void XdsAgent::Start() {
  if (certs_) {
    certs_->Start();  // the client starts with the first certificate
    return;
  }
  started_ = true;
  client_->Start();
}

std::string XdsAgent::PrometheusText() const {
  std::string out = client_->PrometheusText();
  if (!certs_) return out;
  const CertClientStatus& c = certs_->status();
  const auto expiry =
      std::chrono::duration_cast<std::chrono::seconds>(c.expires_at.time_since_epoch()).count();
  base::PrometheusText p;
  p.Single("picket_xds_certificates_issued_total", "counter",
           "Certificates this sidecar obtained from the control server (token flow).", c.issued);
  p.Single("picket_xds_certificate_failures_total", "counter",
           "Failed certificate requests (each retried with backoff).", c.failures);
  p.Single("picket_xds_certificate_expiry_timestamp_seconds", "gauge",
           "Unix time the current certificate expires (0 before the first).",
           static_cast<uint64_t>(c.issued > 0 ? expiry : 0));
  out += p.Take();
  return out;
}

}  // namespace picket::proxy::xds
