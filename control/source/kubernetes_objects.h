// control/source/kubernetes_objects.h — Kubernetes API objects → the cluster model.
//
// Owns: the kinds the Kubernetes source reads (`WatchedKinds`: their API paths and list
// kinds), and `DecodeApiObject`, which turns one object of a LIST or WATCH response into a
// config value through the very decoder manifest files go through (config/manifest_loader.h,
// LoadManifestText), so a bad object gets the same `Kind ns/name: field.path: reason` errors.
// List items come without apiVersion and kind (kube-apiserver omits them): they are added.
// Pods the policy engine must not see are skipped, not errors: pods that have no IP yet,
// hostNetwork pods (they carry the node's IP), and pods in phase Succeeded or Failed ("their IPs
// are reused by new pods").
//
// Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "config/model.h"

namespace picket::control::source {

enum class KubeKind { kNamespace, kPod, kNetworkPolicy, kService, kEndpointSlice };

struct KindInfo {
  KubeKind kind;
  const char* name;         // "Pod"
  const char* api_version;  // "v1", "networking.k8s.io/v1"
  const char* path;         // "/api/v1/pods": every namespace
};

// Namespaces, Pods, NetworkPolicies, Services, EndpointSlices: in this order.
const std::vector<KindInfo>& WatchedKinds();

using KubeObject = std::variant<config::Namespace, config::Pod, config::NetworkPolicy,
                                config::Service, config::EndpointSlice>;

struct DecodedObject {
  std::string key;  // "ns/name" ("name" for Namespaces); empty when metadata.name is missing
  std::optional<KubeObject> object;  // nullopt: skipped or erroneous
  std::string skipped;               // why a valid object is not used ("" when it is)
  base::Errors errors;               // `Kind ns/name: field.path: reason`
};

// `object` is one element of a list's `items` or a watch event's `object`.
[[nodiscard]] DecodedObject DecodeApiObject(const KindInfo& kind, const base::JsonValue& object);

// metadata.resourceVersion of an object, list or Status ("" when absent).
std::string ResourceVersionOf(const base::JsonValue& value);

}  // namespace picket::control::source
