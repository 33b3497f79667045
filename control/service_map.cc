// control/service_map.cc — see service_map.h.
#include "control/service_map.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>
#include <variant>

#include "base/json.h"

namespace picket::control {
namespace {

// A Service's selector is a plain equality map (not a LabelSelector).
bool Selects(const config::Labels& selector, const config::Labels& labels) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

// The port on `pod` that `sp` targets, or nullopt when the pod has no container port of that
// name and protocol.
std::optional<uint16_t> ResolveTargetPort(const config::ServicePort& sp, const config::Pod& pod) {
  if (const auto* number = std::get_if<uint16_t>(&sp.target_port)) {
    return *number != 0 ? *number : sp.port;
  }
  const std::string& name = std::get<std::string>(sp.target_port);
  for (const config::ContainerPort& cp : pod.ports) {
    if (cp.name == name && cp.protocol == sp.protocol) return cp.container_port;
  }
  return std::nullopt;
}

using Slices = std::vector<const config::EndpointSlice*>;

// The backends of `sp` from the Service's EndpointSlices: per slice, the slice port of the same
// name and protocol (its number is the target port resolved for that slice's endpoints); every
// ready IP endpoint of the slice (its first address). A pod's addresses from several slices
// (dual-stack: one IPv4 and one IPv6 slice) are merged into one backend; an endpoint without a Pod
// targetRef is named by its first address.
std::vector<ServiceBackendPod> SliceBackends(const config::ServicePort& sp, const Slices& slices) {
  std::map<std::pair<std::string, uint16_t>, std::vector<std::string>> by_pod;
  for (const config::EndpointSlice* slice : slices) {
    if (slice->address_type != "IPv4" && slice->address_type != "IPv6") continue;
    std::optional<uint16_t> target;
    for (const config::EndpointSlicePort& port : slice->ports) {
      if (port.name == sp.name && port.protocol == sp.protocol) target = port.port;
    }
    if (!target) continue;
    for (const config::SliceEndpoint& endpoint : slice->endpoints) {
      if (!endpoint.ready || endpoint.addresses.empty()) continue;
      std::string pod = endpoint.target_pod.empty() ? endpoint.addresses[0] : endpoint.target_pod;
      // "These are all assumed to be fungible and clients may choose to only use the first
      // element" (Endpoint.addresses): the first, and one address per family and pod.
      const std::string& ip = endpoint.addresses[0];
      std::vector<std::string>& ips = by_pod[{std::move(pod), *target}];
      const bool v6 = ip.find(':') != std::string::npos;
      if (std::none_of(ips.begin(), ips.end(), [v6](const std::string& have) {
            return (have.find(':') != std::string::npos) == v6;
          })) {
        ips.push_back(ip);
      }
    }
  }
  std::vector<ServiceBackendPod> out;
  for (auto& [key, ips] : by_pod) out.push_back({key.first, std::move(ips), key.second});
  return out;
}

}  // namespace

std::vector<ServiceMapEntry> ComputeServiceMap(const config::Cluster& cluster) {
  std::vector<ServiceMapEntry> out;
  if (cluster.services.empty()) return out;  // the common case on pod churn: no work
  // Candidate backends by namespace, sorted by name (the entry's backend order).
  std::map<std::string_view, std::vector<const config::Pod*>> pods_by_ns;
  for (const config::Pod& pod : cluster.pods) {
    if (!pod.host_network && !pod.ips.empty()) pods_by_ns[pod.ns].push_back(&pod);
  }
  for (auto& [ns, pods] : pods_by_ns) {
    std::sort(pods.begin(), pods.end(),
              [](const config::Pod* a, const config::Pod* b) { return a->name < b->name; });
  }
  std::map<std::pair<std::string_view, std::string_view>, Slices> slices_by_service;
  for (const config::EndpointSlice& slice : cluster.endpoint_slices) {
    if (!slice.service_name.empty())
      slices_by_service[{slice.ns, slice.service_name}].push_back(&slice);
  }
  const std::vector<const config::Pod*> no_pods;
  for (const config::Service& service : cluster.services) {
    if (service.cluster_ips.empty()) continue;
    auto sliced = slices_by_service.find({service.ns, service.name});
    if (sliced != slices_by_service.end()) {
      ServiceMapEntry entry{service.ns, service.name, service.cluster_ips, {}};
      for (const config::ServicePort& sp : service.ports) {
        entry.ports.push_back({sp.name, sp.port, sp.protocol, SliceBackends(sp, sliced->second)});
      }
      out.push_back(std::move(entry));
      continue;
    }
    if (service.selector.empty()) continue;
    auto in_ns = pods_by_ns.find(service.ns);
    const std::vector<const config::Pod*>& pods =
        in_ns != pods_by_ns.end() ? in_ns->second : no_pods;
    ServiceMapEntry entry{service.ns, service.name, service.cluster_ips, {}};
    for (const config::ServicePort& sp : service.ports) {
      ServiceMapPort port{sp.name, sp.port, sp.protocol, {}};
      for (const config::Pod* pod : pods) {
        if (!Selects(service.selector, pod->labels)) continue;
        if (std::optional<uint16_t> target = ResolveTargetPort(sp, *pod)) {
          port.backends.push_back({pod->name, pod->ips, *target});
        }
      }
      entry.ports.push_back(std::move(port));
    }
    out.push_back(std::move(entry));
  }
  std::sort(out.begin(), out.end(), [](const ServiceMapEntry& a, const ServiceMapEntry& b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
  });
  return out;
}

std::string EncodeServiceMapEntry(const ServiceMapEntry& entry) {
  base::JsonWriter w;
  auto strings = [&w](const std::vector<std::string>& list) {
    w.BeginArray();
    for (const std::string& s : list) w.String(s);
    w.EndArray();
  };
  w.BeginObject().Key("cluster_ips");
  strings(entry.cluster_ips);
  w.Member("name", entry.name).Member("namespace", entry.ns).Key("ports").BeginArray();
  for (const ServiceMapPort& port : entry.ports) {
    w.BeginObject().Key("backends").BeginArray();
    for (const ServiceBackendPod& b : port.backends) {
      w.BeginObject().Key("ips");
      strings(b.ips);
      w.Member("pod", b.pod).Member("port", b.port).EndObject();
    }
    w.EndArray()
        .Member("name", port.name)
        .Member("port", port.port)
        .Member("protocol", config::ProtocolName(port.protocol))
        .EndObject();
  }
  w.EndArray().EndObject();
  return w.Take();
}

}  // namespace picket::control
