// proxy/service_pick.h — egress to a Service address: which backend the connection goes to.
//
// Owns: `PickServiceBackend`, the one decision for an outbound connection whose original
// destination is a Service address (proxy/xds/service_map.h): starting at a rotating index, the
// first backend the pod's egress policy allows is the connection's destination; when none is
// allowed, or the Service has no backend, the connection is denied (kPolicyDenied). The ClusterIP
// itself is never checked against policy.
//
// Pure function; the caller (a worker, on its loop thread) owns the rotation counter.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "filters/filter.h"
#include "policy/endpoint_policy.h"
#include "proxy/xds/service_map.h"

namespace picket::proxy {

struct ServicePick {
  std::shared_ptr<const filters::ServiceAddress> service;
  std::optional<filters::Endpoint> backend;  // the chosen backend; unset: denied
  filters::FilterResult denial;              // kDeny with the reason, when !backend
};

// nullopt when `destination` is no Service address of `services` (decide as usual). `rotation`
// is advanced once per pick, so successive connections spread over the allowed backends.
[[nodiscard]] std::optional<ServicePick> PickServiceBackend(const xds::ServiceMap& services,
                                                            const policy::EndpointPolicy& policy,
                                                            const filters::Endpoint& destination,
                                                            config::Protocol protocol,
                                                            uint64_t& rotation);

}  // namespace picket::proxy
