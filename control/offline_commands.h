// control/offline_commands.h — picket-control's offline subcommands: validate, matrix, explain,
// compile.
//
// Owns: their flags, loading manifests (config/manifest_loader.h), compiling them
// (policy/cluster_policy.h) and printing. Each Add* declares its flags on `sub` (control/flags.h)
// and returns what runs the command: exit code 0 success, 1 invalid input (manifest errors),
// 2 usage errors. Output goes to `out`, diagnostics to `err`. Single-threaded; no globals.
#pragma once

#include "control/flags.h"

namespace picket::control {

// validate -f PATH...
CommandRun AddValidate(CLI::App& sub);
// matrix -f PATH... [--ports 80,81] [--protocols TCP,UDP,SCTP] [--output json|table]
CommandRun AddMatrix(CLI::App& sub);
// explain -f PATH... --from NS/POD|IP --to NS/POD|IP --port N [--protocol P]
CommandRun AddExplain(CLI::App& sub);
// compile -f PATH... --pod NS/NAME [-o FILE]
CommandRun AddCompile(CLI::App& sub);

}  // namespace picket::control
