// control/source/directory_watch.cc — see directory_watch.h.
#include "control/source/directory_watch.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "base/hash.h"
#include "config/manifest_loader.h"

namespace picket::control::source {
namespace {

namespace fs = std::filesystem;

bool IsManifest(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

bool HasNamespacesOrPolicies(const config::Cluster& c) {
  return !c.namespaces.empty() || !c.policies.empty();
}

// ConfigMap volumes' bookkeeping: `..data` and `..<timestamp>/` (see the header).
bool IsVolumeInternal(const std::string& name) { return name.starts_with(".."); }

// The manifest files under `dir`, sorted, each file once (see the header).
std::vector<std::string> ListManifests(const std::string& dir) {
  std::vector<std::string> candidates;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (IsVolumeInternal(name)) {
      it.disable_recursion_pending();
      continue;
    }
    // Editors' temporary files (".x.swp", "x~") are not manifests.
    if (name.starts_with('.') || !IsManifest(it->path())) continue;
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) {  // follows a symlink
      candidates.push_back(it->path().string());
    } else if (it->is_symlink(type_ec)) {
      spdlog::warn("manifests: {}: broken symlink, skipped", it->path().string());
    }
  }
  if (ec) spdlog::warn("manifests: listing {}: {}", dir, ec.message());
  std::sort(candidates.begin(), candidates.end());
  std::vector<std::string> paths;
  std::set<std::string> canonical_seen;
  for (std::string& path : candidates) {
    std::error_code canon_ec;
    const fs::path canonical = fs::canonical(path, canon_ec);
    if (canon_ec) continue;  // removed or re-pointed since it was listed
    if (!canonical_seen.insert(canonical.string()).second) continue;
    paths.push_back(std::move(path));
  }
  return paths;
}

template <typename T>
void Append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

ManifestSet::Result ManifestSet::Reload() {
  Result result;
  result.pods_only = true;
  std::set<std::string> seen;
  for (const std::string& path : ListManifests(dir_)) {
    seen.insert(path);
    File& file = files_[path];
    auto read = config::ReadManifestFile(path, max_file_bytes_);
    if (!read) {
      // Too large or unreadable: keep this file's last good objects; report once per failure.
      const std::string failure = "error:" + read.error().reason;
      if (file.content_hash == failure) continue;
      file.content_hash = failure;
      file.ok = false;
      file.errors = {std::move(read.error())};
      spdlog::error("manifests: {}", file.errors[0].ToString());
      continue;
    }
    const std::string& content = *read;
    const std::string hash = base::HashVersion(content) + ":" + std::to_string(content.size());
    if (file.content_hash == hash) continue;
    file.content_hash = hash;
    ++result.files_loaded;
    auto loaded = config::LoadManifestText(content, path);
    if (!loaded) {
      // Keep this file's last good objects; report what is wrong with the new text.
      file.ok = false;
      file.errors = std::move(loaded.error());
      for (const auto& e : file.errors) spdlog::error("manifests: {}", e.ToString());
      continue;
    }
    if (HasNamespacesOrPolicies(file.good) || HasNamespacesOrPolicies(loaded->cluster)) {
      result.pods_only = false;
    }
    file.ok = true;
    file.errors.clear();
    file.good = std::move(loaded->cluster);
    result.changed = true;
  }
  for (auto it = files_.begin(); it != files_.end();) {
    if (seen.contains(it->first)) {
      ++it;
      continue;
    }
    if (HasNamespacesOrPolicies(it->second.good)) result.pods_only = false;
    result.changed = true;
    it = files_.erase(it);
  }
  return result;
}

config::Cluster ManifestSet::Merged() const {
  config::Cluster out;
  for (const auto& [path, file] : files_) {
    Append(out.namespaces, file.good.namespaces);
    Append(out.pods, file.good.pods);
    Append(out.services, file.good.services);
    Append(out.endpoint_slices, file.good.endpoint_slices);
    Append(out.policies, file.good.policies);
  }
  return out;
}

config::Errors ManifestSet::errors() const {
  config::Errors out;
  for (const auto& [path, file] : files_) Append(out, file.errors);
  return out;
}

struct DirectoryWatcher::Watch {
  uv_fs_event_t handle;
  DirectoryWatcher* owner;
};

base::Result<std::unique_ptr<DirectoryWatcher>> DirectoryWatcher::Create(
    uv_loop_t* loop, std::string dir, uint64_t debounce_ms, std::function<void()> on_change) {
  std::unique_ptr<DirectoryWatcher> w(
      new DirectoryWatcher(loop, std::move(dir), debounce_ms, std::move(on_change)));
  if (auto ok = w->WatchTree(); !ok) {
    bool closed = false;
    w->Close([&closed] { closed = true; });
    while (!closed) uv_run(loop, UV_RUN_ONCE);
    return std::unexpected(ok.error());
  }
  return w;
}

DirectoryWatcher::DirectoryWatcher(uv_loop_t* loop, std::string dir, uint64_t debounce_ms,
                                   std::function<void()> on_change)
    : loop_(loop),
      dir_(std::move(dir)),
      debounce_ms_(debounce_ms),
      on_change_(std::move(on_change)) {
  uv_timer_init(loop_, &debounce_);
  debounce_.data = this;
  open_handles_ = 1;
}

DirectoryWatcher::~DirectoryWatcher() = default;

base::Result<void> DirectoryWatcher::WatchTree() {
  // Linux has no recursive fs events: watch every directory, and pick up new ones on change.
  std::vector<std::string> dirs{dir_};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    // A ConfigMap's `..<timestamp>/` is replaced, never edited: the top directory's watch sees
    // the `..data` rename that publishes a new one.
    if (IsVolumeInternal(it->path().filename().string())) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path().string());
  }
  if (ec) return std::unexpected(base::Error::Of(dir_ + ": " + ec.message()));
  for (const std::string& d : dirs) {
    if (watches_.contains(d)) continue;
    auto* w = new Watch{{}, this};
    uv_fs_event_init(loop_, &w->handle);
    w->handle.data = w;
    ++open_handles_;
    watches_[d] = w;
    const int rc = uv_fs_event_start(
        &w->handle,
        [](uv_fs_event_t* h, const char*, int, int) {
          static_cast<Watch*>(h->data)->owner->OnEvent();
        },
        d.c_str(), 0);
    if (rc < 0) return std::unexpected(base::Error::Of("watch " + d + ": " + uv_strerror(rc)));
  }
  return {};
}

void DirectoryWatcher::OnEvent() {
  if (closing_) return;
  // Debounce: an editor's save is several events; reload once they settle.
  uv_timer_start(
      &debounce_,
      [](uv_timer_t* t) {
        auto* self = static_cast<DirectoryWatcher*>(t->data);
        if (auto ok = self->WatchTree(); !ok) spdlog::warn("manifests: {}", ok.error().ToString());
        self->on_change_();
      },
      debounce_ms_, 0);
}

void DirectoryWatcher::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  if (closing_) return;
  closing_ = true;
  auto on_close = [](uv_handle_t* h) {
    auto* w = static_cast<Watch*>(h->data);
    DirectoryWatcher* owner = w->owner;
    delete w;
    owner->OnHandleClosed();
  };
  for (auto& [dir, w] : watches_) {
    uv_fs_event_stop(&w->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), on_close);
  }
  watches_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&debounce_),
           [](uv_handle_t* h) { static_cast<DirectoryWatcher*>(h->data)->OnHandleClosed(); });
}

void DirectoryWatcher::OnHandleClosed() {
  if (--open_handles_ > 0 || !on_closed_) return;
  auto done = std::move(on_closed_);
  on_closed_ = nullptr;
  done();
}

}  // namespace picket::control::source
