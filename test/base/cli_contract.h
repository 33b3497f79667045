// test/base/cli_contract.h — runs a real binary (from the test's runfiles) and checks the command
// line contract of base/cli.h for one command or subcommand: --help prints usage to stdout and
// exits 0, --version prints base::VersionLine and exits 0, a log level outside the fixed set and
// an unknown flag exit 2 naming them on stderr.
//
// Test-thread only. Binaries are found as $TEST_SRCDIR/$TEST_WORKSPACE/<runfile>.
#pragma once

#include <string>
#include <vector>

namespace picket::testing {

struct BinaryRun {
  int code = -1;  // exit code, 128+N when killed by signal N
  std::string out;
  std::string err;
};

// The absolute path of a runfile such as "control/picket-control" (ADD_FAILURE when missing).
std::string RunfilePath(const std::string& runfile);

// Runs `argv` (argv[0] an absolute path) with stdin from /dev/null, capturing both streams.
BinaryRun RunBinary(const std::vector<std::string>& argv);

// Checks the contract for `binary` (the program name, e.g. "picket-control") run as
// `path command... FLAG`, where `command` is empty for the top level or e.g. {"validate"}.
void ExpectCliContract(const std::string& path, const std::string& binary,
                       const std::vector<std::string>& command);

}  // namespace picket::testing
