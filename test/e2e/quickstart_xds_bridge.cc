// test/e2e/quickstart_xds_bridge.cc — the quick start's stand-in for picket-proxy's own xDS
// client, until picket-proxy wires in proxy/xds's XdsAgent (control/PROTOCOL.md §8).
//
// Owns: one pod's connection to `picket-control serve`, made with exactly the XdsAgent that
// picket-proxy will use (mutual TLS, subscribe, validate, ACK/NACK, reconnect with backoff), and
// configured from the `xds` section of a bootstrap that `picket-inject bootstrap` generated for
// the pod. Every snapshot the agent applies is written, in the policy_file text form
// (EndpointPolicy::Encode), to --policy-file by write-to-temporary-then-rename in the same
// directory; the pod's picket-proxy watches that file and applies it through its one apply path.
// A file that cannot be written makes the agent NACK the update (the error goes to the server).
//
//   quickstart_xds_bridge --bootstrap XDS_BOOTSTRAP.yaml --policy-file PATH
//
// Prints `applied <version>` per snapshot. Runs as the sidecar's uid (1337, like picket-proxy:
// its connection to the control server must not be captured). SIGTERM/SIGINT: close the stream
// and exit 0. One thread, one libuv loop.
#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <expected>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include "config/bootstrap.h"
#include "policy/endpoint_policy.h"
#include "proxy/xds/xds_agent.h"

namespace {

using picket::policy::EndpointPolicyPtr;
using picket::proxy::xds::XdsAgent;

constexpr char kUsage[] =
    "usage: quickstart_xds_bridge --bootstrap XDS_BOOTSTRAP.yaml --policy-file PATH\n";

// Writes `text` to `path` atomically: readers see the old file or the new one, never a part.
std::expected<void, std::string> WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".bridge-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return std::unexpected(tmp + ": cannot write");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string error = tmp + " -> " + path + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return std::unexpected(error);
  }
  return {};
}

struct Bridge {
  uv_loop_t loop{};
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
  std::unique_ptr<XdsAgent> agent;
  std::string policy_file;
  bool stopping = false;

  std::expected<void, std::string> Apply(EndpointPolicyPtr policy) {
    if (auto written = WriteAtomically(policy_file, policy->Encode()); !written) return written;
    std::printf("applied %s\n", policy->version().c_str());
    std::fflush(stdout);
    return {};
  }

  void Stop() {
    if (stopping) return;
    stopping = true;
    for (uv_signal_t* s : {&sigterm, &sigint}) {
      uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
    }
    agent->Close([] {});
  }

  static void OnSignal(uv_signal_t* handle, int) { static_cast<Bridge*>(handle->data)->Stop(); }
};

}  // namespace

int main(int argc, char** argv) {
  std::string bootstrap_path, policy_file;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--bootstrap") {
      bootstrap_path = argv[++i];
    } else if (i + 1 < argc && flag == "--policy-file") {
      policy_file = argv[++i];
    } else {
      std::fprintf(stderr, "quickstart_xds_bridge: unknown or incomplete flag %s\n%s", flag.c_str(),
                   kUsage);
      return 2;
    }
  }
  if (bootstrap_path.empty() || policy_file.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  auto bootstrap = picket::config::LoadBootstrap(bootstrap_path);
  if (!bootstrap) {
    for (const picket::config::Error& e : bootstrap.error()) {
      std::fprintf(stderr, "%s\n", e.ToString().c_str());
    }
    return 2;
  }
  if (!bootstrap->xds) {
    std::fprintf(stderr, "%s: no xds section\n", bootstrap_path.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  Bridge bridge;
  bridge.policy_file = policy_file;
  uv_loop_init(&bridge.loop);
  const picket::config::Bootstrap::Xds& xds = *bootstrap->xds;
  picket::proxy::xds::XdsAgentConfig config;
  config.address = xds.address;
  config.cert = xds.tls.cert;
  config.key = xds.tls.key;
  config.ca = xds.tls.ca;
  config.ns = bootstrap->node.ns;
  config.pod = bootstrap->node.name;
  auto agent = XdsAgent::Create(&bridge.loop, config, [&bridge](EndpointPolicyPtr policy) {
    return bridge.Apply(std::move(policy));
  });
  if (!agent) {
    std::fprintf(stderr, "quickstart_xds_bridge: %s\n", agent.error().c_str());
    return 1;
  }
  bridge.agent = std::move(*agent);
  const std::pair<uv_signal_t*, int> signals[] = {{&bridge.sigterm, SIGTERM},
                                                  {&bridge.sigint, SIGINT}};
  for (const auto& [handle, signum] : signals) {
    uv_signal_init(&bridge.loop, handle);
    handle->data = &bridge;
    uv_signal_start(handle, &Bridge::OnSignal, signum);
  }
  bridge.agent->Start();
  uv_run(&bridge.loop, UV_RUN_DEFAULT);
  bridge.agent.reset();
  return uv_loop_close(&bridge.loop) == 0 ? 0 : 1;
}
