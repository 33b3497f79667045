// config/model.h — the plain, immutable C++ values that Kubernetes objects become.
//
// Owns: the data model of Namespace, Pod, NetworkPolicy, Service and EndpointSlice after parsing,
// validation and defaulting. Nothing here parses or validates; `config/manifest_loader.h` produces
// these values and `//policy` consumes them. Plain structs, no behaviour beyond trivial helpers,
// safe to copy and to share read-only across threads.
//
// Empty vs absent (Kubernetes API reference, NetworkPolicyPeer): a peer's `pod_selector` /
// `namespace_selector` are std::optional because nil ("this peer kind is not used") and `{}`
// ("match everything") differ.
// Lists whose absent and empty forms mean the same to Kubernetes (`from`, `to`, `ports`,
// `ingress`, `egress`) are plain vectors. `policy_types` is always defaulted by the loader.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace picket::config {

using Labels = std::map<std::string, std::string>;

enum class Protocol : uint8_t { kTCP, kUDP, kSCTP };

enum class SelectorOperator : uint8_t { kIn, kNotIn, kExists, kDoesNotExist };

struct SelectorRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::kIn;
  std::vector<std::string> values;
};

// A metav1.LabelSelector with matchLabels folded into requirements (`k: v` == `k In [v]`).
// An empty requirement list matches everything.
struct LabelSelector {
  std::vector<SelectorRequirement> requirements;
};

// Where an object came from, for error messages and provenance: `file:line`.
struct SourceLocation {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
};

struct Namespace {
  std::string name;
  Labels labels;  // always contains kubernetes.io/metadata.name=<name> after defaulting
  SourceLocation source;
};

struct ContainerPort {
  std::string name;  // empty when unnamed
  uint16_t container_port = 0;
  Protocol protocol = Protocol::kTCP;
};

struct Pod {
  std::string ns;
  std::string name;
  // metadata.uid as the API server assigned it (empty in hand-written manifests): tells a pod
  // from an earlier one of the same name (certificate issuance, control/csr_server.h).
  std::string uid;
  Labels labels;
  std::vector<ContainerPort> ports;  // from spec.containers[*].ports and initContainers
  std::vector<std::string> ips;      // status.podIPs (or status.podIP), textual, v4 and/or v6
  // status.hostIPs (or status.hostIP): the addresses of the node the pod runs on, textual; empty
  // until scheduled. Traffic from them is always allowed into the pod ("traffic to and from the
  // node where a Pod is running is always allowed", Kubernetes docs, Network Policies).
  std::vector<std::string> host_ips;
  bool host_network = false;
  // Non-empty for a pod the offline commands made from a workload's pod template
  // (LoadOptions::workload_templates): the workload, "Deployment ns/name".
  std::string template_of;
  SourceLocation source;
};

// port: absent, a number, or a name (IntOrString).
struct NetworkPolicyPort {
  Protocol protocol = Protocol::kTCP;  // defaulted to TCP
  std::variant<std::monostate, uint16_t, std::string> port;
  std::optional<uint16_t> end_port;  // inclusive; only with a numeric port
};

struct IpBlock {
  std::string cidr;                 // as written (validated, sloppy-parsed per Kubernetes)
  std::vector<std::string> except;  // each a strict subset of cidr
};

struct NetworkPolicyPeer {
  std::optional<LabelSelector> pod_selector;
  std::optional<LabelSelector> namespace_selector;
  std::optional<IpBlock> ip_block;
};

// One ingress (`from`) or egress (`to`) rule; `peers` empty == all peers, `ports` empty == all.
struct NetworkPolicyRule {
  std::vector<NetworkPolicyPort> ports;
  std::vector<NetworkPolicyPeer> peers;
};

struct NetworkPolicy {
  std::string ns;
  std::string name;
  LabelSelector pod_selector;  // absent is the empty selector
  std::vector<NetworkPolicyRule> ingress;
  std::vector<NetworkPolicyRule> egress;
  bool policy_types_ingress = false;  // after defaulting (SetDefaults_NetworkPolicy)
  bool policy_types_egress = false;
  SourceLocation source;
};

// A Service's port (spec.ports[i]). `target_port` is defaulted to `port` when absent or 0;
// a string is a named port, resolved per backend pod against its container ports.
struct ServicePort {
  std::string name;  // required when the Service has more than one port
  uint16_t port = 0;
  Protocol protocol = Protocol::kTCP;  // defaulted to TCP
  std::variant<uint16_t, std::string> target_port = uint16_t{0};
};

struct Service {
  std::string ns;
  std::string name;
  // spec.clusterIPs (or spec.clusterIP), textual; empty for headless ("None") and ExternalName
  // Services and when not allocated yet.
  std::vector<std::string> cluster_ips;
  std::vector<ServicePort> ports;
  // spec.selector; "If empty or not present, the service is assumed to have an external process
  // managing its endpoints": such a Service has no backends in the service map.
  Labels selector;
  SourceLocation source;
};

// discovery.k8s.io/v1 EndpointSlice: a Service's backends as the EndpointSlice controller (or
// whoever manages them) published them. `ports[].port` is already the target port resolved on the
// endpoints of this slice (a named targetPort differs per slice).
struct EndpointSlicePort {
  std::string name;              // matches the Service port's name
  std::optional<uint16_t> port;  // nil: "ports are not restricted" (we then have no backend port)
  Protocol protocol = Protocol::kTCP;  // defaulted to TCP
};

struct SliceEndpoint {
  std::vector<std::string> addresses;  // textual; of the slice's addressType
  // conditions.ready; "nil should be interpreted as ready" (EndpointConditions).
  bool ready = true;
  std::string target_pod;  // targetRef.name when targetRef.kind is Pod (or absent), else empty
};

struct EndpointSlice {
  std::string ns;
  std::string name;
  std::string service_name;  // label kubernetes.io/service-name; empty: belongs to no Service
  std::string address_type;  // "IPv4", "IPv6" or "FQDN"
  std::vector<SliceEndpoint> endpoints;
  std::vector<EndpointSlicePort> ports;
  SourceLocation source;
};

// Everything one load produced: the cluster state a control server or an offline tool sees.
struct Cluster {
  std::vector<Namespace> namespaces;
  std::vector<Pod> pods;
  std::vector<NetworkPolicy> policies;
  std::vector<Service> services;
  std::vector<EndpointSlice> endpoint_slices;
};

inline const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTCP:
      return "TCP";
    case Protocol::kUDP:
      return "UDP";
    case Protocol::kSCTP:
      return "SCTP";
  }
  return "?";
}

}  // namespace picket::config
