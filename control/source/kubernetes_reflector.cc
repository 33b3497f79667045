// control/source/kubernetes_reflector.cc — see kubernetes_reflector.h.
#include "control/source/kubernetes_reflector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <utility>

namespace picket::control::source {
namespace {

constexpr size_t kMaxDelays = 64;

// RFC 3986 query component encoding (continue tokens are base64: '+', '/', '=').
std::string QueryEscape(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void DeleteTimer(uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); }

// The code of a metav1.Status (an ERROR event's object), 0 when absent.
int64_t StatusCode(const base::JsonValue& status) {
  auto code = status.Find("code");
  return code ? code->AsInt64().value_or(0) : 0;
}

}  // namespace

KubeReflector::KubeReflector(uv_loop_t* loop, const KindInfo& kind, net::HttpClient* client,
                             BearerToken* token, ReflectorOptions options, uint64_t seed,
                             std::function<void()> on_change)
    : loop_(loop),
      kind_(kind),
      client_(client),
      token_(token),
      options_(std::move(options)),
      rng_(seed),
      on_change_(std::move(on_change)),
      timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

KubeReflector::~KubeReflector() {
  Stop();
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), DeleteTimer);
}

void KubeReflector::Start() {
  if (phase_ != Phase::kIdle) return;
  // Deferred to the loop: on_change never runs inside Start().
  RetryIn(0, Phase::kListing);
  counters_.delays_ms.clear();
}

void KubeReflector::Stop() {
  if (phase_ == Phase::kStopped) return;
  phase_ = Phase::kStopped;
  uv_timer_stop(timer_);
  if (request_ != 0) client_->Cancel(std::exchange(request_, 0));
}

std::string KubeReflector::Describe(const std::string& what) const {
  return std::string(kind_.name) + " " + what;
}

net::HttpClient::RequestId KubeReflector::Send(std::string target, net::HttpClient::Done done,
                                               std::function<void(std::string_view)> on_line) {
  net::HttpClientRequest request;
  request.target = options_.path_prefix + std::move(target);
  request.on_line = std::move(on_line);
  auto token = token_->Get();
  if (!token) {
    // Reported like a failed request (after the current callback returns, via the timer).
    last_error_ = token.error().ToString();
    ++counters_.failures;
    ++counters_.errors_by_code[0];
    const Phase next = phase_ == Phase::kWatching ? Phase::kWatching : Phase::kListing;
    RetryIn(NextBackoff(), next);
    return 0;
  }
  if (!token->empty()) request.headers.emplace_back("Authorization", "Bearer " + *token);
  ++counters_.requests;
  return client_->Send(std::move(request), std::move(done));
}

void KubeReflector::List() {
  phase_ = Phase::kListing;
  std::string target = std::string(kind_.path) + "?limit=" + std::to_string(options_.page_size);
  if (!continue_.empty()) target += "&continue=" + QueryEscape(continue_);
  request_ = Send(std::move(target),
                  [this](base::Result<net::HttpClientResponse> r) { OnListPage(std::move(r)); });
}

void KubeReflector::OnListPage(base::Result<net::HttpClientResponse> result) {
  request_ = 0;
  if (result && result->status == 410 && !continue_.empty()) {
    // "the continue token is too old": the list starts over (Kubernetes API concepts,
    // Retrieving large results sets in chunks).
    ++counters_.relists_410;
    continue_.clear();
    next_.clear();
    List();
    return;
  }
  if (!result || result->status != 200) {
    Fail(result, "list");
    return;
  }
  auto doc = base::ParseJson(result->body);
  if (!doc) {
    Fail(std::unexpected(std::move(doc.error()).Context("list response")), "list");
    return;
  }
  const base::JsonValue root = doc->root();
  auto items = root.Find("items");
  if (!items || !(items->IsArray() || items->IsNull())) {
    Fail(std::unexpected(base::Error::At("items", "list response: must be an array")), "list");
    return;
  }
  for (const base::JsonValue& item : items->Elements()) {
    DecodedObject decoded = DecodeApiObject(kind_, item);
    if (decoded.key.empty() || (!decoded.object && decoded.errors.empty())) continue;  // skipped
    Entry entry;
    entry.errors = std::move(decoded.errors);
    if (decoded.object) {
      entry.good = std::move(decoded.object);
    } else if (auto held = objects_.find(decoded.key); held != objects_.end()) {
      entry.good = held->second.good;  // keep the last good version
    }
    next_[decoded.key] = std::move(entry);
  }
  auto meta = root.Find("metadata");
  const std::string_view more =
      meta && meta->Find("continue") ? meta->Find("continue")->AsString().value_or("") : "";
  if (!more.empty()) {
    continue_ = std::string(more);
    List();
    return;
  }
  continue_.clear();
  resource_version_ = ResourceVersionOf(root);
  ApplyList();
  if (options_.watch) {
    Watch();
  } else {
    phase_ = Phase::kIdle;
  }
}

void KubeReflector::ApplyList() {
  objects_ = std::move(next_);
  next_.clear();
  listed_ = true;
  ++counters_.lists;
  counters_.last_seen_ms = uv_now(loop_);
  attempt_ = 0;
  last_error_.clear();
  Changed();
}

void KubeReflector::Relist() {
  ++counters_.relists_410;
  if (request_ != 0) client_->Cancel(std::exchange(request_, 0));
  resource_version_.clear();
  continue_.clear();
  next_.clear();
  List();
}

void KubeReflector::Watch() {
  phase_ = Phase::kWatching;
  // client-go draws each watch's timeout from [min, 2*min) so that watches do not all end at once.
  const uint32_t timeout =
      options_.watch_timeout_s +
      static_cast<uint32_t>(rng_() % std::max<uint32_t>(options_.watch_timeout_s, 1));
  std::string target =
      std::string(kind_.path) +
      "?watch=1&allowWatchBookmarks=true&resourceVersion=" + QueryEscape(resource_version_) +
      "&timeoutSeconds=" + std::to_string(timeout);
  ++counters_.watches;
  watch_started_ms_ = uv_now(loop_);
  events_at_watch_start_ = counters_.events + counters_.bookmarks;
  request_ = Send(
      std::move(target),
      [this](base::Result<net::HttpClientResponse> r) { OnWatchEnd(std::move(r)); },
      [this](std::string_view line) { OnWatchLine(line); });
}

void KubeReflector::OnWatchLine(std::string_view line) {
  if (line.empty()) return;
  auto doc = base::ParseJson(line);
  std::string_view type;
  std::optional<base::JsonValue> object;
  if (doc) {
    auto t = doc->root().Find("type");
    type = t ? t->AsString().value_or("") : "";
    object = doc->root().Find("object");
  }
  if (!doc || type.empty() || !object || !object->IsObject()) {
    if (request_ != 0) client_->Cancel(std::exchange(request_, 0));
    Fail(std::unexpected(
             base::Error::Of("malformed watch event: " +
                             (doc ? std::string("no type or object") : doc.error().reason))),
         "watch");
    return;
  }
  if (type == "ERROR") {
    const int64_t code = StatusCode(*object);
    if (code == 410) {
      // "the requested resourceVersion is too old" (history compacted): relist.
      Relist();
      return;
    }
    if (request_ != 0) client_->Cancel(std::exchange(request_, 0));
    Fail(std::unexpected(base::Error::Of("watch ERROR event: " + object->ToJson())), "watch");
    return;
  }
  attempt_ = 0;
  const std::string version = ResourceVersionOf(*object);
  if (!version.empty()) resource_version_ = version;
  counters_.last_seen_ms = uv_now(loop_);
  if (type == "BOOKMARK") {
    ++counters_.bookmarks;
    return;
  }
  ++counters_.events;
  DecodedObject decoded = DecodeApiObject(kind_, *object);
  if (decoded.key.empty()) return;
  if (type == "DELETED" || (!decoded.object && decoded.errors.empty())) {
    // Deleted, or now skipped (a pod that finished or lost its IP): no longer in the world.
    if (objects_.erase(decoded.key) > 0) Changed();
    return;
  }
  Entry& entry = objects_[decoded.key];
  entry.errors = std::move(decoded.errors);
  if (decoded.object) entry.good = std::move(decoded.object);
  Changed();
}

void KubeReflector::OnWatchEnd(base::Result<net::HttpClientResponse> result) {
  request_ = 0;
  if (result && result->status == 410) {
    Relist();
    return;
  }
  if (result && result->status == 200) {
    // The server ended the watch (timeoutSeconds): resume from the last version seen. A watch
    // that ends at once with nothing in it would make that a hot loop: back off instead.
    if (counters_.events + counters_.bookmarks == events_at_watch_start_ &&
        uv_now(loop_) - watch_started_ms_ < 1000) {
      ++counters_.failures;
      ++counters_.errors_by_code[0];
      last_error_ = Describe("watch") + ": ended at once without an event";
      RetryIn(NextBackoff(), Phase::kWatching);
      return;
    }
    Watch();
    return;
  }
  Fail(result, "watch");
}

void KubeReflector::Fail(const base::Result<net::HttpClientResponse>& result, std::string what) {
  const Phase next = phase_ == Phase::kWatching ? Phase::kWatching : Phase::kListing;
  uint64_t delay = 0;
  ++counters_.errors_by_code[result ? result->status : 0];
  if (!result) {
    ++counters_.failures;
    last_error_ = Describe(what) + ": " + result.error().ToString();
    delay = NextBackoff();
  } else if (result->status == 429) {
    // Too Many Requests: "wait the number of seconds in Retry-After" (API Priority and Fairness).
    ++counters_.status_429;
    uint64_t seconds = 1;
    if (auto header = result->Header("retry-after")) {
      uint64_t v = 0;
      auto [end, ec] = std::from_chars(header->data(), header->data() + header->size(), v);
      if (ec == std::errc() && end == header->data() + header->size()) seconds = v;
    }
    delay = std::min(seconds * 1000, options_.retry_after_max_ms);
    last_error_ =
        Describe(what) + ": 429 Too Many Requests, retry after " + std::to_string(seconds) + " s";
  } else {
    if (result->status == 401) {
      ++counters_.status_401;
      token_->Invalidate();  // the token may have rotated: read it again
    } else {
      ++counters_.failures;
    }
    std::string body = result->body.substr(0, 300);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    last_error_ = Describe(what) + ": HTTP " + std::to_string(result->status) + ": " + body;
    delay = NextBackoff();
  }
  spdlog::warn("kubernetes: {}; retrying in {} ms", last_error_, delay);
  RetryIn(delay, next);
}

uint64_t KubeReflector::NextBackoff() {
  const uint32_t shift = std::min<uint32_t>(attempt_, 20);
  const uint64_t cap = std::min(options_.backoff_max_ms, options_.backoff_initial_ms << shift);
  ++attempt_;
  // Equal jitter: [cap/2, cap], so replicas spread out and no retry is ever immediate.
  const uint64_t half = cap / 2;
  return half + (half == 0 ? 0 : rng_() % (cap - half + 1));
}

void KubeReflector::RetryIn(uint64_t delay_ms, Phase next) {
  if (phase_ == Phase::kStopped) return;
  phase_ = Phase::kWaiting;
  after_wait_ = next;
  if (counters_.delays_ms.size() == kMaxDelays) {
    counters_.delays_ms.erase(counters_.delays_ms.begin());
  }
  counters_.delays_ms.push_back(delay_ms);
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<KubeReflector*>(t->data)->OnTimer(); }, delay_ms, 0);
}

void KubeReflector::OnTimer() {
  if (phase_ != Phase::kWaiting) return;
  if (after_wait_ == Phase::kWatching && listed_) {
    Watch();
  } else {
    List();
  }
}

void KubeReflector::Changed() {
  if (on_change_) on_change_();
}

}  // namespace picket::control::source
