// control/source/kubernetes_reflector.h — one kind's objects, kept in step with the Kubernetes
// API by list+watch.
//
// Owns: `KubeReflector`, the protocol of "Efficient detection of changes" (Kubernetes API
// concepts) for one kind, in the shape of client-go's Reflector:
//   LIST    paginated (`limit` / `continue`); a `410 Expired` continue token restarts the list.
//           The pages are collected and replace the held objects in one step when the last page
//           arrives, so a relist never shows a smaller world in between.
//   WATCH   from the list's resourceVersion with `allowWatchBookmarks=true` and a
//           `timeoutSeconds` drawn anew for every watch; ADDED / MODIFIED / DELETED update the
//           objects, BOOKMARK only the version. A stream that ends (timeout, a dropped
//           connection) resumes from the last seen or bookmarked version, without a relist.
//           An ERROR event with code 410 ("the requested resourceVersion is too old": history
//           compacted), or a 410 status, means relist.
//   ERRORS  429: wait Retry-After (bounded) before the next request. 401: the token is re-read
//           (it may have rotated) and the request retried after a backoff. 5xx, connection
//           errors and malformed responses: exponential backoff with full jitter, from
//           `backoff_initial_ms` doubling up to `backoff_max_ms`, reset once a list completes or
//           a watch delivers an event. Nothing is ever retried without a delay.
// Objects that fail to decode keep their last good version and carry their errors.
//
// Loop-thread only. `on_change` runs on the loop after the held objects or errors changed
// (never from inside Start()). Stop() before destroying; no callback after it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "control/source/kubeconfig.h"
#include "control/source/kubernetes_objects.h"
#include "net/http_client.h"

namespace picket::control::source {

struct ReflectorOptions {
  std::string path_prefix;  // the server URL's path, if any
  uint32_t page_size = 500;
  uint32_t watch_timeout_s = 300;  // each watch asks for [t, 2t) seconds, as client-go does
  uint64_t backoff_initial_ms = 250;
  uint64_t backoff_max_ms = 30'000;
  uint64_t retry_after_max_ms = 60'000;
  bool watch = true;  // false: list once (offline commands), then stay idle
};

struct ReflectorCounters {
  uint64_t requests = 0;
  uint64_t lists = 0;  // complete lists (the first one included)
  uint64_t watches = 0;
  uint64_t events = 0;
  uint64_t bookmarks = 0;
  uint64_t relists_410 = 0;  // lists forced by 410 (watch or continue token)
  uint64_t status_401 = 0;
  uint64_t status_429 = 0;
  uint64_t failures = 0;  // 5xx, connection and decode failures of a response
  // Every failed request by HTTP status (0: no response — connection, TLS or decode failure).
  std::map<int, uint64_t> errors_by_code;
  // uv_now() of the last sign of life from the API for this kind: a list completed, an event
  // or a bookmark arrived (0: none yet). /stats/prometheus's watch lag is the time since.
  uint64_t last_seen_ms = 0;
  std::vector<uint64_t> delays_ms;  // every wait before a retry, in order (last 64)
};

class KubeReflector {
 public:
  struct Entry {
    std::optional<KubeObject> good;  // the last version that decoded (nullopt: never did)
    base::Errors errors;             // the current version's problems
  };

  KubeReflector(uv_loop_t* loop, const KindInfo& kind, net::HttpClient* client, BearerToken* token,
                ReflectorOptions options, uint64_t seed, std::function<void()> on_change);
  ~KubeReflector();
  KubeReflector(const KubeReflector&) = delete;
  KubeReflector& operator=(const KubeReflector&) = delete;

  void Start();
  void Stop();

  const KindInfo& kind() const { return kind_; }
  bool listed() const { return listed_; }  // a first list completed
  const std::map<std::string, Entry>& objects() const { return objects_; }
  const std::string& resource_version() const { return resource_version_; }
  const ReflectorCounters& counters() const { return counters_; }
  // The last request failure (for logs and /status); empty after a success.
  const std::string& last_error() const { return last_error_; }

 private:
  enum class Phase { kIdle, kListing, kWatching, kWaiting, kStopped };

  void List();
  void OnListPage(base::Result<net::HttpClientResponse> result);
  void Watch();
  void OnWatchLine(std::string_view line);
  void OnWatchEnd(base::Result<net::HttpClientResponse> result);
  void ApplyList();
  void Relist();
  // Handles a non-2xx answer or a failure; schedules the retry of `next`.
  void Fail(const base::Result<net::HttpClientResponse>& result, std::string what);
  void RetryIn(uint64_t delay_ms, Phase next);
  uint64_t NextBackoff();
  void OnTimer();
  net::HttpClient::RequestId Send(std::string target, net::HttpClient::Done done,
                                  std::function<void(std::string_view)> on_line = {});
  void Changed();
  std::string Describe(const std::string& what) const;

  uv_loop_t* loop_;
  const KindInfo kind_;
  net::HttpClient* client_;
  BearerToken* token_;
  const ReflectorOptions options_;
  std::mt19937_64 rng_;
  std::function<void()> on_change_;
  uv_timer_t* timer_;

  Phase phase_ = Phase::kIdle;
  Phase after_wait_ = Phase::kIdle;
  net::HttpClient::RequestId request_ = 0;
  bool listed_ = false;
  std::string resource_version_;
  std::string continue_;               // of the list in progress
  std::map<std::string, Entry> next_;  // pages of the list in progress
  std::map<std::string, Entry> objects_;
  uint32_t attempt_ = 0;                // consecutive failures (backoff exponent)
  uint64_t watch_started_ms_ = 0;       // uv_now() when the current watch was sent
  uint64_t events_at_watch_start_ = 0;  // events + bookmarks then
  std::string last_error_;
  ReflectorCounters counters_;
};

}  // namespace picket::control::source
