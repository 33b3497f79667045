// control/offline_commands.h — picket-control's offline subcommands: validate, matrix, explain,
// compile.
//
// Owns: argument handling, loading manifests (config/manifest_loader.h), compiling them
// (policy/cluster_policy.h) and printing. Each returns the process exit code: 0 success,
// 1 invalid input (manifest errors), 2 usage errors. Output goes to `out`, diagnostics to `err`.
// Single-threaded; no globals.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace picket::control {

// validate -f PATH...
int RunValidate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// matrix -f PATH... [--ports 80,81] [--protocols TCP,UDP,SCTP] [--output json|table]
int RunMatrix(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// explain -f PATH... --from NS/POD|IP --to NS/POD|IP --port N [--protocol P]
int RunExplain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// compile -f PATH... --pod NS/NAME [-o FILE]
int RunCompile(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace picket::control
