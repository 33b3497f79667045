// control/source/from_flags.cc — see from_flags.h.
#include "control/source/from_flags.h"

#include "control/source/directory_source.h"
#include "control/source/kubeconfig.h"
#include "control/source/kubernetes_source.h"

namespace picket::control::source {

base::Result<std::unique_ptr<ManifestSource>> MakeManifestSource(const SourceFlags& flags) {
  const int chosen = (flags.manifests_dir.empty() ? 0 : 1) + (flags.kubeconfig.empty() ? 0 : 1) +
                     (flags.in_cluster ? 1 : 0);
  if (chosen != 1) {
    return std::unexpected(base::Error::At(
        "--manifests", chosen == 0 ? "a source is required: --manifests DIR, --kubeconfig PATH "
                                     "or --in-cluster"
                                   : "give one source: --manifests, --kubeconfig or --in-cluster"));
  }
  if (!flags.manifests_dir.empty()) {
    return std::make_unique<DirectorySource>(flags.manifests_dir, flags.debounce_ms,
                                             flags.max_manifest_bytes);
  }
  auto config = flags.in_cluster
                    ? LoadInCluster()
                    : LoadKubeconfig(flags.kubeconfig,
                                     {.context = flags.kube_context,
                                      .allow_insecure = flags.kube_insecure_skip_tls_verify});
  if (!config) return std::unexpected(config.error());
  KubernetesSourceOptions options;
  options.config = std::move(*config);
  options.debounce_ms = flags.debounce_ms;
  auto source = KubernetesSource::Create(std::move(options));
  if (!source) return std::unexpected(source.error());
  return std::unique_ptr<ManifestSource>(std::move(*source));
}

}  // namespace picket::control::source
