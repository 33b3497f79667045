// control/flags.cc — see flags.h.
#include "control/flags.h"

#include <CLI/CLI.hpp>

#include "config/document.h"

namespace picket::control {

CLI::Option* AddFilesFlag(CLI::App& sub, std::vector<std::string>* files) {
  return sub.add_option("-f,--file,--filename", *files, "Manifest files or directories")
      ->type_name("PATH")
      ->required();
}

std::string JsonAsYaml(std::string_view json) {
  auto doc = config::ParseJson(json, "<json output>");
  if (!doc) return std::string(json);
  return config::EmitYaml(*doc);
}

}  // namespace picket::control
