// libFuzzer target: the sidecar's bootstrap file (config/bootstrap.cc).
// Built by test/fuzz/build_bootstrap.sh (clang++-16), not by Bazel.
//
// Invariants: no crash, no exception escaping config/, no sanitizer report; a rejected input has
// at least one error and every error has a reason; an accepted one satisfies what validation
// promises (a node, distinct listener ports, a loopback admin host, a policy source).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/bootstrap.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto b = picket::config::ParseBootstrap(text, "fuzz.yaml");
  if (!b) {
    if (b.error().empty()) std::abort();
    for (const auto& e : b.error()) {
      if (e.reason.empty() || e.ToString().empty()) std::abort();
    }
    return 0;
  }
  if (b->node.ns.empty() || b->node.name.empty() || b->node.ips.empty()) std::abort();
  if (b->listeners.outbound_port == b->listeners.inbound_port) std::abort();
  if (b->admin.host.rfind("127.", 0) != 0 && b->admin.host != "::1") std::abort();
  if (b->policy_file.empty() && !b->xds) std::abort();
  if (b->timeouts.connect.count() <= 0 || b->timeouts.idle.count() <= 0) std::abort();
  return 0;
}
