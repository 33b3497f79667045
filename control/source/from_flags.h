// control/source/from_flags.h — the one place a ManifestSource is chosen from `serve`'s flags.
//
// Owns: MakeManifestSource: `--manifests DIR` gives a DirectorySource; `--kubeconfig PATH` or
// `--in-cluster` a KubernetesSource (list+watch of the API server). Exactly one of the three.
// Any thread (constructs only; reads the kubeconfig and its files).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/error.h"
#include "config/manifest_loader.h"
#include "control/source/manifest_source.h"

namespace picket::control::source {

struct SourceFlags {
  std::string manifests_dir;                                       // --manifests
  uint64_t debounce_ms = 20;                                       // --debounce-ms
  uint64_t max_manifest_bytes = config::kDefaultMaxManifestBytes;  // --max-manifest-bytes
  std::string kubeconfig{};                                        // --kubeconfig
  bool in_cluster = false;                                         // --in-cluster
  std::string kube_context{};                                      // --kube-context
  bool kube_insecure_skip_tls_verify = false;  // --kube-insecure-skip-tls-verify
};

[[nodiscard]] base::Result<std::unique_ptr<ManifestSource>> MakeManifestSource(
    const SourceFlags& flags);

}  // namespace picket::control::source
