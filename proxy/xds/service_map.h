// proxy/xds/service_map.h — the sidecar's decoded service map (control/PROTOCOL.md §5.1).
//
// Owns: decoding one pushed `Service` resource (untrusted JSON → ServiceEntry, every field
// checked, errors name the resource and the field) and the immutable lookup structure built from
// all of them: (ClusterIP, port, protocol) → the backends, each an address of the ClusterIP's
// family, the target port on that pod and the pod's "ns/name".
//
// How the proxy uses it: for an outbound connection whose original destination is found by
// Find(), the destination is a Service address; the proxy picks a backend whose (address, port)
// its pod's egress policy allows and connects straight to that backend; when none is allowed
// (or the list is empty) it denies. Egress is never decided against the ClusterIP itself.
//
// A ServiceMap is immutable once built: share it as ServiceMapPtr across threads and swap it in
// one assignment. Decode/Build are pure functions, callable from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "config/model.h"
#include "policy/ip_address.h"

namespace picket::proxy::xds {

// One decoded resource, as the server sent it.
struct ServiceEntry {
  struct BackendPod {
    std::string pod;  // name; namespace is the Service's
    std::vector<policy::IpAddress> ips;
    uint16_t port = 0;
  };
  struct Port {
    std::string name;
    uint16_t port = 0;
    config::Protocol protocol = config::Protocol::kTCP;
    std::vector<BackendPod> backends;
  };
  std::string ns;
  std::string name;
  std::vector<policy::IpAddress> cluster_ips;
  std::vector<Port> ports;
};

// Decodes the payload of resource `resource_name` ("ns/name"). The error is the first problem
// found, `<resource_name>: <field.path>: <reason>` (object = the resource name).
[[nodiscard]] base::Result<ServiceEntry> DecodeServiceEntry(const base::JsonValue& payload,
                                                            std::string_view resource_name);

class ServiceMap {
 public:
  struct Backend {
    policy::IpAddress address;  // the backend pod's IP of the ClusterIP's family
    uint16_t port = 0;          // the resolved target port on that pod
    std::string pod;            // "ns/name", for logs and flow records
  };

  // Indexes every (ClusterIP, port, protocol) of `entries` (keyed by resource name). Two
  // Services claiming the same ClusterIP, port and protocol are an error.
  [[nodiscard]] static base::Result<std::shared_ptr<const ServiceMap>> Build(
      const std::map<std::string, ServiceEntry>& entries);

  // The backends of the Service at `vip`:`port`/`protocol`, in the server's order (by pod
  // name), or nullptr when `vip`:`port` is no Service address. An empty vector means the
  // Service exists but has no backend (deny).
  [[nodiscard]] const std::vector<Backend>* Find(const policy::IpAddress& vip, uint16_t port,
                                                 config::Protocol protocol) const;

  // The Service ("ns/name") at `vip`:`port`/`protocol`, or nullptr.
  [[nodiscard]] const std::string* ServiceName(const policy::IpAddress& vip, uint16_t port,
                                               config::Protocol protocol) const;

  // The decoded resources the map was built from, by resource name ("ns/name").
  const std::map<std::string, ServiceEntry>& entries() const { return entries_; }

  size_t services() const { return services_; }
  size_t addresses() const { return by_address_.size(); }

 private:
  struct Key {
    policy::IpAddress vip;
    uint16_t port = 0;
    config::Protocol protocol = config::Protocol::kTCP;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return policy::IpAddressHash{}(k.vip) ^
             (static_cast<size_t>(k.port) << 2 | static_cast<size_t>(k.protocol)) *
                 0x9e3779b97f4a7c15ull;
    }
  };
  struct Target {
    std::string service;  // "ns/name"
    std::vector<Backend> backends;
  };

  std::unordered_map<Key, Target, KeyHash> by_address_;
  std::map<std::string, ServiceEntry> entries_;
  size_t services_ = 0;
};

using ServiceMapPtr = std::shared_ptr<const ServiceMap>;

}  // namespace picket::proxy::xds
