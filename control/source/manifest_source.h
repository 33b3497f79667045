// control/source/manifest_source.h — where the control server's cluster state comes from.
//
// Owns: `ManifestSource`, the seam between the control server (control/serve.h) and whatever
// holds the cluster's objects: a manifest directory today (control/source/directory_source.h),
// the Kubernetes API's list+watch next. A source reads, decodes and validates; it delivers
// whole cluster states — never a partial one — and precise errors. Objects that stop
// validating keep their last good version in the states it delivers, so one bad edit stops
// nothing else; the server keeps serving its last good compiled state whatever happens here.
//
// Readiness is the server's: it is ready once it has applied the first state a source
// delivered (a directory source delivers during Start(); a watch source after its first list).
//
// Threads: loop-thread only. Start() once; `on_update` runs on the loop (possibly before
// Start() returns). Close() and run the loop until `done` before destroying; no update is
// delivered after Close().
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "config/model.h"

namespace picket::control::source {

struct SourceUpdate {
  // The whole new state, or nullopt when nothing that validates changed (only `errors` did).
  std::optional<config::Cluster> cluster;
  // Only Pods changed since the source's previous state: the server may update incrementally.
  bool pods_only = false;
  // The source's current problems, all of them (empty: none). Each names its object and field.
  base::Errors errors;
  // Units read again for this update (files for a directory, objects for a watch): for the log.
  size_t parsed = 0;
};

// One watched kind's health, for /stats/prometheus (a watch source; a directory has none).
struct SourceKindMetrics {
  std::string kind;  // "Pod", "NetworkPolicy", ...
  bool listed = false;
  size_t objects = 0;
  uint64_t lists = 0;
  uint64_t watches = 0;
  uint64_t events = 0;
  uint64_t bookmarks = 0;
  uint64_t relists_410 = 0;
  std::map<int, uint64_t> errors_by_code;  // failed requests by HTTP status; 0: no response
  // Milliseconds since the last list, event or bookmark of this kind; nullopt: none yet.
  std::optional<uint64_t> since_last_seen_ms;
};

class ManifestSource {
 public:
  using OnUpdate = std::function<void(SourceUpdate)>;

  virtual ~ManifestSource() = default;

  // Begins delivering updates on `loop`. An error means nothing will be delivered (e.g. the
  // directory cannot be watched); Close() is still required.
  [[nodiscard]] virtual base::Result<void> Start(uv_loop_t* loop, OnUpdate on_update) = 0;
  // Asks for a fresh read now (a directory re-reads; a watch may ignore it).
  virtual void Refresh() = 0;
  virtual void Close(std::function<void()> done) = 0;

  // For /status: what the source reads ("directory /etc/picket/manifests") and how many units
  // (files, objects) its current state comes from.
  virtual std::string Describe() const = 0;
  virtual size_t unit_count() const = 0;
  // Extra members of /status's "manifests" object, the source's own health (a watch source: per
  // kind, listed or not, its resourceVersion, relists, API errors). Default: none.
  virtual void WriteStatusMembers(base::JsonWriter& /*w*/) const {}
  // Per watched kind (empty: the source watches no API).
  virtual std::vector<SourceKindMetrics> KindMetrics() const { return {}; }
};

}  // namespace picket::control::source
