#include "control/flags.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

namespace picket::control {
namespace {

std::vector<std::string> Reversed(std::vector<std::string> args) {
  return {args.rbegin(), args.rend()};
}

TEST(FlagsTest, FilesRepeatAndTakeEveryValue) {
  CLI::App app;
  std::vector<std::string> files;
  std::string ports;
  AddFilesFlag(app, &files);
  app.add_option("--ports", ports);
  app.parse(Reversed({"-f", "a.yaml", "dir", "--ports", "80,81", "--file=b", "-f", "c"}));
  EXPECT_EQ(files, (std::vector<std::string>{"a.yaml", "dir", "b", "c"}));
  EXPECT_EQ(ports, "80,81");
}

TEST(FlagsTest, FilesAreRequiredAndNeedAValue) {
  CLI::App app;
  std::vector<std::string> files;
  AddFilesFlag(app, &files);
  EXPECT_THROW(app.parse(Reversed({})), CLI::RequiredError);
  app.clear();
  EXPECT_THROW(app.parse(Reversed({"-f"})), CLI::ArgumentMismatch);
}

}  // namespace
}  // namespace picket::control
