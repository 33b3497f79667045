#include "base/version.h"

#include <gtest/gtest.h>

namespace picket::base {
namespace {

// A short hash (maybe "-dirty") from tools/workspace_status.sh, or "unknown" outside git.
bool IsCommit(std::string_view c) {
  if (c == "unknown") return true;
  if (c.ends_with("-dirty")) c.remove_suffix(6);
  return c.size() >= 7 && c.size() <= 40 &&
         c.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

TEST(VersionTest, LineNamesBinaryVersionAndCommit) {
  EXPECT_EQ(Version(), "0.2.0");
  const std::string commit(GitCommit());
  EXPECT_TRUE(IsCommit(commit)) << commit;
  EXPECT_FALSE(IsCommit("")) << "the stamp is never empty";
  EXPECT_EQ(VersionLine("picket-proxy"), "picket-proxy 0.2.0 (" + commit + ")");
}

}  // namespace
}  // namespace picket::base
