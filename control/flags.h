// control/flags.h — the shape of a picket-control subcommand on the command line (CLI11).
//
// Owns: how a subcommand plugs into main.cc's table: it declares its flags on its own CLI::App
// (bound to options it keeps) and returns the function that runs it once the parse succeeded;
// and the `-f PATH...` flag the offline commands share, and `--output yaml` (JsonAsYaml). Call
// from main() only.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace picket::control {

// Runs a parsed subcommand: the process exit code (0 ok, 1 invalid input or a failure,
// 2 a usage error found after the parse, e.g. a pod that does not exist).
using CommandRun = std::function<int(std::ostream& out, std::ostream& err)>;

// Declares the flags of one subcommand on `sub`; the returned function reads them.
using AddCommand = CommandRun (*)(CLI::App& sub);

// `-f, --file, --filename PATH...`: required, repeatable; each use takes every value up to the
// next flag (`-f a.yaml dir -f c.yaml` → a.yaml, dir, c.yaml).
CLI::Option* AddFilesFlag(CLI::App& sub, std::vector<std::string>* files);

// `--output yaml` (as kubectl's -o yaml): the very document `--output json` prints, re-emitted
// as block YAML (config/document.h's writer: key order kept, every string that would read back
// as another type quoted), so the two outputs cannot disagree. Text that is not JSON (never
// expected) is returned unchanged.
std::string JsonAsYaml(std::string_view json);

}  // namespace picket::control
