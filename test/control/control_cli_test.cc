// picket-control's command line (base/cli.h) for the program and every subcommand, run as a
// subprocess.
#include <gtest/gtest.h>

#include "test/base/cli_contract.h"

namespace picket::control {
namespace {

const std::string& Binary() {
  static const std::string path = picket::testing::RunfilePath("control/picket-control");
  return path;
}

TEST(ControlCliTest, TopLevel) {
  picket::testing::ExpectCliContract(Binary(), "picket-control", {});
}

TEST(ControlCliTest, EverySubcommand) {
  for (const char* command : {"validate", "matrix", "explain", "compile", "serve", "certs"}) {
    picket::testing::ExpectCliContract(Binary(), "picket-control", {command});
  }
}

TEST(ControlCliTest, UnknownFlagIsNamedBeforeMissingOnes) {
  auto r = picket::testing::RunBinary({Binary(), "serve", "--bogus", "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
  r = picket::testing::RunBinary({Binary(), "certs", "--ca-cert", "c.pem", "--bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
  r = picket::testing::RunBinary({Binary(), "validate", "-f", "x", "--bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
  r = picket::testing::RunBinary({Binary(), "frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace picket::control
