// test/base/hash_test.cc — base/hash.h against the published FNV-1a 64-bit test vectors
// (Landon Curt Noll's FNV test suite, "fnv1a_64").
#include "base/hash.h"

#include <gtest/gtest.h>

#include <string>

namespace picket::base {
namespace {

TEST(HashVersionTest, PublishedFnv1a64Vectors) {
  EXPECT_EQ(HashVersion(""), "cbf29ce484222325");  // the offset basis itself
  EXPECT_EQ(HashVersion("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(HashVersion("b"), "af63df4c8601f1a5");
  EXPECT_EQ(HashVersion("foobar"), "85944171f73967e8");
  EXPECT_EQ(HashVersion("chongo was here!\n"), "46810940eff5f915");
}

TEST(HashVersionTest, RawValueAndRendering) {
  static_assert(Fnv1a64("") == 14695981039346656037ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  const std::string v = HashVersion("anything");
  EXPECT_EQ(v.size(), 16u);
  EXPECT_EQ(v.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(HashVersionTest, BytesNotCharsAreHashed) {
  // Bytes above 0x7f are hashed as unsigned octets, as the specification says.
  EXPECT_EQ(HashVersion(std::string(1, '\xff')), HashVersion("\xff"));
  EXPECT_NE(HashVersion(std::string("a\0b", 3)), HashVersion("ab"));
}

}  // namespace
}  // namespace picket::base
