// control/source/directory_source.h — a directory of manifest files as a ManifestSource.
//
// Owns: `DirectorySource`: a ManifestSet and a DirectoryWatcher (control/source/directory_watch.h,
// which says what counts as a manifest: ConfigMap volumes' `..data` bookkeeping is skipped, a
// file behind several symlinks is read once). Start() watches the directory, then reads it and
// delivers the first state before returning; every debounced change re-reads it (only files
// whose bytes changed are parsed) and delivers an update.
//
// Loop-thread only; see manifest_source.h for the lifecycle.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "control/source/directory_watch.h"
#include "control/source/manifest_source.h"

namespace picket::control::source {

class DirectorySource final : public ManifestSource {
 public:
  // Files over `max_file_bytes` are refused (see ManifestSet).
  DirectorySource(std::string dir, uint64_t debounce_ms,
                  uint64_t max_file_bytes = config::kDefaultMaxManifestBytes);
  ~DirectorySource() override;
  DirectorySource(const DirectorySource&) = delete;
  DirectorySource& operator=(const DirectorySource&) = delete;

  [[nodiscard]] base::Result<void> Start(uv_loop_t* loop, OnUpdate on_update) override;
  void Refresh() override;
  void Close(std::function<void()> done) override;
  std::string Describe() const override { return "directory " + dir_; }
  size_t unit_count() const override { return set_.file_count(); }

 private:
  const std::string dir_;
  const uint64_t debounce_ms_;
  ManifestSet set_;
  std::unique_ptr<DirectoryWatcher> watcher_;
  OnUpdate on_update_;
  bool delivered_ = false;  // a first state was delivered
  bool closed_ = false;
};

}  // namespace picket::control::source
