// proxy/xds/xds_agent.h — everything a sidecar needs to take its policy from the control server.
//
// Owns: the TLS client context (loaded from the bootstrap's cert/key/CA files, or issued for the
// pod's service-account token by the control server: CertClient), the
// PolicySource (resources → EndpointPolicy) and the XdsClient (connection, ACK/NACK, backoff).
// The proxy wires it in with a few lines (see control/PROTOCOL.md §8):
//
//   auto agent = XdsAgent::Create(loop, {.address = b.xds->address, .cert = b.xds->tls.cert,
//       .key = b.xds->tls.key, .ca = b.xds->tls.ca, .ns = b.node.ns, .pod = b.node.name},
//       [proxy](policy::EndpointPolicyPtr p) { return proxy->ApplyPolicy(std::move(p)); });
//   (*agent)->Start();   ...   (*agent)->Close(done);
//
// and adds StatusJson() to /config_dump and PrometheusText() to /stats/prometheus. To receive
// the service map (proxy/xds/service_map.h) pass `on_service_map` to Create as well; the proxy
// stores the ServiceMapPtr it gets and consults it for outbound connections.
// Loop-thread only; `apply` runs on the loop thread. Close() and run the loop until `done`.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "proxy/xds/cert_client.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_client.h"

namespace picket::proxy::xds {

struct XdsAgentConfig {
  std::string address;  // "host:port" of the control server
  // More control-server replicas, tried in order after `address` (XdsClientOptions).
  std::vector<std::string> fallback_addresses;
  std::string cert;  // PEM files: this pod's certificate (URI SAN spiffe://…/ns/NS/pod/NAME)
  std::string key;
  std::string ca;
  // Or, instead of cert and key, the certificate issued by the control server for this pod's
  // projected service-account token (proxy/xds/cert_client.h): the token file and the control
  // server's --csr-listen "host:port". The stream opens once the first certificate arrived;
  // renewed ones are used by the next connections (the stream and its policy stay).
  std::string token_file;
  std::string csr_address;
  std::string ns;  // this pod
  std::string pod;
  std::string server_name;  // name to verify in the server certificate; default: the host
  // Sent as node.metadata.udp_sctp_enforced (control/PROTOCOL.md §3.7): true only when the
  // UDP/SCTP verdict queue is bound; false under the opt-out or when binding failed (no
  // CAP_NET_ADMIN). nullopt: not said.
  std::optional<bool> udp_sctp_enforced;
  uint64_t initial_backoff_ms = 250;
  uint64_t max_backoff_ms = 30000;
};

class XdsAgent {
 public:
  [[nodiscard]] static base::Result<std::unique_ptr<XdsAgent>> Create(
      uv_loop_t* loop, const XdsAgentConfig& config, ApplyPolicyFn apply,
      ServiceMapFn on_service_map = nullptr);

  void Start();
  void Close(std::function<void()> done) {
    if (certs_) certs_->Close();
    client_->Close(std::move(done));
  }
  // Token mode: the certificate client (nullptr with certificate files).
  const CertClient* certs() const { return certs_.get(); }

  const XdsClientStatus& status() const { return client_->status(); }
  std::string StatusJson() const { return client_->StatusJson(); }
  // picket_xds_* (XdsClient), and in token mode picket_xds_certificates_issued_total,
  // picket_xds_certificate_failures_total and picket_xds_certificate_expiry_timestamp_seconds.
  std::string PrometheusText() const;
  const policy::EndpointPolicyPtr& current() const { return source_->current(); }
  const ServiceMapPtr& service_map() const { return source_->service_map(); }

 private:
  XdsAgent() = default;
  std::unique_ptr<PolicySource> source_;
  std::unique_ptr<XdsClient> client_;  // declared after source_: destroyed first
  std::unique_ptr<CertClient> certs_;
  bool started_ = false;  // the XdsClient (token mode: after the first certificate)
};

}  // namespace picket::proxy::xds
