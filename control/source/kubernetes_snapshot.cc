// control/source/kubernetes_snapshot.cc — see kubernetes_snapshot.h.
#include "control/source/kubernetes_snapshot.h"

#include <uv.h>

#include <optional>
#include <utility>

namespace picket::control::source {

base::Result<KubernetesSnapshot> ReadKubernetesCluster(KubernetesSourceOptions options,
                                                       uint64_t timeout_ms) {
  options.reflector.watch = false;
  auto source = KubernetesSource::Create(std::move(options));
  if (!source) return std::unexpected(source.error());
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t deadline;
  uv_timer_init(&loop, &deadline);
  bool timed_out = false;
  deadline.data = &timed_out;
  uv_timer_start(
      &deadline, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, timeout_ms, 0);
  std::optional<SourceUpdate> first;
  base::Result<void> started = (*source)->Start(&loop, [&](SourceUpdate u) {
    if (!first) first = std::move(u);
  });
  while (started && !first && !timed_out) uv_run(&loop, UV_RUN_ONCE);

  base::Result<KubernetesSnapshot> out = std::unexpected(base::Error::Of(""));
  if (!started) {
    out = std::unexpected(started.error());
  } else if (first && first->cluster) {
    out = KubernetesSnapshot{std::move(*first->cluster), std::move(first->errors)};
  } else {
    std::string why;
    for (const auto& r : (*source)->reflectors()) {
      if (r->listed()) continue;
      if (!why.empty()) why += "; ";
      why +=
          r->last_error().empty() ? std::string(r->kind().name) + ": no answer" : r->last_error();
    }
    out = std::unexpected(base::Error::Of((*source)->Describe() + ": no complete list within " +
                                          std::to_string(timeout_ms) + " ms: " + why));
  }
  bool closed = false;
  (*source)->Close([&] { closed = true; });
  source->reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return out;
}

}  // namespace picket::control::source
