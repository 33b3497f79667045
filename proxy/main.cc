// proxy/main.cc — `picket-proxy --config bootstrap.yaml`: the per-pod sidecar.
//
// Reads and validates the bootstrap (every error, `file:line: field: reason`, exit 2), sets up
// the loggers (base/log.h; on stdout with `process_log: stdout`), starts the Proxy on the main loop
// and runs until SIGTERM has drained the connections (exit 0). A start failure (e.g. a port in use)
// is logged and exits 1.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <cstdio>
#include <string>

#include "base/cli.h"
#include "base/log.h"
#include "config/bootstrap.h"
#include "proxy/proxy.h"

int main(int argc, char** argv) {
  CLI::App app("The Picket sidecar: enforces a pod's NetworkPolicy on its connections.",
               "picket-proxy");
  std::string config_path;
  std::string check_path;
  picket::base::LogOptions log;
  auto* config = app.add_option("-c,--config", config_path, "Bootstrap file to run with")
                     ->type_name("BOOTSTRAP.yaml");
  auto* check = app.add_option("--check-config", check_path,
                               "Validate the bootstrap file, print \"FILE: ok\" and exit")
                    ->type_name("BOOTSTRAP.yaml");
  config->excludes(check);
  picket::base::AddCommonFlags(app, &log);
  if (auto exit = picket::base::ParseCommandLine(app, argc, argv)) return *exit;
  if (config_path.empty() && check_path.empty()) {
    std::fprintf(stderr, "picket-proxy: --config or --check-config is required\n");
    return picket::base::kUsageExit;
  }

  const bool check_only = !check_path.empty();
  if (check_only) config_path = check_path;
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
  log.to_stdout = bootstrap->process_log == "stdout";
  if (auto logging = picket::base::SetUpLogging(log, "admin"); !logging) {
    std::fprintf(stderr, "picket-proxy: %s\n", logging.error().ToString().c_str());
    return picket::base::kUsageExit;
  }

  uv_loop_t* loop = uv_default_loop();
  int rc = 0;
  {
    picket::proxy::Proxy proxy(std::move(*bootstrap), loop);
    if (auto started = proxy.Start(); !started) {
      auto admin = spdlog::get("admin");
      admin->error("{}", started.error());
      // Not starting is never silent, whatever --log-level says.
      if (!admin->should_log(spdlog::level::err)) {
        std::fprintf(stderr, "picket-proxy: %s\n", fmt::format("{}", started.error()).c_str());
      }
      return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    spdlog::get("admin")->info("drained; exiting");
  }
  uv_loop_close(loop);
  return rc;
}
