// proxy/xds/xds_agent.cc — see xds_agent.h.
#include "proxy/xds/xds_agent.h"

#include "net/tls.h"

namespace picket::proxy::xds {

base::Result<std::unique_ptr<XdsAgent>> XdsAgent::Create(uv_loop_t* loop,
                                                         const XdsAgentConfig& config,
                                                         ApplyPolicyFn apply,
                                                         ServiceMapFn on_service_map) {
  if (config.ns.empty() || config.pod.empty()) {
    return std::unexpected(base::Error::Of("xds: the pod's namespace and name are required"));
  }
  auto credentials = net::LoadTlsCredentials(config.cert, config.key, config.ca);
  if (!credentials) return std::unexpected(std::move(credentials.error()).Context("xds.tls"));
  auto tls = net::TlsContext::Create(net::TlsRole::kClient, *credentials);
  if (!tls) return std::unexpected(std::move(tls.error()).Context("xds.tls"));

  std::unique_ptr<XdsAgent> agent(new XdsAgent());
  agent->source_ = std::make_unique<PolicySource>(config.ns, config.pod, std::move(apply),
                                                  std::move(on_service_map));
  XdsClientOptions options;
  options.server = config.address;
  options.fallback_servers = config.fallback_addresses;
  options.server_name = config.server_name;
  options.tls = std::move(*tls);
  options.node = {"picket-proxy~" + config.ns + "/" + config.pod, config.ns, config.pod,
                  "picket-proxy", config.udp_sctp_enforced};
  options.subscriptions = agent->source_->Subscriptions();
  options.initial_backoff_ms = config.initial_backoff_ms;
  options.max_backoff_ms = config.max_backoff_ms;
  auto client = XdsClient::Create(loop, std::move(options), agent->source_.get());
  if (!client) return std::unexpected(client.error());
  agent->client_ = std::move(*client);
  return agent;
}

}  // namespace picket::proxy::xds
