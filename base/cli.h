// base/cli.h — what every binary's command line shares (CLI11): --help, --version, --log-level,
// --log-format, and the exit codes of a parse that ends the run.
//
// Owns: the common flags and the one place that turns a CLI11 parse outcome into an exit code:
// --help prints usage to stdout and exits 0; --version prints "<binary> <version> (<commit>)" to
// stdout and exits 0; an unknown flag or a bad value names it on stderr and exits 2. Both
// `--name value` and `--name=value` work (CLI11). Call from main() only.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"

namespace picket::base {

// The exit code of a usage error (unknown flag, bad or missing value).
inline constexpr int kUsageExit = 2;

// Adds --version, --log-level and --log-format (checked against kLogLevels / kLogFormats) to
// `app` and lets every subcommand added afterwards accept them too (CLI11 fallthrough). `log`
// must outlive the parse.
void AddCommonFlags(CLI::App& app, LogOptions* log);

// Parses `args` (without argv[0]). nullopt: go on and run; otherwise the process exit code after
// --help / --version (0) or a usage error (kUsageExit, message already on stderr).
[[nodiscard]] std::optional<int> ParseCommandLine(CLI::App& app, std::vector<std::string> args);
[[nodiscard]] std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv);

}  // namespace picket::base
