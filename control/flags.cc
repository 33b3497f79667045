// control/flags.cc — see flags.h.
#include "control/flags.h"

#include <CLI/CLI.hpp>

namespace picket::control {

CLI::Option* AddFilesFlag(CLI::App& sub, std::vector<std::string>* files) {
  return sub.add_option("-f,--file,--filename", *files, "Manifest files or directories")
      ->type_name("PATH")
      ->required();
}

}  // namespace picket::control
