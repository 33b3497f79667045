// control/source/kubernetes_snapshot.h — the cluster's current objects, read once.
//
// Owns: `ReadKubernetesCluster`, for the offline commands (`validate`, `matrix`, `explain`,
// `compile` with `--kubeconfig`): one paginated list per watched kind, through the same
// KubernetesSource (and so the same decoding, skipping and errors) that `serve` watches with,
// on a private loop. Retries follow the source's backoff until `timeout_ms`; then the error
// names each kind that could not be listed and why.
//
// Blocking; any thread (it runs its own loop).
#pragma once

#include <cstdint>

#include "base/error.h"
#include "config/model.h"
#include "control/source/kubernetes_source.h"

namespace picket::control::source {

struct KubernetesSnapshot {
  config::Cluster cluster;
  base::Errors errors;  // objects that did not decode (left out of `cluster`)
};

[[nodiscard]] base::Result<KubernetesSnapshot> ReadKubernetesCluster(
    KubernetesSourceOptions options, uint64_t timeout_ms = 30'000);

}  // namespace picket::control::source
