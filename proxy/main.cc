// proxy/main.cc — `picket-proxy --config bootstrap.yaml`: the per-pod sidecar.
//
// Reads and validates the bootstrap (every error, `file:line: field: reason`, exit 2), sets up
// the loggers (conn, policy, admin), starts the Proxy on the main loop and runs until SIGTERM
// has drained the connections (exit 0).
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "config/bootstrap.h"
#include "proxy/proxy.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: picket-proxy --config BOOTSTRAP.yaml [--log-level debug|info|warn]\n"
               "       picket-proxy --check-config BOOTSTRAP.yaml\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::string level = "info";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "-c" || arg == "--check-config") && i + 1 < argc) {
      check_only = arg == "--check-config";
      config_path = argv[++i];
    } else if (arg == "--log-level" && i + 1 < argc) {
      level = argv[++i];
    } else {
      Usage();
      return 2;
    }
  }
  if (config_path.empty()) {
    Usage();
    return 2;
  }
  auto bootstrap = picket::config::LoadBootstrap(config_path);
  if (!bootstrap) {
    for (const auto& e : bootstrap.error()) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 2;
  }
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  // A write to a socket the peer has closed must be an EPIPE, not a signal.
  signal(SIGPIPE, SIG_IGN);
  for (const char* name : {"conn", "policy", "admin"}) spdlog::stderr_color_mt(name);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %n: %v", spdlog::pattern_time_type::utc);

  uv_loop_t* loop = uv_default_loop();
  int rc = 0;
  {
    picket::proxy::Proxy proxy(std::move(*bootstrap), loop);
    if (auto started = proxy.Start(); !started) {
      spdlog::get("admin")->error("{}", started.error());
      return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    spdlog::get("admin")->info("drained; exiting");
  }
  uv_loop_close(loop);
  return rc;
}
