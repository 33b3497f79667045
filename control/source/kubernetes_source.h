// control/source/kubernetes_source.h — the Kubernetes API as a ManifestSource (list+watch).
//
// Owns: `KubernetesSource`: one HTTPS client to the API server (net/http_client.h; the server
// verified with the kubeconfig's CA, a bearer token re-read when it rotates and after a 401, or a
// client certificate) and one KubeReflector per watched kind (kubernetes_objects.h:
// Namespaces, Pods, NetworkPolicies, Services), each listing then watching its kind
// (kubernetes_reflector.h). It delivers whole cluster states, never a partial one: nothing until
// every kind has completed its first list (so readiness, serve's /ready, means "the first full
// list is applied"), then one update per burst of changes (coalesced on the loop) built from
// every kind's held objects. A kind's relist replaces its objects in one step, so no update ever
// shows a smaller world in between. Objects that do not decode keep their last good version and
// are reported as errors (`Kind ns/name: field.path: reason`).
//
// Loop-thread only; see manifest_source.h for the lifecycle.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "control/source/kubeconfig.h"
#include "control/source/kubernetes_reflector.h"
#include "control/source/manifest_source.h"
#include "net/http_client.h"
#include "net/tls.h"

namespace picket::control::source {

struct KubernetesSourceOptions {
  KubeConfig config;
  ReflectorOptions reflector;  // path_prefix is taken from `config`
  uint64_t connect_timeout_ms = 10'000;
  uint64_t response_timeout_ms = 60'000;  // a list page
  uint64_t debounce_ms = 0;               // 0: coalesce what one loop turn brought
  uint64_t seed = 0;                      // jitter and watch timeouts; 0: random
};

class KubernetesSource final : public ManifestSource {
 public:
  // Builds the TLS context (errors for unusable PEM data name what was wrong).
  [[nodiscard]] static base::Result<std::unique_ptr<KubernetesSource>> Create(
      KubernetesSourceOptions options);
  ~KubernetesSource() override;
  KubernetesSource(const KubernetesSource&) = delete;
  KubernetesSource& operator=(const KubernetesSource&) = delete;

  [[nodiscard]] base::Result<void> Start(uv_loop_t* loop, OnUpdate on_update) override;
  void Refresh() override {}  // a watch is always current
  void Close(std::function<void()> done) override;
  std::string Describe() const override { return "kubernetes " + options_.config.describe; }
  size_t unit_count() const override;
  // "kinds": [{kind, listed, resource_version, objects, lists, watches, events, bookmarks,
  // relists_410, status_401, status_429, failures, last_error}, ...]
  void WriteStatusMembers(base::JsonWriter& w) const override;
  std::vector<SourceKindMetrics> KindMetrics() const override;

  // Per kind, in WatchedKinds() order (empty before Start()).
  const std::vector<std::unique_ptr<KubeReflector>>& reflectors() const { return reflectors_; }
  uint64_t updates_delivered() const { return updates_; }
  const net::HttpClient* client() const { return client_.get(); }

 private:
  KubernetesSource(KubernetesSourceOptions options, std::shared_ptr<net::TlsContext> tls);
  void OnChange(KubeKind kind);
  void Deliver();

  KubernetesSourceOptions options_;
  std::shared_ptr<net::TlsContext> tls_;
  BearerToken token_;
  uv_loop_t* loop_ = nullptr;
  OnUpdate on_update_;
  std::unique_ptr<net::HttpClient> client_;
  std::vector<std::unique_ptr<KubeReflector>> reflectors_;
  uv_timer_t* debounce_ = nullptr;
  std::set<KubeKind> dirty_;
  size_t changes_ = 0;  // object changes (and completed lists) since the last update
  bool delivered_ = false;
  bool closed_ = false;
  uint64_t updates_ = 0;
};

}  // namespace picket::control::source
