// test/base/cli_contract.cc — see cli_contract.h.
#include "test/base/cli_contract.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/version.h"

extern char** environ;

namespace picket::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

}  // namespace

std::string RunfilePath(const std::string& runfile) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) {
    ADD_FAILURE() << "run under bazel test (TEST_SRCDIR, TEST_WORKSPACE)";
    return runfile;
  }
  const fs::path path = fs::path(srcdir) / workspace / runfile;
  EXPECT_TRUE(fs::exists(path)) << path;
  return path.string();
}

BinaryRun RunBinary(const std::vector<std::string>& args) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp");
  const std::string out_path = (dir / ("run." + std::to_string(getpid()) + ".out")).string();
  const std::string err_path = (dir / ("run." + std::to_string(getpid()) + ".err")).string();
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = 0;
  BinaryRun run;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << rc;
    return run;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.out = ReadFile(out_path);
  run.err = ReadFile(err_path);
  return run;
}

void ExpectCliContract(const std::string& path, const std::string& binary,
                       const std::vector<std::string>& command) {
  auto run = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {path};
    argv.insert(argv.end(), command.begin(), command.end());
    argv.insert(argv.end(), flags.begin(), flags.end());
    SCOPED_TRACE(Join(argv));
    return RunBinary(argv);
  };
  const std::string what = Join(command).empty() ? binary : binary + " " + Join(command);
  SCOPED_TRACE(what);

  BinaryRun help = run({"--help"});
  EXPECT_EQ(help.code, 0) << help.err;
  EXPECT_NE(help.out.find("Usage: " + what + " [OPTIONS]"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("-h,--help"), std::string::npos) << help.out;
  EXPECT_EQ(help.err, "");

  BinaryRun version = run({"--version"});
  EXPECT_EQ(version.code, 0) << version.err;
  EXPECT_EQ(version.out, base::VersionLine(binary) + "\n");
  EXPECT_EQ(version.err, "");

  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--log-level", "verbose"}, {"--log-level=verbose"}}) {
    BinaryRun level = run(bad);
    EXPECT_EQ(level.code, 2) << level.err;
    EXPECT_NE(level.err.find("--log-level"), std::string::npos) << level.err;
    EXPECT_NE(level.err.find("verbose"), std::string::npos) << level.err;
    EXPECT_NE(level.err.find("trace,debug,info,warn,error,critical,off"), std::string::npos)
        << level.err;
    EXPECT_EQ(level.out, "");
  }

  BinaryRun format = run({"--log-format", "yaml"});
  EXPECT_EQ(format.code, 2) << format.err;
  EXPECT_NE(format.err.find("--log-format"), std::string::npos) << format.err;

  BinaryRun unknown = run({"--no-such-flag", "1"});
  EXPECT_EQ(unknown.code, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("--no-such-flag"), std::string::npos) << unknown.err;
  EXPECT_EQ(unknown.out, "");
}

}  // namespace picket::testing
