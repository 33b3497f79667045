// control/main.cc — picket-control: the control server and its offline tools.
//
// Owns: subcommand dispatch only. Each subcommand is one row of kCommands: a name, a one-line
// help and the function that declares its flags (control/flags.h) and returns what runs it. To
// add one, add its row below; nothing else registers itself. --help, --version, --log-level and
// --log-format work in every subcommand (base/cli.h).
#include <iostream>
#include <string>
#include <vector>

#include "base/cli.h"
#include "base/log.h"
#include "control/certs.h"
#include "control/offline_commands.h"
#include "control/serve.h"
#include "control/status_command.h"

namespace {

using picket::control::AddCommand;
using picket::control::CommandRun;

struct CommandRow {
  const char* name;
  const char* help;
  AddCommand add;
};

constexpr CommandRow kCommands[] = {
    {"validate", "Check manifests, print every error", picket::control::AddValidate},
    {"matrix", "Reachability of every ordered pod pair", picket::control::AddMatrix},
    {"explain", "Why a connection is allowed or denied", picket::control::AddExplain},
    {"compile", "A pod's sidecar policy_file", picket::control::AddCompile},
    {"serve", "Push policy to sidecars (xDS over mutual TLS)", picket::control::AddServe},
    {"status", "Each sidecar of a replica: versions ACKed, last NACK (as istioctl proxy-status)",
     picket::control::AddStatus},
    {"certs", "A CA and certificates for the control server and sidecars",
     picket::control::AddCerts},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Picket's control server and offline policy tools.", "picket-control");
  picket::base::LogOptions log;
  picket::base::AddCommonFlags(app, &log);
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, CommandRun>> commands;
  for (const CommandRow& c : kCommands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    commands.emplace_back(sub, c.add(*sub));
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "help") args[0] = "--help";
  if (auto exit = picket::base::ParseCommandLine(app, args)) return *exit;
  if (auto logging = picket::base::SetUpLogging(log, "control"); !logging) {
    std::cerr << "picket-control: " << logging.error().ToString() << '\n';
    return picket::base::kUsageExit;
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run(std::cout, std::cerr);
  }
  return picket::base::kUsageExit;  // unreachable: require_subcommand(1)
}
