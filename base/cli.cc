// base/cli.cc — see cli.h.
#include "base/cli.h"

#include <algorithm>
#include <iostream>

#include "base/version.h"

namespace picket::base {
namespace {

template <size_t N>
std::vector<std::string> Names(const std::array<std::string_view, N>& names) {
  return std::vector<std::string>(names.begin(), names.end());
}

void Relax(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    option->required(false);
    for (CLI::Option* other : option->get_needs()) option->remove_needs(other);
    for (CLI::Option* other : option->get_excludes()) option->remove_excludes(other);
  }
  for (CLI::App* sub : app.get_subcommands({})) Relax(*sub);
  app.require_subcommand(0, 0);
}

// CLI11 checks required flags (and needs/excludes) before it looks for unexpected ones, so
// `CMD --bogus` would say "--file is required". The unknown flag is the better message: parse again
// with nothing required and report what is left over, if anything.
std::vector<std::string> Unexpected(CLI::App& app, const std::vector<std::string>& reversed) {
  Relax(app);
  app.allow_extras();
  app.clear();
  try {
    std::vector<std::string> args = reversed;
    app.parse(args);
  } catch (const CLI::ParseError&) {
    return {};
  }
  return app.remaining(/*recurse=*/true);
}

}  // namespace

void AddCommonFlags(CLI::App& app, LogOptions* log) {
  app.set_version_flag("--version", VersionLine(app.get_name()), "Print the version and exit");
  app.add_option("--log-level", log->level, "Log level")
      ->check(CLI::IsMember(Names(kLogLevels)))
      ->capture_default_str();
  app.add_option("--log-format", log->format, "Log line format: text, or json (one object a line)")
      ->check(CLI::IsMember(Names(kLogFormats)))
      ->capture_default_str();
  // A subcommand passes the flags it does not know to its parent, so `CMD --version` and
  // `CMD --log-level debug` work in every subcommand.
  app.fallthrough();
}

std::optional<int> ParseCommandLine(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector back to front
  const std::vector<std::string> reversed = args;
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e, std::cout, std::cerr);  // --help, --version
    }
    std::string message = e.what();
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr ||
        dynamic_cast<const CLI::RequiresError*>(&e) != nullptr ||
        dynamic_cast<const CLI::ExcludesError*>(&e) != nullptr) {
      if (auto extras = Unexpected(app, reversed); !extras.empty()) {
        message = "unknown argument: " + extras.front();
      }
    }
    std::cerr << app.get_name() << ": " << message << "\nRun with --help for more information.\n";
    return kUsageExit;
  }
  return std::nullopt;
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv) {
  return ParseCommandLine(app, std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
}

}  // namespace picket::base
