#include "base/version.h"

#include <gtest/gtest.h>

#include <regex>

namespace picket::base {
namespace {

TEST(VersionTest, LineNamesBinaryVersionAndCommit) {
  EXPECT_EQ(Version(), "0.2.0");
  const std::string commit(GitCommit());
  // A short hash (maybe "-dirty") from tools/workspace_status.sh, or "unknown" outside git.
  EXPECT_TRUE(std::regex_match(commit, std::regex("[0-9a-f]{7,40}(-dirty)?|unknown"))) << commit;
  EXPECT_EQ(VersionLine("picket-proxy"), "picket-proxy 0.2.0 (" + commit + ")");
}

}  // namespace
}  // namespace picket::base
