// inject/init_main.cc — picket-init: installs, refreshes or removes Picket's capture rules in the
// current network namespace (run by the injected init container; needs NET_ADMIN and NET_RAW).
// See inject/README.md.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "inject/command.h"
#include "inject/redirect_installer.h"
#include "inject/redirect_rules.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(picket::inject::InitUsage().c_str(), stdout);
      return 0;
    }
  }
  auto cmd = picket::inject::ParseInitArgs(args);
  if (!cmd) {
    std::fprintf(stderr, "picket-init: %s\n", cmd.error().ToString().c_str());
    return 2;
  }
  using Action = picket::inject::InitCommand::Action;
  if (cmd->dry_run) {
    if (cmd->action == Action::kCleanup) {
      std::fputs(
          "# cleanup: reads `iptables-save -t nat` and removes every PICKET_* chain and "
          "every jump into one; nothing is printed without reading the tables; then "
          "`ip -6 addr del` of the IPv6 passthrough source on lo if present\n",
          stdout);
      return 0;
    }
    auto text = picket::inject::DryRunText(*cmd);
    if (!text) {
      std::fprintf(stderr, "picket-init: %s\n", text.error().ToString().c_str());
      return 2;
    }
    std::fputs(text->c_str(), stdout);
    return 0;
  }
  picket::inject::ProcessRunner runner;
  // Install: the address first (its failure changes nothing), then the rules. Cleanup: the
  // rules first, then the address.
  picket::base::Result<void> result;
  if (cmd->action == Action::kCleanup) {
    result = picket::inject::CleanupRules(*cmd, runner);
    if (result) result = picket::inject::RemovePassthroughAddress(*cmd, runner);
  } else {
    result = picket::inject::AddPassthroughAddress(*cmd, runner);
    if (result) result = picket::inject::InstallRules(*cmd, runner);
  }
  if (!result) {
    std::fprintf(stderr, "picket-init: %s\n", result.error().ToString().c_str());
    return 1;
  }
  std::fprintf(
      stderr, "picket-init: %s\n",
      cmd->action == Action::kCleanup ? "capture rules removed" : "capture rules installed");
  return 0;
}
