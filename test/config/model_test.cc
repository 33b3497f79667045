#include <gtest/gtest.h>

#include "config/error.h"

namespace picket::config {
namespace {

TEST(ErrorTest, RendersAllParts) {
  Error e{"a.yaml", 12, "NetworkPolicy x/p", "spec.ingress[0].from[1]",
          "Required value: must specify a peer"};
  EXPECT_EQ(e.ToString(),
            "a.yaml:12: NetworkPolicy x/p: spec.ingress[0].from[1]: Required value: must specify a "
            "peer");
}

TEST(ErrorTest, OmitsEmptyParts) {
  Error e{"", 0, "", "", "boom"};
  EXPECT_EQ(e.ToString(), "boom");
}

}  // namespace
}  // namespace picket::config
