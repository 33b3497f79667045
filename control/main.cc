// control/main.cc — picket-control: the control server and its offline tools.
//
// Owns: subcommand dispatch only. Each subcommand is one row of kCommands: a name, a one-line
// help and a function taking the remaining arguments. To add one (e.g. `serve`, `certs`), add
// its row below; nothing else registers itself.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "control/certs.h"
#include "control/offline_commands.h"
#include "control/serve.h"

namespace {

using Command = int (*)(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

struct CommandRow {
  const char* name;
  const char* help;
  Command run;
};

constexpr CommandRow kCommands[] = {
    {"validate", "validate -f PATH...: check manifests, print every error",
     picket::control::RunValidate},
    {"matrix",
     "matrix -f PATH... --ports 80,81 --protocols TCP,UDP,SCTP --output json|table: "
     "reachability of every ordered pod pair",
     picket::control::RunMatrix},
    {"explain",
     "explain -f PATH... --from NS/POD|IP --to NS/POD|IP --port N [--protocol P]: why a "
     "connection is allowed or denied",
     picket::control::RunExplain},
    {"compile", "compile -f PATH... --pod NS/NAME [-o FILE]: a pod's sidecar policy_file",
     picket::control::RunCompile},
    {"serve",
     "serve --manifests DIR --listen HOST:PORT --tls-cert F --tls-key F --tls-ca F "
     "[--admin 127.0.0.1:PORT]: push policy to sidecars (xDS over mutual TLS)",
     picket::control::RunServe},
    {"certs",
     "certs --out DIR [--server-ip IP]... [--server-name DNS]... [--pod NS/NAME]...: a CA and "
     "certificates for the control server and sidecars",
     picket::control::RunCerts},
};

int Usage(std::ostream& out, int code) {
  out << "usage: picket-control COMMAND [ARGS...]\n\ncommands:\n";
  for (const CommandRow& c : kCommands) out << "  " << c.help << '\n';
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage(std::cerr, 2);
  const std::string name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") return Usage(std::cout, 0);
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const CommandRow& c : kCommands) {
    if (name == c.name) return c.run(args, std::cout, std::cerr);
  }
  std::cerr << "unknown command: " << name << '\n';
  return Usage(std::cerr, 2);
}
