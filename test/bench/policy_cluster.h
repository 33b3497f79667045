// test/bench/policy_cluster.h — a synthetic but realistic cluster for policy benchmarks.
//
// Owns: SyntheticCluster(namespaces, pods, policies): namespaces labelled env/team, pods with
// app/tier/version labels, dual-stack IPs and named ports (http, metrics, dns), and a mix of
// policies as real clusters have them: default-deny, same-namespace app→app, cross-namespace
// namespaceSelector+podSelector (AND), matchExpressions with NotIn, ipBlocks with excepts (v4
// and v6), named ports and endPort ranges, egress DNS and internet rules. Deterministic.
#pragma once

#include <cstdio>
#include <string>

#include "config/model.h"

namespace picket::bench {

inline std::string Ns(int i) { return "ns-" + std::to_string(i); }

inline std::string PodV4(int ns, int pod) {
  return "10." + std::to_string(ns) + "." + std::to_string(pod / 250) + "." +
         std::to_string(pod % 250 + 1);
}

inline std::string PodV6(int ns, int pod) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "fd00:%x::%x", ns + 1, pod + 1);
  return buf;
}

inline config::LabelSelector Labels(std::initializer_list<std::pair<std::string, std::string>> kv) {
  config::LabelSelector s;
  for (const auto& [k, v] : kv) s.requirements.push_back({k, config::SelectorOperator::kIn, {v}});
  return s;
}

inline config::NetworkPolicyPort TcpPort(uint16_t port, std::optional<uint16_t> end = {}) {
  config::NetworkPolicyPort p;
  p.port = port;
  p.end_port = end;
  return p;
}

inline config::NetworkPolicyPort NamedTcp(const std::string& name) {
  config::NetworkPolicyPort p;
  p.port = name;
  return p;
}

inline config::Pod MakePod(int ns, int j) {
  config::Pod p;
  p.ns = Ns(ns);
  p.name = "pod-" + std::to_string(j);
  p.labels = {{"app", "app-" + std::to_string(j % 20)},
              {"tier", j % 3 == 0   ? "web"
                       : j % 3 == 1 ? "api"
                                    : "db"},
              {"version", j % 2 == 0 ? "v1" : "v2"}};
  p.ips = {PodV4(ns, j), PodV6(ns, j)};
  p.ports = {{"http", 8080, config::Protocol::kTCP},
             {"metrics", static_cast<uint16_t>(9000 + j % 3), config::Protocol::kTCP},
             {"dns", 53, config::Protocol::kUDP}};
  return p;
}

// `policies` spread evenly over the namespaces; kind k = index % 10.
inline config::Cluster SyntheticCluster(int namespaces, int pods, int policies) {
  config::Cluster c;
  for (int i = 0; i < namespaces; ++i) {
    c.namespaces.push_back(config::Namespace{Ns(i),
                                             {{"kubernetes.io/metadata.name", Ns(i)},
                                              {"env", i % 3 == 0   ? "prod"
                                                      : i % 3 == 1 ? "staging"
                                                                   : "dev"},
                                              {"team", "team-" + std::to_string(i % 10)}},
                                             {}});
  }
  const int per_ns = pods / namespaces;
  for (int i = 0; i < namespaces; ++i) {
    for (int j = 0; j < per_ns; ++j) c.pods.push_back(MakePod(i, j));
  }
  for (int n = 0; n < policies; ++n) {
    const int ns = n % namespaces;
    const int k = n / namespaces;  // the policy's index within its namespace
    config::NetworkPolicy p;
    p.ns = Ns(ns);
    p.name = "policy-" + std::to_string(k);
    p.policy_types_ingress = true;
    const std::string app = "app-" + std::to_string(k % 20);
    const std::string peer_app = "app-" + std::to_string((k + 1) % 20);
    config::NetworkPolicyRule rule;
    config::NetworkPolicyPeer peer;
    switch (k % 10) {
      case 0:  // default deny ingress for the namespace
        p.pod_selector = {};
        break;
      case 1:  // app → app in the same namespace on a named port
        p.pod_selector = Labels({{"app", app}});
        peer.pod_selector = Labels({{"app", peer_app}});
        rule.peers.push_back(peer);
        rule.ports.push_back(NamedTcp("http"));
        p.ingress.push_back(rule);
        break;
      case 2:  // api tier of prod namespaces → db tier, AND of both selectors
        p.pod_selector = Labels({{"tier", "db"}, {"app", app}});
        peer.namespace_selector = Labels({{"env", "prod"}});
        peer.pod_selector = Labels({{"tier", "api"}});
        rule.peers.push_back(peer);
        rule.ports.push_back(TcpPort(5432));
        p.ingress.push_back(rule);
        break;
      case 3: {  // egress: internet except the cluster, plus every pod's http
        p.pod_selector = Labels({{"app", app}});
        p.policy_types_egress = true;
        config::NetworkPolicyPeer internet;
        internet.ip_block = config::IpBlock{"0.0.0.0/0", {"10.0.0.0/8", "192.168.0.0/16"}};
        config::NetworkPolicyRule out;
        out.peers.push_back(internet);
        out.ports.push_back(TcpPort(443));
        p.egress.push_back(out);
        config::NetworkPolicyRule http;
        config::NetworkPolicyPeer all;
        all.namespace_selector = config::LabelSelector{};
        http.peers.push_back(all);
        http.ports.push_back(NamedTcp("http"));
        p.egress.push_back(http);
        config::NetworkPolicyRule dns;
        config::NetworkPolicyPeer kube_dns;
        kube_dns.namespace_selector = Labels({{"kubernetes.io/metadata.name", Ns(0)}});
        dns.peers.push_back(kube_dns);
        config::NetworkPolicyPort udp53;
        udp53.protocol = config::Protocol::kUDP;
        udp53.port = uint16_t{53};
        dns.ports.push_back(udp53);
        p.egress.push_back(dns);
        break;
      }
      case 4:  // a team's namespaces → metrics
        p.pod_selector = Labels({{"app", app}});
        peer.namespace_selector = Labels({{"team", "team-" + std::to_string(k % 10)}});
        rule.peers.push_back(peer);
        rule.ports.push_back(NamedTcp("metrics"));
        p.ingress.push_back(rule);
        break;
      case 5: {  // matchExpressions with NotIn, a port range
        p.pod_selector = Labels({{"app", app}});
        config::LabelSelector sel;
        sel.requirements.push_back(
            {"app", config::SelectorOperator::kIn, {peer_app, "app-" + std::to_string(k % 7)}});
        sel.requirements.push_back({"tier", config::SelectorOperator::kNotIn, {"db"}});
        peer.pod_selector = sel;
        rule.peers.push_back(peer);
        rule.ports.push_back(TcpPort(8000, 8100));
        p.ingress.push_back(rule);
        break;
      }
      case 6:  // load balancer range
        p.pod_selector = Labels({{"tier", "web"}, {"app", app}});
        peer.ip_block = config::IpBlock{"192.168.0.0/16", {"192.168.10.0/24"}};
        rule.peers.push_back(peer);
        rule.ports.push_back(TcpPort(80));
        p.ingress.push_back(rule);
        break;
      case 7:  // same namespace, any port
        p.pod_selector = Labels({{"app", app}, {"version", "v1"}});
        peer.pod_selector = config::LabelSelector{};
        rule.peers.push_back(peer);
        p.ingress.push_back(rule);
        break;
      case 8:  // IPv6 block
        p.pod_selector = Labels({{"app", app}});
        peer.ip_block = config::IpBlock{"fd00::/16", {"fd00:1::/32"}};
        rule.peers.push_back(peer);
        rule.ports.push_back(TcpPort(443));
        p.ingress.push_back(rule);
        break;
      case 9:  // monitoring namespace → everything, Exists
        p.pod_selector = {};
        peer.namespace_selector = Labels({{"env", "prod"}});
        peer.pod_selector =
            config::LabelSelector{{{"version", config::SelectorOperator::kExists, {}}}};
        rule.peers.push_back(peer);
        rule.ports.push_back(NamedTcp("metrics"));
        p.ingress.push_back(rule);
        break;
    }
    c.policies.push_back(std::move(p));
  }
  return c;
}

}  // namespace picket::bench
