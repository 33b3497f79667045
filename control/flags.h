// control/flags.h — the small command-line parser of picket-control's subcommands.
//
// Owns: splitting `args` into repeated `-f PATH...` values and single-valued `--name value` /
// `--name=value` options, with usage errors as values. Pure; any thread.
#pragma once

#include <expected>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace picket::control {

struct Flags {
  std::vector<std::string> files;              // every -f / --file value
  std::map<std::string, std::string> options;  // "--ports" → "80,81"

  std::optional<std::string> Get(const std::string& name) const {
    auto it = options.find(name);
    if (it == options.end()) return std::nullopt;
    return it->second;
  }
};

// `known` lists the accepted option names (with dashes, e.g. "--ports", "-o").
// `-f` takes one or more values: everything up to the next argument that starts with '-'.
[[nodiscard]] std::expected<Flags, std::string> ParseFlags(const std::vector<std::string>& args,
                                                           const std::set<std::string>& known);

}  // namespace picket::control
