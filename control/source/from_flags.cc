// control/source/from_flags.cc — see from_flags.h.
#include "control/source/from_flags.h"

#include "control/source/directory_source.h"

namespace picket::control::source {

base::Result<std::unique_ptr<ManifestSource>> MakeManifestSource(const SourceFlags& flags) {
  if (flags.manifests_dir.empty()) {
    return std::unexpected(base::Error::At("--manifests", "a manifest directory is required"));
  }
  return std::make_unique<DirectorySource>(flags.manifests_dir, flags.debounce_ms,
                                           flags.max_manifest_bytes);
}

}  // namespace picket::control::source
