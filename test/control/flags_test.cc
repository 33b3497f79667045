#include "control/flags.h"

#include <gtest/gtest.h>

namespace picket::control {
namespace {

TEST(FlagsTest, FilesAndOptions) {
  auto f = ParseFlags({"-f", "a.yaml", "dir", "--ports", "80,81", "--output=json", "-f", "c"},
                      {"--ports", "--output"});
  ASSERT_TRUE(f.has_value()) << f.error();
  EXPECT_EQ(f->files, (std::vector<std::string>{"a.yaml", "dir", "c"}));
  EXPECT_EQ(f->Get("--ports"), "80,81");
  EXPECT_EQ(f->Get("--output"), "json");
  EXPECT_EQ(f->Get("--protocols"), std::nullopt);
}

TEST(FlagsTest, Errors) {
  EXPECT_EQ(ParseFlags({"-f"}, {}).error(), "-f: needs at least one PATH");
  EXPECT_EQ(ParseFlags({"--bogus", "1"}, {}).error(), "unknown argument: --bogus");
  EXPECT_EQ(ParseFlags({"--ports"}, {"--ports"}).error(), "--ports: needs a value");
}

}  // namespace
}  // namespace picket::control
