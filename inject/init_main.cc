// inject/init_main.cc — picket-init: installs, refreshes or removes Picket's capture rules in the
// current network namespace (run by the injected init container; needs NET_ADMIN and NET_RAW).
// See inject/README.md.
//
// CLI11 reads the command line (`--name value` or `--name=value`, --help, --version, exit 2 on
// an unknown flag); the values are then checked by the one parser of the capture settings,
// ParseInitArgs (inject/redirect_rules.h), so the rules and their validation stay in one place.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "base/cli.h"
#include "base/log.h"
#include "inject/command.h"
#include "inject/redirect_installer.h"
#include "inject/redirect_rules.h"

namespace {

struct InitFlag {
  const char* name;
  const char* type_name;  // with the default
  const char* help;
};

// Lists are comma-separated. The defaults are those of RedirectConfig / InitCommand.
constexpr InitFlag kInitFlags[] = {
    {"outbound-port", "PORT=15001", "Outbound listener (REDIRECT target for app traffic)"},
    {"inbound-port", "PORT=15006", "Inbound listener (REDIRECT target for inbound traffic)"},
    {"admin-port", "PORT=15000", "Never captured inbound"},
    {"readiness-port", "PORT=15021", "Never captured inbound"},
    {"metrics-port", "PORT=0",
     "The sidecar's metrics listener: never captured inbound, only the proxy uid answers (0: "
     "none)"},
    {"proxy-uid", "UIDS=1337", "Uids whose traffic is never captured"},
    {"proxy-gid", "GIDS=<proxy-uid>", "Gids whose traffic is never captured"},
    {"include-outbound-cidrs", "CIDRS=*", "'*' or CIDRs to capture outbound"},
    {"exclude-outbound-cidrs", "CIDRS", "CIDRs never captured outbound"},
    {"include-outbound-ports", "PORTS", "Ports always captured outbound"},
    {"exclude-outbound-ports", "PORTS", "Ports never captured outbound"},
    {"include-inbound-ports", "PORTS=*", "'*' or ports captured inbound"},
    {"exclude-inbound-ports", "PORTS", "Ports never captured inbound (with '*')"},
    {"exclude-interfaces", "NAMES", "Interfaces never captured either way"},
    {"inbound-passthrough-source", "ADDRS=127.0.0.7,::7",
     "Source the sidecar binds to reach the local app"},
    {"ipv6", "BOOL=true", "false: leave ip6tables alone (explicit opt-out)"},
    {"udp-sctp", "BOOL=true", "false: do not capture (nor enforce) UDP and SCTP"},
    {"nfqueue", "NUM=15000", "The queue new UDP/SCTP flows wait in for the sidecar's verdict"},
    {"nfqueue-count", "N=1",
     "UDP/SCTP over N queues from --nfqueue on, the queue chosen by the CPU (one sidecar worker "
     "each)"},
    {"capture", "relay|verdict=relay",
     "TCP: relay (redirected to the sidecar) or verdict (each new flow judged from --nfqueue, "
     "then carried by the kernel)"},
    {"service-cidrs", "CIDRS",
     "With --capture=verdict: the Service ClusterIP ranges; TCP elsewhere is not "
     "connection-tracked"},
    {"iptables-restore", "PATH", "Binary to use (e.g. iptables-legacy-restore)"},
    {"iptables-save", "PATH", "Binary to use"},
    {"ip6tables-restore", "PATH", "Binary to use"},
    {"ip6tables-save", "PATH", "Binary to use"},
};

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app(
      "picket-init: install Picket's traffic capture rules (IPv4 and IPv6) in this network "
      "namespace, or refresh them.",
      "picket-init");
  bool dry_run = false;
  bool cleanup = false;
  app.add_flag("--dry-run", dry_run, "Print the iptables-restore input and run nothing");
  app.add_flag("--cleanup", cleanup, "Remove every PICKET_* chain and rule");
  std::vector<std::string> values(std::size(kInitFlags));
  for (size_t i = 0; i < std::size(kInitFlags); ++i) {
    app.add_option(std::string("--") + kInitFlags[i].name, values[i], kInitFlags[i].help)
        ->type_name(kInitFlags[i].type_name)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  picket::base::LogOptions log;
  picket::base::AddCommonFlags(app, &log);
  if (auto exit = picket::base::ParseCommandLine(app, argc, argv)) return *exit;
  if (auto logging = picket::base::SetUpLogging(log, "inject"); !logging) {
    std::fprintf(stderr, "picket-init: %s\n", logging.error().ToString().c_str());
    return picket::base::kUsageExit;
  }

  std::vector<std::string> args;
  if (dry_run) args.push_back("--dry-run");
  if (cleanup) args.push_back("--cleanup");
  for (size_t i = 0; i < std::size(kInitFlags); ++i) {
    const std::string name = std::string("--") + kInitFlags[i].name;
    if (app.count(name) > 0) args.push_back(name + "=" + values[i]);
  }
  auto cmd = picket::inject::ParseInitArgs(args);
  if (!cmd) {
    std::fprintf(stderr, "picket-init: %s\n", cmd.error().ToString().c_str());
    return picket::base::kUsageExit;
  }
  using Action = picket::inject::InitCommand::Action;
  if (cmd->dry_run) {
    if (cmd->action == Action::kCleanup) {
      std::fputs(
          "# cleanup: reads `iptables-save -t nat`, `-t mangle` and `-t filter` and removes "
          "every PICKET_* chain and every jump into one; nothing is printed without reading the "
          "tables; then "
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
  auto logger = spdlog::get("inject");
  if (!result) {
    logger->error("{}", result.error().ToString());
    return 1;
  }
  logger->info(
      "{}", cmd->action == Action::kCleanup ? "capture rules removed" : "capture rules installed");
  return 0;
}
