// control/source/directory_watch.h — a manifest directory: loaded per file, last good kept,
// watched for changes. The parts of DirectorySource (control/source/directory_source.h).
//
// Owns: `ManifestSet` (every manifest file under a directory, each with the cluster objects of
// its last successful load and its current errors — a file that stops validating keeps its last
// good objects, so one bad edit stops nothing else) and `DirectoryWatcher` (uv_fs_event on the
// directory and each subdirectory, debounced, so a burst of writes becomes one reload).
//
// What is a manifest: a regular file (or a symlink to one) named *.yaml, *.yml or *.json whose
// name does not start with '.' (editors' temporary files). Names starting with ".." are never
// read nor descended into: a Kubernetes ConfigMap volume keeps its data in `..<timestamp>/`,
// points `..data` at it and exposes each key as `key -> ..data/key`; reading both would load
// every object twice. A file reached through several symlinks is read once (by its canonical
// path; the first path in sorted order names it). Symlinks to directories are not followed,
// so a link loop cannot make a reload run forever. A ConfigMap update re-points `..data`
// (a rename in the top directory): the top directory's watch sees it and the reload reads the
// new contents through the unchanged `key` links.
//
// Loop-thread only. DirectoryWatcher: Close() and run the loop until `done` before destroying.
#pragma once

#include <uv.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "config/error.h"
#include "config/manifest_loader.h"
#include "config/model.h"

namespace picket::control::source {

class ManifestSet {
 public:
  // Files over `max_file_bytes` are refused unread (`file: too large: ...`), keeping their last
  // good objects.
  explicit ManifestSet(std::string dir, uint64_t max_file_bytes = config::kDefaultMaxManifestBytes)
      : dir_(std::move(dir)), max_file_bytes_(max_file_bytes) {}

  struct Result {
    bool changed = false;     // some file's objects changed
    bool pods_only = false;   // ... and only Pods (no Namespace or NetworkPolicy) were involved
    size_t files_loaded = 0;  // files parsed again (their bytes changed)
  };
  // Re-reads the directory; only files whose bytes changed are parsed again.
  Result Reload();

  // All objects of every file's last good load, files in path order.
  config::Cluster Merged() const;
  // Current problems: files that failed to load (their last good objects are still in use).
  config::Errors errors() const;
  size_t file_count() const { return files_.size(); }

 private:
  struct File {
    std::string content_hash;
    bool ok = false;
    config::Cluster good;  // last successful load (empty if it never loaded)
    config::Errors errors;
  };
  std::string dir_;
  uint64_t max_file_bytes_;
  std::map<std::string, File> files_;
};

class DirectoryWatcher {
 public:
  [[nodiscard]] static base::Result<std::unique_ptr<DirectoryWatcher>> Create(
      uv_loop_t* loop, std::string dir, uint64_t debounce_ms, std::function<void()> on_change);
  ~DirectoryWatcher();
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

  void Close(std::function<void()> done);

 private:
  struct Watch;
  DirectoryWatcher(uv_loop_t* loop, std::string dir, uint64_t debounce_ms,
                   std::function<void()> on_change);
  [[nodiscard]] base::Result<void> WatchTree();
  void OnEvent();
  void OnHandleClosed();

  uv_loop_t* loop_;
  std::string dir_;
  uint64_t debounce_ms_;
  std::function<void()> on_change_;
  uv_timer_t debounce_{};
  std::map<std::string, Watch*> watches_;  // by directory path
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace picket::control::source
