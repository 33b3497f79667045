// test/policy/cluster_builder.h — terse construction of config::Cluster values for tests.
//
// Owns: helpers that build Namespaces, Pods and NetworkPolicies exactly as the manifest loader
// would after defaulting (namespaces carry kubernetes.io/metadata.name; protocol defaults to
// TCP; policy types must be set explicitly, as the loader's defaulting would). Test-only.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "config/model.h"

namespace picket::policy::testing {

inline config::LabelSelector Sel(std::initializer_list<std::pair<std::string, std::string>> kv) {
  config::LabelSelector s;
  for (const auto& [k, v] : kv) s.requirements.push_back({k, config::SelectorOperator::kIn, {v}});
  return s;
}

inline config::LabelSelector Expr(std::string key, config::SelectorOperator op,
                                  std::vector<std::string> values = {}) {
  config::LabelSelector s;
  s.requirements.push_back({std::move(key), op, std::move(values)});
  return s;
}

inline config::NetworkPolicyPeer PodPeer(config::LabelSelector pods) {
  config::NetworkPolicyPeer p;
  p.pod_selector = std::move(pods);
  return p;
}

inline config::NetworkPolicyPeer NsPeer(config::LabelSelector ns) {
  config::NetworkPolicyPeer p;
  p.namespace_selector = std::move(ns);
  return p;
}

inline config::NetworkPolicyPeer NsPodPeer(config::LabelSelector ns, config::LabelSelector pods) {
  config::NetworkPolicyPeer p;
  p.namespace_selector = std::move(ns);
  p.pod_selector = std::move(pods);
  return p;
}

inline config::NetworkPolicyPeer IpPeer(std::string cidr, std::vector<std::string> except = {}) {
  config::NetworkPolicyPeer p;
  p.ip_block = config::IpBlock{std::move(cidr), std::move(except)};
  return p;
}

inline config::NetworkPolicyPort Port(uint16_t port,
                                      config::Protocol protocol = config::Protocol::kTCP) {
  config::NetworkPolicyPort p;
  p.protocol = protocol;
  p.port = port;
  return p;
}

inline config::NetworkPolicyPort PortRange(uint16_t port, uint16_t end,
                                           config::Protocol protocol = config::Protocol::kTCP) {
  config::NetworkPolicyPort p = Port(port, protocol);
  p.end_port = end;
  return p;
}

inline config::NetworkPolicyPort NamedPort(std::string name,
                                           config::Protocol protocol = config::Protocol::kTCP) {
  config::NetworkPolicyPort p;
  p.protocol = protocol;
  p.port = std::move(name);
  return p;
}

inline config::NetworkPolicyPort AllPorts(config::Protocol protocol = config::Protocol::kTCP) {
  config::NetworkPolicyPort p;
  p.protocol = protocol;
  return p;
}

inline config::NetworkPolicyRule Rule(std::vector<config::NetworkPolicyPeer> peers,
                                      std::vector<config::NetworkPolicyPort> ports = {}) {
  return config::NetworkPolicyRule{std::move(ports), std::move(peers)};
}

class ClusterBuilder {
 public:
  ClusterBuilder& Namespace(std::string name, config::Labels labels = {}) {
    labels["kubernetes.io/metadata.name"] = name;
    cluster_.namespaces.push_back(config::Namespace{std::move(name), std::move(labels), {}});
    return *this;
  }

  ClusterBuilder& Pod(std::string ns, std::string name, config::Labels labels,
                      std::vector<std::string> ips, std::vector<config::ContainerPort> ports = {},
                      bool host_network = false) {
    config::Pod p;
    p.ns = std::move(ns);
    p.name = std::move(name);
    p.labels = std::move(labels);
    p.ips = std::move(ips);
    p.ports = std::move(ports);
    p.host_network = host_network;
    cluster_.pods.push_back(std::move(p));
    return *this;
  }

  // Sets the node addresses (status.hostIPs) of the pod added last.
  ClusterBuilder& OnNode(std::vector<std::string> host_ips) {
    cluster_.pods.back().host_ips = std::move(host_ips);
    return *this;
  }

  // Ingress-only policy (policyTypes [Ingress]).
  ClusterBuilder& Ingress(std::string ns, std::string name, config::LabelSelector selector,
                          std::vector<config::NetworkPolicyRule> rules) {
    return Policy(std::move(ns), std::move(name), std::move(selector), std::move(rules), {}, true,
                  false);
  }

  // Egress-only policy (policyTypes [Egress]).
  ClusterBuilder& Egress(std::string ns, std::string name, config::LabelSelector selector,
                         std::vector<config::NetworkPolicyRule> rules) {
    return Policy(std::move(ns), std::move(name), std::move(selector), {}, std::move(rules), false,
                  true);
  }

  ClusterBuilder& Policy(std::string ns, std::string name, config::LabelSelector selector,
                         std::vector<config::NetworkPolicyRule> ingress,
                         std::vector<config::NetworkPolicyRule> egress, bool types_ingress,
                         bool types_egress) {
    config::NetworkPolicy p;
    p.ns = std::move(ns);
    p.name = std::move(name);
    p.pod_selector = std::move(selector);
    p.ingress = std::move(ingress);
    p.egress = std::move(egress);
    p.policy_types_ingress = types_ingress;
    p.policy_types_egress = types_egress;
    cluster_.policies.push_back(std::move(p));
    return *this;
  }

  const config::Cluster& Build() const { return cluster_; }

 private:
  config::Cluster cluster_;
};

}  // namespace picket::policy::testing
