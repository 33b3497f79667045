// control/source/kubernetes_objects.cc — see kubernetes_objects.h.
#include "control/source/kubernetes_objects.h"

#include "config/manifest_loader.h"

namespace picket::control::source {
namespace {

std::string_view StringAt(const std::optional<base::JsonValue>& v, std::string_view key) {
  if (!v) return {};
  auto found = v->Find(key);
  if (!found) return {};
  return found->AsString().value_or(std::string_view());
}

// The object as a manifest document: apiVersion and kind first (list items lack them).
std::string ManifestText(const KindInfo& kind, const base::JsonValue& object) {
  base::JsonWriter w;
  w.BeginObject().Member("apiVersion", kind.api_version).Member("kind", kind.name);
  for (const base::JsonMember& m : object.Members()) {
    if (m.key == "apiVersion" || m.key == "kind") continue;
    // NetworkPolicy's alpha `status` (Kubernetes 1.24–1.27, always empty) is not part of v1's
    // schema as the decoder holds it.
    if (kind.kind == KubeKind::kNetworkPolicy && m.key == "status") continue;
    w.Key(m.key).Value(m.value);
  }
  w.EndObject();
  return w.Take();
}

template <typename T>
std::optional<KubeObject> Take(std::vector<T>& items) {
  if (items.size() != 1) return std::nullopt;
  items[0].source = config::SourceLocation{"kubernetes", 0};
  return KubeObject(std::move(items[0]));
}

}  // namespace

const std::vector<KindInfo>& WatchedKinds() {
  static const std::vector<KindInfo> kinds = {
      {KubeKind::kNamespace, "Namespace", "v1", "/api/v1/namespaces"},
      {KubeKind::kPod, "Pod", "v1", "/api/v1/pods"},
      {KubeKind::kNetworkPolicy, "NetworkPolicy", "networking.k8s.io/v1",
       "/apis/networking.k8s.io/v1/networkpolicies"},
      {KubeKind::kService, "Service", "v1", "/api/v1/services"},
      {KubeKind::kEndpointSlice, "EndpointSlice", "discovery.k8s.io/v1",
       "/apis/discovery.k8s.io/v1/endpointslices"},
  };
  return kinds;
}

std::string ResourceVersionOf(const base::JsonValue& value) {
  return std::string(StringAt(value.Find("metadata"), "resourceVersion"));
}

DecodedObject DecodeApiObject(const KindInfo& kind, const base::JsonValue& object) {
  DecodedObject out;
  const std::optional<base::JsonValue> meta = object.Find("metadata");
  const std::string_view name = StringAt(meta, "name");
  const std::string_view ns = StringAt(meta, "namespace");
  if (!name.empty()) {
    out.key = kind.kind == KubeKind::kNamespace ? std::string(name)
                                                : std::string(ns) + "/" + std::string(name);
  }
  if (!object.IsObject()) {
    out.errors.push_back(base::Error::Of(std::string(kind.name) + ": not a JSON object"));
    return out;
  }
  if (kind.kind == KubeKind::kPod) {
    // "Pods in phase Succeeded or Failed ... their IPs may be reused": never enforce on them.
    const std::string_view phase = StringAt(object.Find("status"), "phase");
    if (phase == "Succeeded" || phase == "Failed") {
      out.skipped = "phase " + std::string(phase);
      return out;
    }
  }
  auto loaded = config::LoadManifestText(ManifestText(kind, object), "");
  if (!loaded) {
    out.errors = std::move(loaded.error());
    for (base::Error& e : out.errors) e.line = 0;  // one JSON line: its number says nothing
    return out;
  }
  config::Cluster& c = loaded->cluster;
  switch (kind.kind) {
    case KubeKind::kNamespace:
      out.object = Take(c.namespaces);
      break;
    case KubeKind::kPod:
      if (c.pods.size() == 1 && c.pods[0].host_network) {
        out.skipped = "hostNetwork";
      } else if (c.pods.size() == 1 && c.pods[0].ips.empty()) {
        out.skipped = "no IP yet";
      } else {
        out.object = Take(c.pods);
      }
      break;
    case KubeKind::kNetworkPolicy:
      out.object = Take(c.policies);
      break;
    case KubeKind::kService:
      out.object = Take(c.services);
      break;
    case KubeKind::kEndpointSlice:
      out.object = Take(c.endpoint_slices);
      break;
  }
  if (!out.object && out.skipped.empty()) {
    out.errors.push_back(base::Error::Of(std::string(kind.name) + " " + out.key +
                                         ": the decoder produced no object"));
  }
  return out;
}

}  // namespace picket::control::source
