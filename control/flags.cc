// control/flags.cc — see flags.h.
#include "control/flags.h"

namespace picket::control {

std::expected<Flags, std::string> ParseFlags(const std::vector<std::string>& args,
                                             const std::set<std::string>& known) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-f" || arg == "--file" || arg == "--filename") {
      size_t start = i + 1;
      while (i + 1 < args.size() && (args[i + 1].empty() || args[i + 1][0] != '-')) {
        flags.files.push_back(args[++i]);
      }
      if (i + 1 == start) return std::unexpected(arg + ": needs at least one PATH");
      continue;
    }
    if (arg.rfind("-f=", 0) == 0 || arg.rfind("--file=", 0) == 0) {
      flags.files.push_back(arg.substr(arg.find('=') + 1));
      continue;
    }
    std::string name = arg;
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (!known.contains(name)) return std::unexpected("unknown argument: " + arg);
    if (!value) {
      if (i + 1 >= args.size()) return std::unexpected(name + ": needs a value");
      value = args[++i];
    }
    flags.options[name] = *value;
  }
  return flags;
}

}  // namespace picket::control
