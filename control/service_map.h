// control/service_map.h — Services → the service map the control server pushes
// (control/PROTOCOL.md §5, type `type.picket.dev/picket.v1.Service`).
//
// Owns: for each Service with a ClusterIP, its backends per port. A Service that has
// EndpointSlices (label kubernetes.io/service-name, same namespace) takes them from the slices:
// for each Service port the slice port of the same name and protocol gives the target port (the
// EndpointSlice controller resolved a named targetPort per slice), and every endpoint whose
// conditions.ready is not false is a backend (IPv4 and IPv6 slices of one pod merge into one
// backend; FQDN slices give none). Otherwise (no slices, e.g. plain manifest files) the backends
// are the pods of the Service's namespace whose labels contain every selector pair, that have an
// IP and do not use the host network, each with the target port resolved on that pod (a named
// targetPort is the pod's containerPort of that name and the port's protocol; a pod without it is
// not a backend of that port). "If empty or not present, the service is assumed to have an
// external process managing its endpoints": a Service with neither slices nor a selector, and a
// headless one, has no entry.
// Pure functions over plain values; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/model.h"

namespace picket::control {

struct ServiceBackendPod {
  std::string pod;  // name (the namespace is the Service's); a slice endpoint without a Pod
                    // targetRef: its first address
  std::vector<std::string> ips;  // the pod's IPs (v4 and/or v6), textual
  uint16_t port = 0;             // the resolved target port on this pod
  friend bool operator==(const ServiceBackendPod&, const ServiceBackendPod&) = default;
};

struct ServiceMapPort {
  std::string name;
  uint16_t port = 0;
  config::Protocol protocol = config::Protocol::kTCP;
  std::vector<ServiceBackendPod> backends;  // sorted by pod name (then port)
  friend bool operator==(const ServiceMapPort&, const ServiceMapPort&) = default;
};

struct ServiceMapEntry {
  std::string ns;
  std::string name;
  std::vector<std::string> cluster_ips;
  std::vector<ServiceMapPort> ports;
  std::string Key() const { return ns + "/" + name; }
  friend bool operator==(const ServiceMapEntry&, const ServiceMapEntry&) = default;
};

// One entry per Service that has at least one ClusterIP and EndpointSlices or a selector, sorted by
// ns/name.
[[nodiscard]] std::vector<ServiceMapEntry> ComputeServiceMap(const config::Cluster& cluster);

// The resource payload's JSON text (PROTOCOL.md §5), keys in sorted order:
//   {"cluster_ips": [ip…], "name": name, "namespace": ns,
//    "ports": [{"backends": [{"ips": [ip…], "pod": pod, "port": target}],
//               "name": n, "port": p, "protocol": "TCP"}]}
[[nodiscard]] std::string EncodeServiceMapEntry(const ServiceMapEntry& entry);

}  // namespace picket::control
