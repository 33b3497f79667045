// The command lines (base/cli.h) of picket-inject (every subcommand) and picket-init, run as
// subprocesses.
#include <gtest/gtest.h>

#include "test/base/cli_contract.h"

namespace picket::inject {
namespace {

using picket::testing::ExpectCliContract;
using picket::testing::RunfilePath;

TEST(InjectCliContract, PicketInject) {
  const std::string binary = RunfilePath("inject/picket-inject");
  ExpectCliContract(binary, "picket-inject", {});
  for (const char* command : {"inject", "bootstrap", "webhook", "probe"}) {
    ExpectCliContract(binary, "picket-inject", {command});
  }
}

TEST(InjectCliContract, PicketInit) {
  ExpectCliContract(RunfilePath("inject/picket-init"), "picket-init", {});
}

TEST(InjectCliContract, InitTakesTheValueEitherWay) {
  const std::string binary = RunfilePath("inject/picket-init");
  auto spaced = picket::testing::RunBinary(
      {binary, "--dry-run", "--proxy-uid", "1500", "--ipv6", "false", "--outbound-port", "15101"});
  auto joined = picket::testing::RunBinary(
      {binary, "--dry-run", "--proxy-uid=1500", "--ipv6=false", "--outbound-port=15101"});
  EXPECT_EQ(spaced.code, 0) << spaced.err;
  EXPECT_EQ(joined.code, 0) << joined.err;
  EXPECT_EQ(spaced.out, joined.out);
  EXPECT_NE(spaced.out.find("--to-ports 15101"), std::string::npos) << spaced.out;
  EXPECT_NE(spaced.out.find("--uid-owner 1500"), std::string::npos) << spaced.out;
}

}  // namespace
}  // namespace picket::inject
