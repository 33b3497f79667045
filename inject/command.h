// inject/command.h — running an external program with input on stdin and its output captured.
//
// Owns: `CommandRunner`, the seam between picket-init's logic and the iptables binaries (tests
// substitute a fake), and `ProcessRunner`, the real one (fork/exec, no shell; it sets SIGPIPE to
// ignored in the calling process, since a program may exit before reading all of its input and
// that must show up as EPIPE, not kill the caller). Blocking; call from one thread at a time.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"

namespace picket::inject {

struct CommandResult {
  int exit_code = 0;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Runs argv[0] (searched in PATH unless it contains '/') with `input` on stdin. An error means
  // the program could not be started at all.
  [[nodiscard]] virtual base::Result<CommandResult> Run(const std::vector<std::string>& argv,
                                                        const std::string& input) = 0;
};

class ProcessRunner final : public CommandRunner {
 public:
  [[nodiscard]] base::Result<CommandResult> Run(const std::vector<std::string>& argv,
                                                const std::string& input) override;
};

// "a b 'c d'" — for messages only.
std::string CommandLine(const std::vector<std::string>& argv);

}  // namespace picket::inject
