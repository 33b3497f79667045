// control/source/from_flags.h — the one place a ManifestSource is chosen from `serve`'s flags.
//
// Owns: MakeManifestSource. Today `--manifests DIR` gives a DirectorySource; the Kubernetes
// API source (list+watch) will be the second branch here. Any thread (constructs only).
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
};

[[nodiscard]] base::Result<std::unique_ptr<ManifestSource>> MakeManifestSource(
    const SourceFlags& flags);

}  // namespace picket::control::source
