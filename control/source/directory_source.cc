// control/source/directory_source.cc — see directory_source.h.
#include "control/source/directory_source.h"

#include <utility>

namespace picket::control::source {

DirectorySource::DirectorySource(std::string dir, uint64_t debounce_ms, uint64_t max_file_bytes)
    : dir_(std::move(dir)), debounce_ms_(debounce_ms), set_(dir_, max_file_bytes) {}

DirectorySource::~DirectorySource() = default;

base::Result<void> DirectorySource::Start(uv_loop_t* loop, OnUpdate on_update) {
  on_update_ = std::move(on_update);
  // Watch first, then read: a change between the two is seen by the watch, not lost.
  auto watcher = DirectoryWatcher::Create(loop, dir_, debounce_ms_, [this] { Refresh(); });
  if (!watcher) return std::unexpected(std::move(watcher.error()).Context("manifests"));
  watcher_ = std::move(*watcher);
  Refresh();
  return {};
}

void DirectorySource::Refresh() {
  if (closed_ || !on_update_) return;
  const ManifestSet::Result result = set_.Reload();
  SourceUpdate update;
  update.errors = set_.errors();
  update.parsed = result.files_loaded;
  if (result.changed || !delivered_) {
    update.cluster = set_.Merged();
    update.pods_only = result.pods_only && delivered_;
    delivered_ = true;
  }
  on_update_(std::move(update));
}

void DirectorySource::Close(std::function<void()> done) {
  closed_ = true;
  if (watcher_) {
    watcher_->Close(std::move(done));
  } else if (done) {
    done();
  }
}

}  // namespace picket::control::source
